/* layernorm.c — LayerNorm over the last dim (rows of [B, C]; in NHWC images, over channels).
 * Forward and backward are row-parallel (OpenMP above OPS_PAR_MIN elements). The weight and bias
 * gradients are sums over rows: each thread sums its own row block into a stack vector and the
 * blocks are added in thread order, so the result is bitwise reproducible for a thread count.
 * `omp simd` reductions let the row sums vectorise (strict fp32 forbids reassociating them).
 * Deliberately left out: RMSNorm, fused residual adds, a naive twin (the kernel is already the
 * plain two-pass loop; the tests check it against a double-precision reference). */
#include <math.h>
#include <omp.h>

#include "ops.h"

void ops_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, int B, int C, float eps) {
#pragma omp parallel for if ((size_t)B * C > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *restrict x = inp + (size_t)b * C;
        float *restrict o = out + (size_t)b * C;
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int i = 0; i < C; i++) m += x[i];
        m /= (float)C;
        float v = 0.0f; /* two-pass variance: no cancellation when |mean| >> std */
#pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        float s = 1.0f / sqrtf(v / (float)C + eps);
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[b] = m;
        rstd[b] = s;
    }
}

void ops_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, const float *mean, const float *rstd, int B, int C) {
#pragma omp parallel if ((size_t)B * C > OPS_PAR_MIN)
    {
        const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        const int b0 = (int)((long)B * tid / nt), b1 = (int)((long)B * (tid + 1) / nt);
        float dw[C], db[C];
        for (int i = 0; i < C; i++) dw[i] = db[i] = 0.0f;
        for (int b = b0; b < b1; b++) {
            const float *restrict x = inp + (size_t)b * C, *restrict dy = dout + (size_t)b * C;
            const float m = mean[b], s = rstd[b];
            float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
            for (int i = 0; i < C; i++) {
                float norm = (x[i] - m) * s, dnorm = weight[i] * dy[i];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * norm;
                dw[i] += dy[i] * norm;
                db[i] += dy[i];
            }
            dnorm_mean /= (float)C;
            dnorm_norm_mean /= (float)C;
            if (dinp) {
                float *restrict dx = dinp + (size_t)b * C;
                for (int i = 0; i < C; i++) {
                    float norm = (x[i] - m) * s;
                    dx[i] += (weight[i] * dy[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            if (t == tid) {
                for (int i = 0; i < C; i++) {
                    if (dweight) dweight[i] += dw[i];
                    if (dbias) dbias[i] += db[i];
                }
            }
#pragma omp barrier
        }
    }
}
