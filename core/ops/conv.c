/* conv.c — 2-D convolution over NHWC images, forward/backward.
 * 3x3 convs with pad 1, stride 1 or 2 and OC a multiple of 16 run their forward, and (C = 3 or a
 * multiple of 8) their weight gradient, in conv_direct.c (no im2col); everything else goes
 * through this file.
 * Fast path: im2col of the WHOLE batch into the caller's scratch, then one cblas_sgemm (the
 * convolution is a linear layer over the columns, so ops_linear_* does the products), so OpenBLAS
 * sees one large product (M = N*OH*OW rows) instead of N small ones. The backward recomputes the
 * columns (the scratch is shared between layers) for dweight, then reuses the same scratch for
 * dcol and scatters it back with col2im (which, in the ReLU-fused backward, also applies the mask of
 * the ReLU whose output the conv read). A 1x1, stride-1, unpadded convolution IS a linear layer
 * on NHWC rows, so it skips im2col and needs no scratch.
 * im2col/col2im are OpenMP-parallel over output rows / images; no BLAS is called inside them.
 * Deliberately left out: dilation, groups, non-square kernels, Winograd/FFT. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "ops.h"

typedef struct {
    int N, H, W, C, OC, K, stride, pad, OH, OW;
} ConvDims;

static ConvDims conv_dims(int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = {N, H, W, C, OC, K, stride, pad, (H + 2 * pad - K) / stride + 1, (W + 2 * pad - K) / stride + 1};
    return d;
}

static int conv_is_pointwise(const ConvDims *d) { return d->K == 1 && d->stride == 1 && d->pad == 0; }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* The im2col columns unless direct kernels do all three products, and the direct kernels' scratch
 * (independent of N) on top: the sum covers each and stays affine in N. */
size_t ops_conv2d_scratch_floats(int N, int H, int W, int C, int OC, int K, int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    if (conv_is_pointwise(&d)) return 0;
    int fwd = ops_conv2d_direct_ok(K, stride, pad, OC), dw = ops_conv2d_direct_dweight_ok(K, stride, pad, C, OC);
    int dx = ops_conv2d_direct_dinp_ok(K, stride, pad, C);
    size_t cols = fwd && dw && dx ? 0 : (size_t)N * d.OH * d.OW * K * K * C, direct = 0;
    if (fwd) direct = ops_conv2d_direct_scratch_floats(C, OC);
    if (dw) direct = max_size(direct, ops_conv2d_direct_dweight_scratch_floats(C, OC));
    if (dx) direct = max_size(direct, ops_conv2d_direct_dinp_scratch_floats(C, OC));
    return cols + direct;
}

/* Valid kernel columns [lo, hi) of a window starting at input column x0: in NHWC the pixels
 * x0+lo .. x0+hi-1 of one input row are ONE contiguous run of (hi - lo) * C floats, so im2col and
 * col2im move a run per kernel row instead of a pixel at a time (C = 3 in the first layer). */
static void valid_columns(int *lo, int *hi, int x0, const ConvDims *d) {
    *lo = x0 < 0 ? -x0 : 0;
    *hi = d->W - x0 < d->K ? d->W - x0 : d->K;
    if (*hi < *lo) *hi = *lo;
}

/* One im2col row: the receptive field of output pixel (n, oy, ox) in (ky, kx, c) order. The runs
 * are short (K*C = 9 floats in the first layer), so they are plain loops: a memcpy/memset call per
 * run cost more than the copy (6% of a step in a profile). GCC would turn the loops back into those
 * calls, hence the attribute (GCC only). */
#if defined(__GNUC__) && !defined(__clang__)
#define CONV_NO_MEMCPY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CONV_NO_MEMCPY_CALLS /* clang (the fuzz build) has no such pass to switch off */
#endif
CONV_NO_MEMCPY_CALLS static void im2col_row(float *restrict dst, const float *restrict img, int oy, int x0, const ConvDims *d) {
    const int K = d->K, C = d->C, run = K * C;
    int lo, hi;
    valid_columns(&lo, &hi, x0, d);
    for (int ky = 0; ky < K; ky++, dst += run) {
        int y = oy * d->stride - d->pad + ky;
        if (y < 0 || y >= d->H) {
            for (int i = 0; i < run; i++) dst[i] = 0.0f;
            continue;
        }
        const float *restrict src = img + ((size_t)y * d->W + x0) * C;
        for (int i = 0; i < lo * C; i++) dst[i] = 0.0f;
        for (int i = lo * C; i < hi * C; i++) dst[i] = src[i];
        for (int i = hi * C; i < run; i++) dst[i] = 0.0f;
    }
}

/* col [N*OH*OW, K*K*C]: row (n, oy, ox) holds the receptive field in (ky, kx, c) order, the
 * layout of weight [OC, K, K, C], with zeros where the window hangs over the padding. */
static void im2col(float *restrict col, const float *restrict inp, const ConvDims *d) {
    const size_t row_len = (size_t)d->K * d->K * d->C;
#pragma omp parallel for if ((size_t)d->N * d->OH * d->OW * row_len > OPS_PAR_MIN) schedule(static)
    for (int ny = 0; ny < d->N * d->OH; ny++) {
        int n = ny / d->OH, oy = ny % d->OH;
        const float *img = inp + (size_t)n * d->H * d->W * d->C;
        for (int ox = 0; ox < d->OW; ox++)
            im2col_row(col + ((size_t)ny * d->OW + ox) * row_len, img, oy, ox * d->stride - d->pad, d);
    }
}

