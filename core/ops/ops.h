/* ops.h — the numerical kernels of cliplab as forward/backward pairs (llm.c style).
 *
 * Conventions, for every kernel:
 *  - fp32, batch-first, row-major. Images are NHWC: element (n, y, x, c) of an [N,H,W,C] tensor is
 *    at ((n*H + y)*W + x)*C + c. Chosen once for the whole code base because im2col rows are then
 *    contiguous channel runs and LayerNorm over channels is a plain row-wise LayerNorm.
 *  - arguments are ordered outputs, inputs, dims; the shape of each array is in the comment above.
 *  - backward ACCUMULATES (+=) into every gradient it writes, so a shared input's gradient is the
 *    sum over its consumers with one zero-grad per step. A NULL gradient pointer means "not needed".
 *    The exception is opt-in: a backward that takes an OpsStore may be told OPS_OVERWRITE for a
 *    gradient it computes whole and that has no other writer, which then needs no zeroing.
 *  - every fast kernel keeps a *_naive reference beside it (plain loops, same signature) that tests
 *    compare against.
 * Deliberately left out: autograd, dtype dispatch, broadcasting.
 */
#ifndef CLIPLAB_OPS_H
#define CLIPLAB_OPS_H

#include <stddef.h>

/* How a backward that computes each element of a gradient whole in one place stores it:
 * OPS_ACCUMULATE adds (+=, the convention above); OPS_OVERWRITE stores (=), for a caller whose
 * buffer has no other writer: the per-step zeroing pass over it and the kernel's read of the
 * zeros are skipped (together ~5% of a conv tower's step, tests/bench/README.md). */
typedef enum { OPS_ACCUMULATE, OPS_OVERWRITE } OpsStore;

/* The activation a forward applies to its output as it stores it: OPS_RELU saves the separate
 * read-and-write pass over an output that, at a tower's batch sizes, no longer sits in cache. */
typedef enum { OPS_IDENTITY, OPS_RELU } OpsAct;

/* exp(x) for fp32 in plain arithmetic, so loops that call it vectorise (glibc's expf only does
 * under -ffast-math): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, Cephes' degree-6
 * polynomial, 2^n built from exponent bits in two halves so n = 128 and denormal results work.
 * Relative error < 1 ulp (measured 7.9e-8); 0 below -103.97 (full underflow), +inf above
 * ln(FLT_MAX), NaN stays NaN. The range is enforced only at the end, by bit masks: a clamp or a
 * ?: select lets GCC move the arithmetic into branches, which (fp ops may trap) blocks its
 * vectorisation; out of range the integer work runs on garbage bits, in unsigned arithmetic so it
 * stays defined, and is masked away. */
static inline float ops_expf(float x) {
    const float hi = 88.72283935546875f, lo = -103.972084045410f;
    /* adding 1.5 * 2^23 rounds x / ln2 to an integer n held in the low mantissa bits */
    union {
        float f;
        unsigned u;
    } shifted = {.f = x * 1.44269504088896341f + 12582912.0f};
    float n = shifted.f - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int ni = (int)(shifted.u - 0x4B400000u), n1 = ni / 2, n2 = ni - n1;
    union {
        unsigned u;
        float f;
    } s1 = {.u = (unsigned)(n1 + 127) << 23}, s2 = {.u = (unsigned)(n2 + 127) << 23};
    union {
        float f;
        unsigned u;
    } y = {.f = p * s1.f * s2.f};
    const unsigned under = 0u - (unsigned)(x < lo), over = 0u - (unsigned)(x > hi);
    y.u = (y.u & ~(under | over)) | (over & 0x7F800000u); /* 0 below, +inf above; NaN compares false */
    return y.f;
}

/* Element count above which a row- or element-parallel kernel forks OpenMP threads; below it the
 * fork/join costs more than the loop (measured in tests/bench/bench_ops.c). */
#define OPS_PAR_MIN 32768

