/* elementwise.c — ReLU, GELU (tanh approximation, as GPT-2) and the residual add.
 * Element-parallel with OpenMP only above OPS_PAR_MIN elements, where the fork/join pays.
 * Pointers are not restrict-qualified: callers may run these in place (out == inp), and GCC
 * versions the loops with an alias check anyway.
 * ops_gelu_backward can overwrite, in place (OPS_OVERWRITE, see ops.h).
 * Deliberately left out: the exact erf GELU, fused bias+activation variants. */
#include "ops.h"

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_CUBIC 0.044715f
/* GCC vectorises for 256-bit registers on AVX-512 machines unless told otherwise; GELU's exp and
 * division per element are worth the full width. And it contracts a*b+c into an FMA only when
 * told (-std=c11 switches contraction off): the exp's polynomial and GELU's cubic are chains of
 * them (27-31% less time per element with the FMAs, forward and backward, 1M elements, one thread). */
#if defined(__GNUC__) && !defined(__clang__)
#define GELU_WIDE __attribute__((target("prefer-vector-width=512"), optimize("fp-contract=fast")))
#else
#define GELU_WIDE
#endif

/* Every loop here says `if (parallel: ...)`: the condition decides whether to fork threads; a bare
 * `if` on `parallel for simd` applies to the simd part too and ran every call below OPS_PAR_MIN
 * scalar. */
void ops_relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd if (parallel : n > OPS_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void ops_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd if (parallel : n > OPS_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

/* GELU's tanh form as a logistic: 0.5 x (1 + tanh(u)) = x s with s = 1 / (1 + exp(-2u)), one
 * exponential and one division per element (tanh(u) through exp(-2|u|) took a sign select and a
 * second division's worth of work more). exp(-2u) = +inf for u < -44 gives s = 0 exactly, as
 * tanh = -1 did. */
GELU_WIDE static inline float gelu_logistic(float x) {
    return 1.0f / (1.0f + ops_expf(-2.0f * GELU_SCALE * (x + GELU_CUBIC * x * x * x)));
}

GELU_WIDE void ops_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd if (parallel : n > OPS_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * gelu_logistic(inp[i]);
}

/* d/dx [x s(2u)] = s + x s (1 - s) 2 u'(x), u' = GELU_SCALE (1 + 3 GELU_CUBIC x^2) */
GELU_WIDE static inline float gelu_grad(float x) {
    float s = gelu_logistic(x), du = 2.0f * GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
    return s + x * s * (1.0f - s) * du;
}

GELU_WIDE void ops_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n, OpsStore store) {
    if (store == OPS_OVERWRITE) {
#pragma omp parallel for simd if (parallel : n > OPS_PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] = gelu_grad(inp[i]) * dout[i];
        return;
    }
#pragma omp parallel for simd if (parallel : n > OPS_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] += gelu_grad(inp[i]) * dout[i];
}

void ops_add_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd if (parallel : n > OPS_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