/* dinp [N, H, W, C] += the transpose of im2col applied to dcol; with relu_out (the conv's input
 * [N, H, W, C], itself a ReLU's output) only where relu_out > 0: the ReLU's backward, fused. Windows
 * of one image overlap, so the parallel loop is over images, whose pixels are disjoint. */
static void col2im(float *restrict dinp, const float *restrict dcol, const float *restrict relu_out,
                   const ConvDims *d) {
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
                    size_t at = (((size_t)n * d->H + y) * d->W + x0 + lo) * C;
                    float *restrict dst = dinp + at;
                    const float *restrict s = src + (size_t)lo * C;
                    const int len = (hi - lo) * C;
                    if (relu_out) {
                        const float *restrict m = relu_out + at;
                        for (int i = 0; i < len; i++) dst[i] += m[i] > 0.0f ? s[i] : 0.0f;
                    } else {
                        for (int i = 0; i < len; i++) dst[i] += s[i];
                    }
                }
            }
}

void ops_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                        int N, int H, int W, int C, int OC, int K, int stride, int pad, OpsAct act) {
    if (ops_conv2d_direct_ok(K, stride, pad, OC)) {
        ops_conv2d_direct_forward(out, scratch, inp, weight, bias, N, H, W, C, OC, stride, act);
        return;
    }
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    const float *col = inp;
    if (!conv_is_pointwise(&d)) {
        im2col(scratch, inp, &d);
        col = scratch;
    }
    /* out [M, OC] = col [M, KKC] @ weight^T + bias: a linear layer over the columns */
    ops_linear_forward(out, col, weight, bias, N * d.OH * d.OW, K * K * C, OC);
    if (act == OPS_RELU) ops_relu_forward(out, out, (size_t)N * d.OH * d.OW * OC);
}

/* The backward; relu_inp: inp is a ReLU's output and dinp receives the gradient of the ReLU's
 * input instead of inp's (see ops.h). */
static void conv_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                          const float *inp, const float *weight, const ConvDims *d, int relu_inp, OpsStore store) {
    const int M = d->N * d->OH * d->OW, KKC = d->K * d->K * d->C, OC = d->OC;
    if (conv_is_pointwise(d)) {
        CHECK(!relu_inp, "a pointwise conv has no scratch for the ReLU-fused backward");
        ops_linear_backward(dinp, dweight, dbias, dout, inp, weight, M, KKC, OC);
        return;
    }
    if (dweight && ops_conv2d_direct_dweight_ok(d->K, d->stride, d->pad, d->C, OC)) {
        ops_conv2d_direct_dweight(dweight, dbias, scratch, dout, inp, d->N, d->H, d->W, d->C, OC, d->stride);
        dweight = dbias = NULL; /* done: only dinp below */
    }
    if (dinp && ops_conv2d_direct_dinp_ok(d->K, d->stride, d->pad, d->C)) {
        ops_conv2d_direct_dinp(dinp, scratch, dout, weight, relu_inp ? inp : NULL, d->N, d->H, d->W, d->C, OC,
                               d->stride, store);
        dinp = NULL;
    }
    /* col2im scatters (a pixel receives from several columns), so it can only accumulate */
    if (dinp && store == OPS_OVERWRITE) memset(dinp, 0, (size_t)d->N * d->H * d->W * d->C * sizeof *dinp);
    if (dweight) im2col(scratch, inp, d);
    ops_linear_backward(NULL, dweight, dbias, dout, scratch, weight, M, KKC, OC);
    if (dinp) {
        /* dcol [M, KKC] = dout [M, OC] @ weight [OC, KKC], overwriting the columns */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, KKC, OC, 1.0f, dout, OC, weight, KKC, 0.0f, scratch,
                    KKC);
        col2im(dinp, scratch, relu_inp ? inp : NULL, d);
    }
}

void ops_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                         const float *inp, const float *weight, int N, int H, int W, int C, int OC, int K,
                         int stride, int pad) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    conv_backward(dinp, dweight, dbias, scratch, dout, inp, weight, &d, 0, OPS_ACCUMULATE);
}

void ops_conv2d_relu_backward(float *da, float *dweight, float *dbias, float *scratch, const float *dout,
                              const float *inp, const float *weight, int N, int H, int W, int C, int OC, int K,
                              int stride, int pad, OpsStore store) {
    ConvDims d = conv_dims(N, H, W, C, OC, K, stride, pad);
    conv_backward(da, dweight, dbias, scratch, dout, inp, weight, &d, 1, store);
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

/* Reference: the plain backward into a zeroed d(inp), then the ReLU's backward as its own loop. */
void ops_conv2d_relu_backward_naive(float *da, float *dweight, float *dbias, const float *dout, const float *inp,
                                    const float *weight, int N, int H, int W, int C, int OC, int K, int stride,
                                    int pad) {
    size_t n = (size_t)N * H * W * C;
    float *dinp = da ? callocCheck(n, sizeof *dinp) : NULL;
    ops_conv2d_backward_naive(dinp, dweight, dbias, dout, inp, weight, N, H, W, C, OC, K, stride, pad);
    for (size_t i = 0; da && i < n; i++) da[i] += inp[i] > 0.0f ? dinp[i] : 0.0f;
    free(dinp);
}
