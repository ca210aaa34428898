/* l2norm.c — L2 normalisation of rows into the joint embedding space, forward/backward.
 * Below eps the row is divided by eps instead (a linear map), so a zero row stays finite.
 * Row-parallel with OpenMP above OPS_PAR_MIN elements, `omp simd` reductions inside a row.
 * Deliberately left out: normalisation over other axes. */
#include <math.h>

#include "ops.h"

void ops_l2norm_forward(float *out, float *norm, const float *inp, int B, int D, float eps) {
#pragma omp parallel for if ((size_t)B * D > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *restrict x = inp + (size_t)b * D;
        float *restrict y = out + (size_t)b * D;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int i = 0; i < D; i++) ss += x[i] * x[i];
        float n = sqrtf(ss);
        float inv = 1.0f / (n > eps ? n : eps);
        for (int i = 0; i < D; i++) y[i] = x[i] * inv;
        norm[b] = n;
    }
}

/* For n > eps: y = x / n, dx = (dy - y (y . dy)) / n. Otherwise y = x / eps, dx = dy / eps. */
void ops_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm, int B, int D, float eps) {
#pragma omp parallel for if ((size_t)B * D > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *restrict y = out + (size_t)b * D, *restrict dy = dout + (size_t)b * D;
        float *restrict dx = dinp + (size_t)b * D;
        float dot = 0.0f;
        if (norm[b] > eps) {
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < D; i++) dot += y[i] * dy[i];
        }
        float inv = 1.0f / (norm[b] > eps ? norm[b] : eps);
        for (int i = 0; i < D; i++) dx[i] += (dy[i] - y[i] * dot) * inv;
    }
}