/* ---- linear: out = inp @ weight^T + bias ----
 * out [B, OC], inp [B, C], weight [OC, C], bias [OC] or NULL */
void ops_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC);
void ops_linear_forward_naive(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC);
/* dbias [OC] += column sums of dout [B, OC], row by row (also the direct conv's bias gradient,
 * chunk by chunk: the same additions in the same order) */
void ops_bias_backward(float *dbias, const float *dout, int B, int OC);
/* dinp [B, C], dweight [OC, C], dbias [OC] (each may be NULL), dout [B, OC] */
void ops_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int B, int C, int OC);
void ops_linear_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int B, int C, int OC);

/* ---- conv2d, NHWC, square kernel K, stride, zero padding pad ----
 * out [N, OH, OW, OC] with OH = (H + 2*pad - K)/stride + 1 (same for OW); inp [N, H, W, C];
 * weight [OC, K, K, C]; bias [OC] or NULL; scratch: ops_conv2d_scratch_floats(...) floats owned by
 * the caller (allocated once, reused every step; the backward may use the same scratch). The scratch
 * size is affine in N: a part independent of N (ops_conv2d_scratch_floats(0, ...)) plus N times a
 * per-sample part, so a caller running batch slices concurrently gives each slice its own.
 * act: OPS_RELU stores relu(conv), as ops_relu_forward would (the naive twin has no act). */
size_t ops_conv2d_scratch_floats(int N, int H, int W, int C, int OC, int K, int stride, int pad);
void ops_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                        int N, int H, int W, int C, int OC, int K, int stride, int pad, OpsAct act);
void ops_conv2d_forward_naive(float *out, const float *inp, const float *weight, const float *bias,
                              int N, int H, int W, int C, int OC, int K, int stride, int pad);
/* The direct forward (conv_direct.c), which ops_conv2d_forward takes whenever
 * ops_conv2d_direct_ok: 3x3, pad 1, stride 1 or 2, OC a multiple of 16. Its scratch,
 * ops_conv2d_direct_scratch_floats = OC*9*C (packed weights) + C (zeros), whatever the batch, is
 * part of ops_conv2d_scratch_floats. The naive twin is ops_conv2d_forward_naive. */
int ops_conv2d_direct_ok(int K, int stride, int pad, int OC);
size_t ops_conv2d_direct_scratch_floats(int C, int OC);
void ops_conv2d_direct_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                               int N, int H, int W, int C, int OC, int stride, OpsAct act);
/* dweight [OC, 3, 3, C] += the weight gradient, without im2col, which the backwards take whenever
 * ops_conv2d_direct_dweight_ok (the direct conditions and C = 3 or a multiple of 8), and dbias [OC]
 * (NULL: none) += dout's column sums, added row by row as linear.c's bias pass does, while the
 * rows are in cache; scratch: ops_conv2d_direct_dweight_scratch_floats, independent of the batch.
 * Serial: each weight's sum runs over the pixels in one fixed order. The naive twin is
 * ops_conv2d_backward_naive. */
int ops_conv2d_direct_dweight_ok(int K, int stride, int pad, int C, int OC);
size_t ops_conv2d_direct_dweight_scratch_floats(int C, int OC);
void ops_conv2d_direct_dweight(float *dweight, float *dbias, float *scratch, const float *dout, const float *inp,
                               int N, int H, int W, int C, int OC, int stride);
/* dinp [N, H, W, C] += (or, OPS_OVERWRITE, =) the input gradient without col2im, which the
 * backwards take whenever ops_conv2d_direct_dinp_ok (3x3, pad 1, stride 1 or 2, C a multiple of
 * 16); with relu_out [N, H, W, C] (the conv's input, a ReLU's output) only where relu_out > 0, as
 * ops_conv2d_relu_backward. scratch: ops_conv2d_direct_dinp_scratch_floats, independent of the
 * batch. The naive twins are ops_conv2d_backward_naive and ops_conv2d_relu_backward_naive. */
