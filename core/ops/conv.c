/* conv.c — 2-D convolution over NHWC images, forward/backward.
 * Fast path: im2col of the WHOLE batch into the caller's scratch, then one cblas_sgemm (the
 * convolution is a linear layer over the columns, so ops_linear_* does the products), so OpenBLAS
 * sees one large product (M = N*OH*OW rows) instead of N small ones. The backward recomputes the
 * columns (the scratch is shared between layers) for dweight, then reuses the same scratch for
 * dcol and scatters it back with col2im. A 1x1, stride-1, unpadded convolution IS a linear layer
 * on NHWC rows, so it skips im2col and needs no scratch.
 * im2col/col2im are OpenMP-parallel over output rows / images; no BLAS is called inside them.
 * Deliberately left out: dilation, groups, non-square kernels, Winograd/FFT. */
#include <cblas.h>
#include <string.h>

#include "ops.h"

typedef struct {
    int N, H, W, C, OC, K, stride, pad, OH, OW;
} ConvDims;

static ConvDims conv_dims(int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = {N, H, W, C, OC, K, stride, pad, (H + 2 * pad - K) / stride + 1, (W + 2 * pad - K) / stride + 1};
    return d;
}

static int conv_is_pointwise(const ConvDims *d) { return d->K == 1 && d->stride == 1 && d->pad == 0; }

size_t ops_conv2d_scratch_floats(int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    if (conv_is_pointwise(&d)) return 0;
    return (size_t)N * d.OH * d.OW * K * K * C;
}

/* Valid kernel columns [lo, hi) of a window starting at input column x0: in NHWC the pixels
 * x0+lo .. x0+hi-1 of one input row are ONE contiguous run of (hi - lo) * C floats, so im2col and
 * col2im move a run per kernel row instead of a pixel at a time (C = 3 in the first layer). */
static void valid_columns(int *lo, int *hi, int x0, const ConvDims *d) {
    *lo = x0 < 0 ? -x0 : 0;
    *hi = d->W - x0 < d->K ? d->W - x0 : d->K;
    if (*hi < *lo) *hi = *lo;
}

/* col [N*OH*OW, K*K*C]: row (n, oy, ox) holds the receptive field in (ky, kx, c) order, the
 * layout of weight [OC, K, K, C], with zeros where the window hangs over the padding. */
static void im2col(float *restrict col, const float *restrict inp, const ConvDims *d) {
    const int K = d->K, C = d->C;
    const size_t row_len = (size_t)K * K * C, run = (size_t)K * C;
#pragma omp parallel for if ((size_t)d->N * d->OH * d->OW * row_len > OPS_PAR_MIN) schedule(static)
    for (int ny = 0; ny < d->N * d->OH; ny++) {
        int n = ny / d->OH, oy = ny % d->OH;
        for (int ox = 0; ox < d->OW; ox++) {
            float *restrict dst = col + ((size_t)ny * d->OW + ox) * row_len;
            int x0 = ox * d->stride - d->pad, lo, hi;
            valid_columns(&lo, &hi, x0, d);
            for (int ky = 0; ky < K; ky++, dst += run) {
                int y = oy * d->stride - d->pad + ky;
                if (y < 0 || y >= d->H) {
                    memset(dst, 0, run * sizeof *dst);
                    continue;
                }
                memset(dst, 0, (size_t)lo * C * sizeof *dst);
                memcpy(dst + (size_t)lo * C, inp + (((size_t)n * d->H + y) * d->W + x0 + lo) * C,
                       (size_t)(hi - lo) * C * sizeof *dst);
                memset(dst + (size_t)hi * C, 0, (size_t)(K - hi) * C * sizeof *dst);
            }
        }
    }
}

/* dinp [N, H, W, C] += the transpose of im2col applied to dcol. Windows of one image overlap, so
 * the parallel loop is over images, whose pixels are disjoint. */
static void col2im(float *restrict dinp, const float *restrict dcol, const ConvDims *d) {
    const int K = d->K, C = d->C;
    const size_t row_len = (size_t)K * K * C, run = (size_t)K * C;
#pragma omp parallel for if ((size_t)d->N * d->OH * d->OW * row_len > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < d->N; n++)
        for (int oy = 0; oy < d->OH; oy++)
            for (int ox = 0; ox < d->OW; ox++) {
                const float *restrict src = dcol + (((size_t)n * d->OH + oy) * d->OW + ox) * row_len;
                int x0 = ox * d->stride - d->pad, lo, hi;
                valid_columns(&lo, &hi, x0, d);
                for (int ky = 0; ky < K; ky++, src += run) {
                    int y = oy * d->stride - d->pad + ky;
                    if (y < 0 || y >= d->H) continue;
                    float *restrict dst = dinp + (((size_t)n * d->H + y) * d->W + x0 + lo) * C;
                    const float *restrict s = src + (size_t)lo * C;
                    for (size_t i = 0; i < (size_t)(hi - lo) * C; i++) dst[i] += s[i];
                }
            }
}

void ops_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                        int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    const float *col = inp;
    if (!conv_is_pointwise(&d)) {
        im2col(scratch, inp, &d);
        col = scratch;
    }
    /* out [M, OC] = col [M, KKC] @ weight^T + bias: a linear layer over the columns */
    ops_linear_forward(out, col, weight, bias, N * d.OH * d.OW, K * K * C, OC);
}

void ops_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                         const float *inp, const float *weight, int N, int H, int W, int C, int OC, int K,
                         int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    const int M = N * d.OH * d.OW, KKC = K * K * C;
    if (conv_is_pointwise(&d)) {
        ops_linear_backward(dinp, dweight, dbias, dout, inp, weight, M, KKC, OC);
        return;
    }
    if (dweight) im2col(scratch, inp, &d);
    ops_linear_backward(NULL, dweight, dbias, dout, scratch, weight, M, KKC, OC);
    if (dinp) {
        /* dcol [M, KKC] = dout [M, OC] @ weight [OC, KKC], overwriting the columns */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, KKC, OC, 1.0f, dout, OC, weight, KKC, 0.0f, scratch,
                    KKC);
        col2im(dinp, scratch, &d);
    }
}

/* The references walk every (output pixel, kernel tap, channel) directly, with no im2col. */
void ops_conv2d_forward_naive(float *out, const float *inp, const float *weight, const float *bias,
                              int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < d.OH; oy++)
            for (int ox = 0; ox < d.OW; ox++)
                for (int o = 0; o < OC; o++) {
                    float acc = bias ? bias[o] : 0.0f;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                            if (y < 0 || y >= H || x < 0 || x >= W) continue;
                            for (int c = 0; c < C; c++)
                                acc += inp[(((size_t)n * H + y) * W + x) * C + c] *
                                       weight[(((size_t)o * K + ky) * K + kx) * C + c];
                        }
                    out[(((size_t)n * d.OH + oy) * d.OW + ox) * OC + o] = acc;
                }
}

void ops_conv2d_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < d.OH; oy++)
            for (int ox = 0; ox < d.OW; ox++)
                for (int o = 0; o < OC; o++) {
                    float g = dout[(((size_t)n * d.OH + oy) * d.OW + ox) * OC + o];
                    if (dbias) dbias[o] += g;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                            if (y < 0 || y >= H || x < 0 || x >= W) continue;
                            for (int c = 0; c < C; c++) {
                                size_t i = (((size_t)n * H + y) * W + x) * C + c;
                                size_t w = (((size_t)o * K + ky) * K + kx) * C + c;
                                if (dinp) dinp[i] += g * weight[w];
                                if (dweight) dweight[w] += g * inp[i];
                            }
                        }
                }
}
