/* softmax.c — numerically stable softmax over the last dim, forward/backward, and the one-row
 * helper shared with the cross-entropy kernels and the losses.
 * Row-parallel with OpenMP above OPS_PAR_MIN elements; `omp simd` reductions let the row sums
 * vectorise (strict fp32 forbids reassociating them otherwise), and ops_expf vectorises the exps.
 * Deliberately left out: masking and temperature (callers scale or mask the logits first). */
#include <math.h>

#include "ops.h"

static float row_max(const float *inp, int V) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < V; i++) mx = inp[i] > mx ? inp[i] : mx;
    return mx;
}

float ops_softmax_row(float *out, const float *inp, int V) {
    const float mx = row_max(inp, V);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < V; i++) {
        out[i] = ops_expf(inp[i] - mx);
        sum += out[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < V; i++) out[i] *= inv;
    return mx + logf(sum);
}

float ops_logsumexp_row(const float *inp, int V) {
    const float mx = row_max(inp, V);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < V; i++) sum += ops_expf(inp[i] - mx);
    return mx + logf(sum);
}

void ops_softmax_forward(float *out, const float *inp, int B, int V) {
#pragma omp parallel for if ((size_t)B * V > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) ops_softmax_row(out + (size_t)b * V, inp + (size_t)b * V, V);
}

void ops_softmax_backward(float *dinp, const float *dout, const float *out, int B, int V) {
#pragma omp parallel for if ((size_t)B * V > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *restrict y = out + (size_t)b * V, *restrict dy = dout + (size_t)b * V;
        float *restrict dx = dinp + (size_t)b * V;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < V; i++) dot += dy[i] * y[i];
        for (int i = 0; i < V; i++) dx[i] += y[i] * (dy[i] - dot);
    }
}