int ops_conv2d_direct_dinp_ok(int K, int stride, int pad, int C);
size_t ops_conv2d_direct_dinp_scratch_floats(int C, int OC);
void ops_conv2d_direct_dinp(float *dinp, float *scratch, const float *dout, const float *weight, const float *relu_out,
                            int N, int H, int W, int C, int OC, int stride, OpsStore store);
/* dinp [N, H, W, C], dweight [OC, K, K, C], dbias [OC] (each may be NULL); dout [N, OH, OW, OC] */
void ops_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                         const float *inp, const float *weight, int N, int H, int W, int C, int OC, int K,
                         int stride, int pad);
void ops_conv2d_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int N, int H, int W, int C, int OC, int K, int stride, int pad);
/* The same backward when the conv's input is a ReLU's output, inp = relu(a): da [N, H, W, C] +=
 * (inp > 0) * d(inp), the gradient of the ReLU's INPUT, so a tower needs neither d(inp) nor a
 * separate ReLU backward pass (the mask is applied inside col2im). Not for pointwise convs (CHECK).
 * store OPS_OVERWRITE: da = instead of +=, where the ReLU was off too (0). The weight and bias
 * gradients always accumulate. */
void ops_conv2d_relu_backward(float *da, float *dweight, float *dbias, float *scratch, const float *dout,
                              const float *inp, const float *weight, int N, int H, int W, int C, int OC, int K,
                              int stride, int pad, OpsStore store);
void ops_conv2d_relu_backward_naive(float *da, float *dweight, float *dbias, const float *dout, const float *inp,
                                    const float *weight, int N, int H, int W, int C, int OC, int K, int stride,
                                    int pad);

/* ---- pooling, NHWC ----
 * global average: out [N, C], inp [N, H, W, C] */
void ops_global_avgpool_forward(float *out, const float *inp, int N, int H, int W, int C);
void ops_global_avgpool_backward(float *dinp, const float *dout, int N, int H, int W, int C);
/* K x K window, stride S, no padding: out [N, OH, OW, C], OH = (H - K)/S + 1 */
void ops_avgpool2d_forward(float *out, const float *inp, int N, int H, int W, int C, int K, int S);
void ops_avgpool2d_backward(float *dinp, const float *dout, int N, int H, int W, int C, int K, int S);
/* argmax [N, OH, OW, C]: flat index into inp of the winning element, saved for the backward */
void ops_maxpool2d_forward(float *out, int *argmax, const float *inp, int N, int H, int W, int C, int K, int S);
void ops_maxpool2d_backward(float *dinp, const float *dout, const int *argmax, int N, int OH, int OW, int C);

/* ---- elementwise activations: out, inp, dinp, dout all [n] ---- */
void ops_relu_forward(float *out, const float *inp, size_t n);
void ops_relu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* GELU, tanh approximation (GPT-2; PyTorch's nn.GELU(approximate="tanh")) */
void ops_gelu_forward(float *out, const float *inp, size_t n);
/* dinp += (OPS_OVERWRITE: =) GELU'(inp) * dout. With OPS_OVERWRITE dinp may be dout: the GELU
 * output's gradient becomes its input's in place, for a GELU whose output gradient has no other
 * reader (the transformer's MLP), which then needs no buffer, no zeroing and no second read. The
 * values are those added to a zeroed dinp (bit for bit, but for a zero's sign: -0 where 0 + -0
 * gives +0, which any later accumulation into a zeroed buffer turns back). */
void ops_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n, OpsStore store);

/* ---- LayerNorm over the last dim ----
 * out [B, C], mean [B], rstd [B] (saved for the backward), inp [B, C], weight [C], bias [C] */
void ops_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, int B, int C, float eps);
/* dinp [B, C], dweight [C], dbias [C] (may be NULL), dout [B, C] */
void ops_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, const float *mean, const float *rstd, int B, int C);

