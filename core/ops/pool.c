/* pool.c — pooling over NHWC images: global average, K x K average and max (stride S, no padding).
 * In NHWC a window is K*K contiguous channel runs, so the inner loops run over channels.
 * OpenMP over images above OPS_PAR_MIN elements; every image's pixels are disjoint, so the
 * scattering backwards are race-free.
 * Deliberately left out: padding, ceil mode, non-square windows. */
#include <string.h>

#include "ops.h"

void ops_global_avgpool_forward(float *out, const float *inp, int N, int H, int W, int C) {
    const int HW = H * W;
    const float scale = 1.0f / (float)HW;
#pragma omp parallel for if ((size_t)N * HW * C > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        float *restrict o = out + (size_t)n * C;
        const float *restrict in = inp + (size_t)n * HW * C;
        memset(o, 0, (size_t)C * sizeof *o);
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) o[c] += in[(size_t)p * C + c];
        for (int c = 0; c < C; c++) o[c] *= scale;
    }
}

void ops_global_avgpool_backward(float *dinp, const float *dout, int N, int H, int W, int C) {
    const int HW = H * W;
    const float scale = 1.0f / (float)HW;
#pragma omp parallel for if ((size_t)N * HW * C > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *restrict d = dout + (size_t)n * C;
        float *restrict di = dinp + (size_t)n * HW * C;
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) di[(size_t)p * C + c] += d[c] * scale;
    }
}

void ops_avgpool2d_forward(float *out, const float *inp, int N, int H, int W, int C, int K, int S) {
    const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    const float scale = 1.0f / (float)(K * K);
#pragma omp parallel for if ((size_t)N * H * W * C > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                float *restrict o = out + (((size_t)n * OH + oy) * OW + ox) * C;
                memset(o, 0, (size_t)C * sizeof *o);
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        const float *restrict in = inp + (((size_t)n * H + oy * S + ky) * W + ox * S + kx) * C;
                        for (int c = 0; c < C; c++) o[c] += in[c];
                    }
                for (int c = 0; c < C; c++) o[c] *= scale;
            }
}

void ops_avgpool2d_backward(float *dinp, const float *dout, int N, int H, int W, int C, int K, int S) {
    const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    const float scale = 1.0f / (float)(K * K);
#pragma omp parallel for if ((size_t)N * H * W * C > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const float *restrict d = dout + (((size_t)n * OH + oy) * OW + ox) * C;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        float *restrict di = dinp + (((size_t)n * H + oy * S + ky) * W + ox * S + kx) * C;
                        for (int c = 0; c < C; c++) di[c] += d[c] * scale;
                    }
            }
}

void ops_maxpool2d_forward(float *out, int *argmax, const float *inp, int N, int H, int W, int C, int K, int S) {
    const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
#pragma omp parallel for if ((size_t)N * H * W * C > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                size_t o = (((size_t)n * OH + oy) * OW + ox) * C;
                size_t i0 = (((size_t)n * H + oy * S) * W + ox * S) * C;
                float *restrict best = out + o;
                int *restrict arg = argmax + o;
                for (int c = 0; c < C; c++) {
                    best[c] = inp[i0 + c];
                    arg[c] = (int)(i0 + c);
                }
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        const int i = (int)((((size_t)n * H + oy * S + ky) * W + ox * S + kx) * C);
                        /* branch-free selects vectorise; strict > keeps the first of tied maxima */
                        for (int c = 0; c < C; c++) {
                            float v = inp[i + c];
                            int better = v > best[c];
                            best[c] = better ? v : best[c];
                            arg[c] = better ? i + c : arg[c];
                        }
                    }
            }
}

void ops_maxpool2d_backward(float *dinp, const float *dout, const int *argmax, int N, int OH, int OW, int C) {
    const size_t per_image = (size_t)OH * OW * C;
#pragma omp parallel for if ((size_t)N * per_image > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++)
        for (size_t j = n * per_image; j < (n + 1) * per_image; j++) dinp[argmax[j]] += dout[j];
}