/* ---- softmax over the last dim: out [B, V], inp [B, V] ---- */
void ops_softmax_forward(float *out, const float *inp, int B, int V);
/* dinp [B, V] += J^T dout, out = the forward's output [B, V] */
void ops_softmax_backward(float *dinp, const float *dout, const float *out, int B, int V);
/* One row: out [V] = softmax(inp [V]) with the max subtracted; returns log(sum(exp(inp))), the
 * log-sum-exp that cross-entropy losses need. Shared by the softmax, xent and loss kernels. */
float ops_softmax_row(float *out, const float *inp, int V);
/* The same log-sum-exp, bit for bit, without writing the probabilities (scorers that read only
 * the log-sum-exp: the caption LM's zero-shot decode). */
float ops_logsumexp_row(const float *inp, int V);

/* ---- causal multi-head self-attention (the attention core, projections are ops_linear) ----
 * out [B, T, C]; preatt, att [B, NH, T, T] (saved), key-major: entry (j, t) is query t's scaled
 * score / weight on key j, 0 for t < j; qkv [B, T, 3C] laid out as q | k | v, each C = NH heads x
 * C/NH. Position t attends to positions <= t only (causal mask). */
void ops_attention_forward(float *out, float *preatt, float *att, const float *qkv, int B, int T, int C, int NH);
void ops_attention_forward_naive(float *out, const float *qkv, int B, int T, int C, int NH);
/* Inference only (zero-shot scoring never backpropagates): causal attention over a forest of N
 * rows, row r attending to itself and its ancestors (parent[r] < r; -1 at a root), so every
 * root-to-row path computes what ops_attention_forward computes for that sequence and a shared
 * prefix is computed once. out [N, C]; qkv [N, 3C] as above; parent [N]; paths shorter than
 * OPS_TREE_MAX_DEPTH rows. */
#define OPS_TREE_MAX_DEPTH 512
void ops_attention_tree_forward(float *out, const float *qkv, const int *parent, int N, int C, int NH);
/* dqkv [B, T, 3C], scratch dpreatt, datt [B, NH, T, T] (overwritten, key-major), dout [B, T, C] */
void ops_attention_backward(float *dqkv, float *dpreatt, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int NH);

/* ---- token embedding + positions ----
 * out [B, T, C] = wte[ids[b,t]] + wpe[t] (wpe may be NULL: no positions); ids [B, T]; wte [V, C]; wpe [T, C] */
void ops_embedding_forward(float *out, const int *ids, const float *wte, const float *wpe, int B, int T, int C, int V);
/* dwte [V, C], dwpe [T, C] (may be NULL), dout [B, T, C] */
void ops_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *ids, int B, int T, int C, int V);

/* ---- softmax cross-entropy ----
 * Hard targets: losses [B] (per row; 0 for ignored rows), probs [B, V] (saved), logits [B, V],
 * targets [B] with -1 = ignore (padding). */
void ops_softmax_xent_forward(float *losses, float *probs, const float *logits, const int *targets, int B, int V);
/* dlogits [B, V] += dlosses[b] * (probs - onehot); ignored rows get nothing */
void ops_softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs, const int *targets,
                               int B, int V);
/* Soft targets: target [B, V], each row a distribution (sums to 1): loss_b = -sum_v target log softmax */
void ops_softmax_xent_soft_forward(float *losses, float *probs, const float *logits, const float *target, int B, int V);
void ops_softmax_xent_soft_backward(float *dlogits, const float *dlosses, const float *probs, const float *target,
                                    int B, int V);

/* ---- L2 normalisation of rows: out [B, D] = inp / max(||inp||, eps); norm [B] saved ---- */
/* The eps of the joint embeddings: keeps an all-zero row finite, far below any real row's norm. */
#define OPS_L2NORM_EPS 1e-12f
void ops_l2norm_forward(float *out, float *norm, const float *inp, int B, int D, float eps);
void ops_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm, int B, int D, float eps);

/* ---- small helpers used by towers ---- */
/* out [n] = a + b (residual connections); backward is the identity into both inputs */
void ops_add_forward(float *out, const float *a, const float *b, size_t n);

#endif
