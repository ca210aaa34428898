/* test_ops.c — every kernel of core/ops.
 *
 * Gradients: each backward is compared with central finite differences of a random scalar
 * projection of the output, loss = sum(out * R) with R random (accumulated in double), on a table
 * of shapes that includes sizes 1, 3 and 17 and batch 1. Metric: max |analytic - numeric| over
 * max |numeric|. Kernels that are linear in an input are differenced with a large step (exact up
 * to round-off, so their tolerance is tight); nonlinear ones with h = 1e-2. Every gradient check
 * also calls the backward a second time and expects exactly twice the gradient (+= semantics).
 * Forwards: fast against the *_naive twin (1e-5), or against a double-precision reference written
 * here; the OpenMP paths (large inputs) against the same kernel called row block by row block,
 * which takes the serial path. TEST_OPS_VERBOSE=1 prints every finite-difference error (how the
 * tolerances below were calibrated).
 * Deliberately left out: performance (tests/bench/bench_ops.c).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/rng.h"
#include "ops/ops.h"

#define FAST_VS_NAIVE_TOL 1e-5
#define H_LINEAR 0.5f   /* step for inputs the output is linear in: FD is exact up to round-off */
#define TOL_LINEAR 1e-5 /* observed <= 1e-6 */
#define H_SMOOTH 1e-2f  /* step for nonlinear inputs: O(h^2) truncation vs fp32 round-off / h */
#define TOL_SMOOTH 1e-3 /* observed <= 2.5e-4 */

/* ---------- helpers ---------- */

static float *randn(Rng *r, size_t n, float std) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    rng_fill_normal(r, p, (long)n, std);
    return p;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static float *copy_of(const float *a, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, a, n * sizeof *p);
    return p;
}

/* max |a - ref| / max |ref|: the error relative to the reference's largest entry; a NaN anywhere
 * is an infinite error (fmax alone would drop it) */
static double rel_err_d(const float *a, const double *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(ref[i])) return INFINITY;
        num = fmax(num, fabs((double)a[i] - ref[i]));
        den = fmax(den, fabs(ref[i]));
    }
    return den > 0.0 ? num / den : num;
}

static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(ref[i])) return INFINITY;
        num = fmax(num, fabs((double)a[i] - ref[i]));
        den = fmax(den, fabs((double)ref[i]));
    }
    return den > 0.0 ? num / den : num;
}

#define ASSERT_CLOSE(what, err, tol)                                                               \
    do {                                                                                           \
        double e_ = (err);                                                                         \
        if (!(e_ <= (tol))) fail_msg("%s: relative error %.3g > %.3g", (what), e_, (double)(tol)); \
    } while (0)

/* ---------- the finite-difference gradient checker ----------
 * A test embeds GradCase first in its own struct (dims, extra buffers) and provides forward, which
 * recomputes out from the inputs, and backward, which accumulates into grad[] from dout. */
typedef struct GradCase GradCase;
struct GradCase {
    void (*forward)(GradCase *gc);
    void (*backward)(GradCase *gc);
    const char *label;
    float *out, *dout;
    size_t n_out;
    int n_in;
    float *in[4], *grad[4];
    size_t n[4];
    float h[4]; /* finite-difference step per input */
    double tol[4];
};

static double projected_loss(GradCase *gc) {
    gc->forward(gc);
    double s = 0.0;
    for (size_t i = 0; i < gc->n_out; i++) s += (double)gc->out[i] * gc->dout[i];
    return s;
}

static void gc_input(GradCase *gc, float *x, size_t n, float h, double tol) {
    int k = gc->n_in++;
    gc->in[k] = x;
    gc->grad[k] = zeros(n);
    gc->n[k] = n;
    gc->h[k] = h;
    gc->tol[k] = tol;
}

static void check_gradients(GradCase *gc, Rng *r) {
    rng_fill_normal(r, gc->dout, (long)gc->n_out, 1.0f);
    gc->forward(gc);
    gc->backward(gc);
    float *first[4];
    for (int k = 0; k < gc->n_in; k++) first[k] = copy_of(gc->grad[k], gc->n[k]);
    gc->backward(gc);
    for (int k = 0; k < gc->n_in; k++) {
        double *twice = malloc(gc->n[k] * sizeof *twice);
        for (size_t i = 0; i < gc->n[k]; i++) twice[i] = 2.0 * first[k][i];
        char what[128];
        snprintf(what, sizeof what, "%s input %d: backward twice accumulates 2x", gc->label, k);
        ASSERT_CLOSE(what, rel_err_d(gc->grad[k], twice, gc->n[k]), 1e-6);
        free(twice);
    }
    for (int k = 0; k < gc->n_in; k++) {
        double *num = malloc(gc->n[k] * sizeof *num);
        float h = gc->h[k];
        for (size_t i = 0; i < gc->n[k]; i++) {
            float x = gc->in[k][i];
            gc->in[k][i] = x + h;
            double lp = projected_loss(gc);
            gc->in[k][i] = x - h;
            double lm = projected_loss(gc);
            gc->in[k][i] = x;
            num[i] = (lp - lm) / (2.0 * (double)h);
        }
        char what[128];
        snprintf(what, sizeof what, "%s input %d: backward vs finite differences", gc->label, k);
        if (getenv("TEST_OPS_VERBOSE")) printf("%-40s n=%zu err %.3g\n", what, gc->n[k], rel_err_d(first[k], num, gc->n[k]));
        ASSERT_CLOSE(what, rel_err_d(first[k], num, gc->n[k]), gc->tol[k]);
        free(num);
        free(first[k]);
    }
}

static void gc_free(GradCase *gc) {
    free(gc->out);
    free(gc->dout);
    for (int k = 0; k < gc->n_in; k++) {
        free(gc->in[k]);
        free(gc->grad[k]);
    }
}

static void gc_outputs(GradCase *gc, const char *label, size_t n_out) {
    gc->label = label;
    gc->out = zeros(n_out);
    gc->dout = zeros(n_out);
    gc->n_out = n_out;
}

/* ---------- ops_expf ---------- */

/* Within 1 ulp of exp over the whole fp32 range, denormal results included; the edges exact. */
static void test_expf_accuracy_and_edges(void **state) {
    (void)state;
    double worst = 0.0;
    for (float x = -87.0f; x < 88.7f; x += 0.00731f) {
        double want = exp((double)x);
        worst = fmax(worst, fabs(ops_expf(x) - want) / want);
    }
    if (worst > 1.2e-7) fail_msg("ops_expf: relative error %.3g", worst);
    for (float x = -103.9f; x < -87.4f; x += 0.0131f) /* denormal results: absolute, in units of the smallest */
        assert_true(fabs((double)ops_expf(x) - exp((double)x)) <= 1.401298464e-45);
    assert_true(ops_expf(0.0f) == 1.0f);
    assert_true(ops_expf(-104.0f) == 0.0f && ops_expf(-INFINITY) == 0.0f && ops_expf(-1e30f) == 0.0f);
    assert_true(isinf(ops_expf(88.73f)) && isinf(ops_expf(INFINITY)) && isinf(ops_expf(1e30f)));
    assert_true(isnan(ops_expf(NAN)));
    assert_true(isfinite(ops_expf(88.72f)));
}

/* ---------- linear ---------- */

typedef struct {
    GradCase gc;
    int B, C, OC, has_bias;
} LinearCase;

static void linear_fwd(GradCase *gc) {
    LinearCase *t = (LinearCase *)gc;
    ops_linear_forward(gc->out, gc->in[0], gc->in[1], t->has_bias ? gc->in[2] : NULL, t->B, t->C, t->OC);
}

static void linear_bwd(GradCase *gc) {
    LinearCase *t = (LinearCase *)gc;
    ops_linear_backward(gc->grad[0], gc->grad[1], t->has_bias ? gc->grad[2] : NULL, gc->dout, gc->in[0], gc->in[1],
                        t->B, t->C, t->OC);
}

static const int LINEAR_SHAPES[][4] = {{1, 1, 1, 1}, {1, 3, 17, 1}, {17, 3, 1, 0}, {3, 17, 3, 1}, {5, 8, 6, 0}};

static void test_linear_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 1);
    for (size_t s = 0; s < sizeof LINEAR_SHAPES / sizeof LINEAR_SHAPES[0]; s++) {
        LinearCase t = {.B = LINEAR_SHAPES[s][0], .C = LINEAR_SHAPES[s][1], .OC = LINEAR_SHAPES[s][2],
                        .has_bias = LINEAR_SHAPES[s][3]};
        t.gc.forward = linear_fwd;
        t.gc.backward = linear_bwd;
        gc_outputs(&t.gc, "linear", (size_t)t.B * t.OC);
        gc_input(&t.gc, randn(&r, (size_t)t.B * t.C, 1.0f), (size_t)t.B * t.C, H_LINEAR, TOL_LINEAR);
        gc_input(&t.gc, randn(&r, (size_t)t.OC * t.C, 1.0f), (size_t)t.OC * t.C, H_LINEAR, TOL_LINEAR);
        if (t.has_bias) gc_input(&t.gc, randn(&r, (size_t)t.OC, 1.0f), (size_t)t.OC, H_LINEAR, TOL_LINEAR);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
    }
}

static void test_linear_fast_matches_naive(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 2);
    const int shapes[][3] = {{1, 1, 1}, {1, 17, 3}, {17, 3, 17}, {64, 96, 80}, {257, 128, 384}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            float *x = randn(&r, (size_t)B * C, 1.0f), *w = randn(&r, (size_t)OC * C, 1.0f);
            float *b = with_bias ? randn(&r, OC, 1.0f) : NULL, *dy = randn(&r, (size_t)B * OC, 1.0f);
            float *y1 = zeros((size_t)B * OC), *y2 = zeros((size_t)B * OC);
            ops_linear_forward(y1, x, w, b, B, C, OC);
            ops_linear_forward_naive(y2, x, w, b, B, C, OC);
            ASSERT_CLOSE("linear forward", rel_err(y1, y2, (size_t)B * OC), FAST_VS_NAIVE_TOL);
            /* start from non-zero gradients: both must accumulate onto them */
            float *dx1 = randn(&r, (size_t)B * C, 1.0f), *dw1 = randn(&r, (size_t)OC * C, 1.0f), *db1 = randn(&r, OC, 1.0f);
            float *dx2 = copy_of(dx1, (size_t)B * C), *dw2 = copy_of(dw1, (size_t)OC * C), *db2 = copy_of(db1, OC);
            ops_linear_backward(dx1, dw1, with_bias ? db1 : NULL, dy, x, w, B, C, OC);
            ops_linear_backward_naive(dx2, dw2, with_bias ? db2 : NULL, dy, x, w, B, C, OC);
            ASSERT_CLOSE("linear dinp", rel_err(dx1, dx2, (size_t)B * C), FAST_VS_NAIVE_TOL);
            ASSERT_CLOSE("linear dweight", rel_err(dw1, dw2, (size_t)OC * C), FAST_VS_NAIVE_TOL);
            ASSERT_CLOSE("linear dbias", rel_err(db1, db2, OC), FAST_VS_NAIVE_TOL);
            free(x), free(w), free(b), free(dy), free(y1), free(y2);
            free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
        }
    }
}

/* A NULL gradient is skipped and does not change the others. */
static void test_linear_null_gradients_skipped(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 3);
    int B = 4, C = 5, OC = 3;
    float *x = randn(&r, B * C, 1.0f), *w = randn(&r, OC * C, 1.0f), *dy = randn(&r, B * OC, 1.0f);
    float *dx = zeros(B * C), *dw = zeros(OC * C), *db = zeros(OC);
    float *dw_only = zeros(OC * C), *dx_only = zeros(B * C);
    ops_linear_backward(dx, dw, db, dy, x, w, B, C, OC);
    ops_linear_backward(NULL, dw_only, NULL, dy, x, w, B, C, OC);
    ops_linear_backward(dx_only, NULL, NULL, dy, x, w, B, C, OC);
    assert_memory_equal(dw, dw_only, sizeof(float) * OC * C);
    assert_memory_equal(dx, dx_only, sizeof(float) * B * C);
    free(x), free(w), free(dy), free(dx), free(dw), free(db), free(dw_only), free(dx_only);
}

/* ---------- conv2d ---------- */

typedef struct {
    GradCase gc;
    int N, H, W, C, OC, K, S, P, has_bias;
    float *scratch;
} ConvCase;

static int conv_out(int H, int K, int S, int P) { return (H + 2 * P - K) / S + 1; }

static void conv_fwd(GradCase *gc) {
    ConvCase *t = (ConvCase *)gc;
    ops_conv2d_forward(gc->out, t->scratch, gc->in[0], gc->in[1], t->has_bias ? gc->in[2] : NULL, t->N, t->H, t->W,
                       t->C, t->OC, t->K, t->S, t->P, OPS_IDENTITY);
}

static void conv_bwd(GradCase *gc) {
    ConvCase *t = (ConvCase *)gc;
    ops_conv2d_backward(gc->grad[0], gc->grad[1], t->has_bias ? gc->grad[2] : NULL, t->scratch, gc->dout, gc->in[0],
                        gc->in[1], t->N, t->H, t->W, t->C, t->OC, t->K, t->S, t->P);
}

/* N, H, W, C, OC, K, stride, pad, bias */
static const int CONV_SHAPES[][9] = {
    {1, 5, 5, 3, 4, 3, 1, 1, 1},  /* same-size 3x3 */
    {2, 7, 6, 3, 5, 3, 2, 1, 1},  /* stride 2, pad 1, odd and non-square */
    {2, 4, 5, 3, 17, 1, 1, 0, 0}, /* K = 1: the pointwise path */
    {1, 5, 5, 2, 3, 1, 2, 0, 1},  /* K = 1 with stride 2: through im2col */
    {1, 3, 3, 1, 1, 3, 1, 0, 1},  /* one output pixel, one channel */
    {3, 6, 6, 17, 2, 2, 2, 0, 0}, /* even kernel */
    {1, 6, 4, 2, 3, 5, 1, 2, 1},  /* 5x5, pad 2: windows clipped by two columns on either side */
    {2, 5, 7, 3, 16, 3, 1, 1, 1}, /* the direct kernels (conv_direct.c): 16 channels, odd sizes */
    {1, 6, 5, 8, 32, 3, 2, 1, 0}, /* the direct forward and weight gradient, 32 channels, stride 2 */
    {1, 5, 6, 16, 16, 3, 2, 1, 1}, /* every direct kernel, the input gradient's too */
};

static void test_conv2d_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 4);
    for (size_t s = 0; s < sizeof CONV_SHAPES / sizeof CONV_SHAPES[0]; s++) {
        const int *c = CONV_SHAPES[s];
        ConvCase t = {.N = c[0], .H = c[1], .W = c[2], .C = c[3], .OC = c[4], .K = c[5], .S = c[6], .P = c[7],
                      .has_bias = c[8]};
        int OH = conv_out(t.H, t.K, t.S, t.P), OW = conv_out(t.W, t.K, t.S, t.P);
        t.scratch = zeros(ops_conv2d_scratch_floats(t.N, t.H, t.W, t.C, t.OC, t.K, t.S, t.P));
        t.gc.forward = conv_fwd;
        t.gc.backward = conv_bwd;
        gc_outputs(&t.gc, "conv2d", (size_t)t.N * OH * OW * t.OC);
        size_t ni = (size_t)t.N * t.H * t.W * t.C, nw = (size_t)t.OC * t.K * t.K * t.C;
        gc_input(&t.gc, randn(&r, ni, 1.0f), ni, H_LINEAR, TOL_LINEAR);
        gc_input(&t.gc, randn(&r, nw, 1.0f), nw, H_LINEAR, TOL_LINEAR);
        if (t.has_bias) gc_input(&t.gc, randn(&r, t.OC, 1.0f), t.OC, H_LINEAR, TOL_LINEAR);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
        free(t.scratch);
    }
}

/* The forward with OPS_RELU (direct path: in the store; im2col path: a pass after) is bit for bit
 * ops_relu_forward of the plain forward's output y [N, OH, OW, OC]. */
static void conv_relu_fused_check(const float *y, float *scratch, const float *x, const float *w, const float *b,
                                  int N, int H, int W, int C, int OC, int K, int S, int P) {
    size_t no = (size_t)N * conv_out(H, K, S, P) * conv_out(W, K, S, P) * OC;
    float *fused = zeros(no), *relu = zeros(no);
    ops_conv2d_forward(fused, scratch, x, w, b, N, H, W, C, OC, K, S, P, OPS_RELU);
    ops_relu_forward(relu, y, no);
    assert_memory_equal(fused, relu, no * sizeof *fused);
    free(fused), free(relu);
}

static void test_conv2d_fast_matches_naive(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 5);
    const int big[][9] = {{4, 16, 16, 16, 32, 3, 1, 1, 1}, {2, 9, 9, 8, 16, 3, 2, 1, 0}, {3, 8, 8, 16, 8, 1, 1, 0, 1}};
    for (size_t s = 0; s < sizeof CONV_SHAPES / sizeof CONV_SHAPES[0] + sizeof big / sizeof big[0]; s++) {
        const int *c = s < sizeof CONV_SHAPES / sizeof CONV_SHAPES[0] ? CONV_SHAPES[s]
                                                                      : big[s - sizeof CONV_SHAPES / sizeof CONV_SHAPES[0]];
        int N = c[0], H = c[1], W = c[2], C = c[3], OC = c[4], K = c[5], S = c[6], P = c[7];
        int OH = conv_out(H, K, S, P), OW = conv_out(W, K, S, P);
        size_t ni = (size_t)N * H * W * C, nw = (size_t)OC * K * K * C, no = (size_t)N * OH * OW * OC;
        float *scratch = zeros(ops_conv2d_scratch_floats(N, H, W, C, OC, K, S, P));
        float *x = randn(&r, ni, 1.0f), *w = randn(&r, nw, 1.0f), *b = c[8] ? randn(&r, OC, 1.0f) : NULL;
        float *y1 = zeros(no), *y2 = zeros(no), *dy = randn(&r, no, 1.0f);
        ops_conv2d_forward(y1, scratch, x, w, b, N, H, W, C, OC, K, S, P, OPS_IDENTITY);
        ops_conv2d_forward_naive(y2, x, w, b, N, H, W, C, OC, K, S, P);
        ASSERT_CLOSE("conv2d forward", rel_err(y1, y2, no), FAST_VS_NAIVE_TOL);
        conv_relu_fused_check(y1, scratch, x, w, b, N, H, W, C, OC, K, S, P);
        float *dx1 = randn(&r, ni, 1.0f), *dw1 = randn(&r, nw, 1.0f), *db1 = randn(&r, OC, 1.0f);
        float *dx2 = copy_of(dx1, ni), *dw2 = copy_of(dw1, nw), *db2 = copy_of(db1, OC);
        ops_conv2d_backward(dx1, dw1, db1, scratch, dy, x, w, N, H, W, C, OC, K, S, P);
        ops_conv2d_backward_naive(dx2, dw2, db2, dy, x, w, N, H, W, C, OC, K, S, P);
        ASSERT_CLOSE("conv2d dinp", rel_err(dx1, dx2, ni), FAST_VS_NAIVE_TOL);
        ASSERT_CLOSE("conv2d dweight", rel_err(dw1, dw2, nw), FAST_VS_NAIVE_TOL);
        ASSERT_CLOSE("conv2d dbias", rel_err(db1, db2, OC), FAST_VS_NAIVE_TOL);
        /* each gradient alone (the others NULL) equals its value from the full call */
        float *dx3 = copy_of(dx2, ni), *dw3 = copy_of(dw2, nw);
        ops_conv2d_backward_naive(dx3, NULL, NULL, dy, x, w, N, H, W, C, OC, K, S, P);
        float *dx4 = copy_of(dx2, ni);
        ops_conv2d_backward(dx4, NULL, NULL, scratch, dy, x, w, N, H, W, C, OC, K, S, P);
        ASSERT_CLOSE("conv2d dinp alone", rel_err(dx4, dx3, ni), FAST_VS_NAIVE_TOL);
        ops_conv2d_backward_naive(NULL, dw3, NULL, dy, x, w, N, H, W, C, OC, K, S, P);
        float *dw4 = copy_of(dw2, nw);
        ops_conv2d_backward(NULL, dw4, NULL, scratch, dy, x, w, N, H, W, C, OC, K, S, P);
        ASSERT_CLOSE("conv2d dweight alone", rel_err(dw4, dw3, nw), FAST_VS_NAIVE_TOL);
        free(scratch), free(x), free(w), free(b), free(y1), free(y2), free(dy);
        free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2), free(dx3), free(dw3), free(dx4), free(dw4);
    }
}

/* The direct kernels against the naive twins on the tower's kinds of layer (3 input channels, stride
 * 2, 16 to 256 output channels: at 256 the weight gradient packs its operands, with padding rows
 * dropped, over several chunks and a partial one; sizes that leave partial pixel blocks), the forward also
 * on a batch large enough to fork threads against the same kernel one image at a time: bitwise
 * equal, since every output is one fixed-order sum. */
/* The direct input gradient, plain and ReLU-fused (relu_out = relu(x), so the mask bites), against
 * the naive twins, and one image at a time (bitwise). dy [N, OH, OW, OC]. */
static void direct_dinp_checks(Rng *r, int N, int H, int W, int C, int OC, int S, const float *x, const float *w,
                               const float *dy) {
    size_t ni = (size_t)N * H * W * C, img = (size_t)H * W * C;
    size_t oimg = (size_t)conv_out(H, 3, S, 1) * conv_out(W, 3, S, 1) * OC;
    float *scratch = zeros(ops_conv2d_direct_dinp_scratch_floats(C, OC)), *relu = zeros(ni);
    ops_relu_forward(relu, x, ni);
    for (int mode = 0; mode < 4; mode++) {
        const int fused = mode & 1;
        const OpsStore store = mode & 2 ? OPS_OVERWRITE : OPS_ACCUMULATE;
        const float *m = fused ? relu : NULL;
        float *dx1 = randn(r, ni, 1.0f), *dx2 = copy_of(dx1, ni), *dx3 = copy_of(dx1, ni);
        if (store == OPS_OVERWRITE) { /* dx1 must not be read: NaN would spread; the reference starts at 0 */
            for (size_t i = 0; i < ni; i++) dx1[i] = dx3[i] = NAN, dx2[i] = 0.0f;
        }
        ops_conv2d_direct_dinp(dx1, scratch, dy, w, m, N, H, W, C, OC, S, store);
        if (fused) ops_conv2d_relu_backward_naive(dx2, NULL, NULL, dy, relu, w, N, H, W, C, OC, 3, S, 1);
        else ops_conv2d_backward_naive(dx2, NULL, NULL, dy, x, w, N, H, W, C, OC, 3, S, 1);
        ASSERT_CLOSE(fused ? "conv2d direct relu dinp" : "conv2d direct dinp", rel_err(dx1, dx2, ni),
                     FAST_VS_NAIVE_TOL);
        for (int n = 0; n < N; n++)
            ops_conv2d_direct_dinp(dx3 + n * img, scratch, dy + n * oimg, w, m ? m + n * img : NULL, 1, H, W, C, OC, S,
                                   store);
        assert_memory_equal(dx1, dx3, ni * sizeof *dx1);
        free(dx1), free(dx2), free(dx3);
    }
    free(scratch), free(relu);
}

static void test_conv2d_direct_matches_naive(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 16);
    /* N, H, W, C, OC, stride, bias */
    const int shapes[][7] = {{2, 8, 8, 3, 32, 1, 1}, {3, 9, 7, 5, 16, 2, 0}, {1, 1, 3, 2, 48, 1, 1},
                             {2, 6, 6, 32, 64, 2, 1}, {20, 10, 10, 8, 32, 1, 1}, {3, 17, 13, 16, 16, 2, 0},
                             {12, 9, 11, 16, 32, 2, 1}, {2, 7, 5, 32, 16, 1, 0}, {3, 9, 7, 8, 256, 2, 1},
                             {5, 9, 9, 16, 256, 1, 0}};
    assert_false(ops_conv2d_direct_dweight_ok(3, 1, 1, 5, 32));
    assert_false(ops_conv2d_direct_dweight_ok(3, 1, 1, 8, 24));
    assert_true(ops_conv2d_direct_dweight_ok(3, 2, 1, 3, 16));
    assert_false(ops_conv2d_direct_ok(3, 1, 1, 24));
    assert_false(ops_conv2d_direct_ok(5, 1, 2, 32));
    assert_false(ops_conv2d_direct_ok(3, 3, 1, 32));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], H = shapes[s][1], W = shapes[s][2], C = shapes[s][3], OC = shapes[s][4];
        int S = shapes[s][5], OH = conv_out(H, 3, S, 1), OW = conv_out(W, 3, S, 1);
        assert_true(ops_conv2d_direct_ok(3, S, 1, OC));
        size_t ni = (size_t)N * H * W * C, nw = (size_t)OC * 9 * C, no = (size_t)N * OH * OW * OC;
        size_t img = (size_t)H * W * C, oimg = (size_t)OH * OW * OC;
        float *scratch = zeros(ops_conv2d_direct_scratch_floats(C, OC));
        float *x = randn(&r, ni, 1.0f), *w = randn(&r, nw, 1.0f), *b = shapes[s][6] ? randn(&r, OC, 1.0f) : NULL;
        float *y1 = randn(&r, no, 1.0f), *y2 = randn(&r, no, 1.0f), *y3 = randn(&r, no, 1.0f);
        ops_conv2d_direct_forward(y1, scratch, x, w, b, N, H, W, C, OC, S, OPS_IDENTITY);
        ops_conv2d_forward_naive(y2, x, w, b, N, H, W, C, OC, 3, S, 1);
        ASSERT_CLOSE("conv2d direct forward", rel_err(y1, y2, no), FAST_VS_NAIVE_TOL);
        for (int n = 0; n < N; n++)
            ops_conv2d_direct_forward(y3 + n * oimg, scratch, x + n * img, w, b, 1, H, W, C, OC, S, OPS_IDENTITY);
        assert_memory_equal(y1, y3, no * sizeof *y1);
        if (ops_conv2d_direct_dweight_ok(3, S, 1, C, OC)) {
            float *gs = zeros(ops_conv2d_direct_dweight_scratch_floats(C, OC));
            float *dw1 = randn(&r, nw, 1.0f), *dw2 = copy_of(dw1, nw);
            float *db1 = randn(&r, OC, 1.0f), *db2 = copy_of(db1, OC);
            ops_conv2d_direct_dweight(dw1, db1, gs, y2, x, N, H, W, C, OC, S);
            ops_conv2d_backward_naive(NULL, dw2, db2, y2, x, w, N, H, W, C, OC, 3, S, 1);
            ASSERT_CLOSE("conv2d direct dweight", rel_err(dw1, dw2, nw), FAST_VS_NAIVE_TOL);
            ASSERT_CLOSE("conv2d direct dbias", rel_err(db1, db2, OC), FAST_VS_NAIVE_TOL);
            free(gs), free(dw1), free(dw2), free(db1), free(db2);
        }
        if (ops_conv2d_direct_dinp_ok(3, S, 1, C)) direct_dinp_checks(&r, N, H, W, C, OC, S, x, w, y2);
        free(scratch), free(x), free(w), free(b), free(y1), free(y2), free(y3);
    }
}

/* The ReLU-fused backward: the model is out = conv(relu(a)); ops_conv2d_relu_backward reads the
 * ReLU's output and must give d(a). Inputs sit more than H_LINEAR away from the kink, so no FD
 * stencil crosses it and out is linear in a around the point: the tight linear tolerance holds. */
typedef struct {
    ConvCase conv;
    float *relu; /* relu(in[0]), recomputed by the forward */
} ConvReluCase;

static void conv_relu_fwd(GradCase *gc) {
    ConvReluCase *t = (ConvReluCase *)gc;
    ConvCase *c = &t->conv;
    ops_relu_forward(t->relu, gc->in[0], (size_t)c->N * c->H * c->W * c->C);
    ops_conv2d_forward(gc->out, c->scratch, t->relu, gc->in[1], c->has_bias ? gc->in[2] : NULL, c->N, c->H, c->W,
                       c->C, c->OC, c->K, c->S, c->P, OPS_IDENTITY);
}

static void conv_relu_bwd(GradCase *gc) {
    ConvReluCase *t = (ConvReluCase *)gc;
    ConvCase *c = &t->conv;
    ops_conv2d_relu_backward(gc->grad[0], gc->grad[1], c->has_bias ? gc->grad[2] : NULL, c->scratch, gc->dout, t->relu,
                             gc->in[1], c->N, c->H, c->W, c->C, c->OC, c->K, c->S, c->P, OPS_ACCUMULATE);
}

static int conv_pointwise(const int *c) { return c[5] == 1 && c[6] == 1 && c[7] == 0; }

static void test_conv2d_relu_backward_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 14);
    for (size_t s = 0; s < sizeof CONV_SHAPES / sizeof CONV_SHAPES[0]; s++) {
        const int *c = CONV_SHAPES[s];
        if (conv_pointwise(c)) continue; /* not supported (CHECK), no scratch */
        ConvReluCase t = {.conv = {.N = c[0], .H = c[1], .W = c[2], .C = c[3], .OC = c[4], .K = c[5], .S = c[6],
                                   .P = c[7], .has_bias = c[8]}};
        ConvCase *cc = &t.conv;
        int OH = conv_out(cc->H, cc->K, cc->S, cc->P), OW = conv_out(cc->W, cc->K, cc->S, cc->P);
        cc->scratch = zeros(ops_conv2d_scratch_floats(cc->N, cc->H, cc->W, cc->C, cc->OC, cc->K, cc->S, cc->P));
        cc->gc.forward = conv_relu_fwd;
        cc->gc.backward = conv_relu_bwd;
        gc_outputs(&cc->gc, "conv2d relu backward", (size_t)cc->N * OH * OW * cc->OC);
        size_t ni = (size_t)cc->N * cc->H * cc->W * cc->C, nw = (size_t)cc->OC * cc->K * cc->K * cc->C;
        float *a = randn(&r, ni, 1.0f);
        for (size_t i = 0; i < ni; i++) a[i] += a[i] < 0.0f ? -1.5f * H_LINEAR : 1.5f * H_LINEAR;
        t.relu = zeros(ni);
        gc_input(&cc->gc, a, ni, H_LINEAR, TOL_LINEAR);
        gc_input(&cc->gc, randn(&r, nw, 1.0f), nw, H_LINEAR, TOL_LINEAR);
        if (cc->has_bias) gc_input(&cc->gc, randn(&r, cc->OC, 1.0f), cc->OC, H_LINEAR, TOL_LINEAR);
        check_gradients(&cc->gc, &r);
        gc_free(&cc->gc);
        free(cc->scratch);
        free(t.relu);
    }
}

/* Fast against the naive twin on inputs with exact zeros (a ReLU's output), where the mask bites. */
static void test_conv2d_relu_backward_fast_matches_naive(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 15);
    const int big[9] = {4, 16, 16, 16, 32, 3, 2, 1, 1};
    for (size_t s = 0; s <= sizeof CONV_SHAPES / sizeof CONV_SHAPES[0]; s++) {
        const int *c = s < sizeof CONV_SHAPES / sizeof CONV_SHAPES[0] ? CONV_SHAPES[s] : big;
        if (conv_pointwise(c)) continue;
        int N = c[0], H = c[1], W = c[2], C = c[3], OC = c[4], K = c[5], S = c[6], P = c[7];
        size_t ni = (size_t)N * H * W * C, nw = (size_t)OC * K * K * C;
        size_t no = (size_t)N * conv_out(H, K, S, P) * conv_out(W, K, S, P) * OC;
        float *scratch = zeros(ops_conv2d_scratch_floats(N, H, W, C, OC, K, S, P));
        float *x = randn(&r, ni, 1.0f), *w = randn(&r, nw, 1.0f), *dy = randn(&r, no, 1.0f);
        ops_relu_forward(x, x, ni);
        float *da1 = randn(&r, ni, 1.0f), *dw1 = randn(&r, nw, 1.0f), *db1 = randn(&r, OC, 1.0f);
        float *da2 = copy_of(da1, ni), *dw2 = copy_of(dw1, nw), *db2 = copy_of(db1, OC);
        ops_conv2d_relu_backward(da1, dw1, db1, scratch, dy, x, w, N, H, W, C, OC, K, S, P, OPS_ACCUMULATE);
        ops_conv2d_relu_backward_naive(da2, dw2, db2, dy, x, w, N, H, W, C, OC, K, S, P);
        ASSERT_CLOSE("conv2d relu backward da", rel_err(da1, da2, ni), FAST_VS_NAIVE_TOL);
        ASSERT_CLOSE("conv2d relu backward dweight", rel_err(dw1, dw2, nw), FAST_VS_NAIVE_TOL);
        ASSERT_CLOSE("conv2d relu backward dbias", rel_err(db1, db2, OC), FAST_VS_NAIVE_TOL);
        /* where the ReLU was off, da kept exactly its previous value */
        for (size_t i = 0; i < ni; i++)
            if (x[i] <= 0.0f) assert_true(da1[i] == da2[i]);
        /* OPS_OVERWRITE (direct and col2im paths): da never read, the ReLU's off entries 0, the
         * weight gradients still accumulated */
        float *da3 = zeros(ni), *da4 = zeros(ni), *dw3 = copy_of(dw1, nw), *dw4 = copy_of(dw1, nw);
        for (size_t i = 0; i < ni; i++) da3[i] = NAN;
        ops_conv2d_relu_backward(da3, dw3, NULL, scratch, dy, x, w, N, H, W, C, OC, K, S, P, OPS_OVERWRITE);
        ops_conv2d_relu_backward_naive(da4, dw4, NULL, dy, x, w, N, H, W, C, OC, K, S, P);
        ASSERT_CLOSE("conv2d relu backward overwritten da", rel_err(da3, da4, ni), FAST_VS_NAIVE_TOL);
        ASSERT_CLOSE("conv2d relu backward dweight beside an overwrite", rel_err(dw3, dw4, nw), FAST_VS_NAIVE_TOL);
        for (size_t i = 0; i < ni; i++)
            if (x[i] <= 0.0f) assert_true(da3[i] == 0.0f);
        free(da3), free(da4), free(dw3), free(dw4);
        free(scratch), free(x), free(w), free(dy), free(da1), free(dw1), free(db1), free(da2), free(dw2), free(db2);
    }
}

/* ---------- pooling ---------- */

typedef struct {
    GradCase gc;
    int N, H, W, C, K, S, kind; /* kind: 0 global average, 1 average K x K, 2 max K x K */
    int *argmax;
} PoolCase;

static void pool_fwd(GradCase *gc) {
    PoolCase *t = (PoolCase *)gc;
    if (t->kind == 0) ops_global_avgpool_forward(gc->out, gc->in[0], t->N, t->H, t->W, t->C);
    if (t->kind == 1) ops_avgpool2d_forward(gc->out, gc->in[0], t->N, t->H, t->W, t->C, t->K, t->S);
    if (t->kind == 2) ops_maxpool2d_forward(gc->out, t->argmax, gc->in[0], t->N, t->H, t->W, t->C, t->K, t->S);
}

static void pool_bwd(GradCase *gc) {
    PoolCase *t = (PoolCase *)gc;
    int OH = (t->H - t->K) / t->S + 1, OW = (t->W - t->K) / t->S + 1;
    if (t->kind == 0) ops_global_avgpool_backward(gc->grad[0], gc->dout, t->N, t->H, t->W, t->C);
    if (t->kind == 1) ops_avgpool2d_backward(gc->grad[0], gc->dout, t->N, t->H, t->W, t->C, t->K, t->S);
    if (t->kind == 2) ops_maxpool2d_backward(gc->grad[0], gc->dout, t->argmax, t->N, OH, OW, t->C);
}

/* A shuffled ramp of multiples of 1/16: distinct values more than 2 * H_MAX apart, so a +-H_MAX
 * step never changes a max, and every x +- H_MAX is exact in fp32, so the differences are exact. */
#define H_MAX 0.015625f
static float *distinct_values(Rng *r, size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 0.0625f * ((float)i - (float)(n / 2));
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(r, (uint32_t)i);
        float tmp = x[i - 1];
        x[i - 1] = x[j];
        x[j] = tmp;
    }
    return x;
}

static void test_pool_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 6);
    /* kind, N, H, W, C, K, S */
    const int shapes[][7] = {{0, 1, 1, 1, 1, 1, 1}, {0, 2, 3, 5, 17, 1, 1}, {1, 1, 4, 4, 3, 2, 2},
                             {1, 2, 5, 4, 3, 3, 1}, {2, 1, 4, 4, 3, 2, 2}, {2, 2, 5, 5, 17, 3, 2},
                             {2, 1, 3, 3, 1, 3, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *c = shapes[s];
        PoolCase t = {.kind = c[0], .N = c[1], .H = c[2], .W = c[3], .C = c[4], .K = c[5], .S = c[6]};
        int OH = t.kind == 0 ? 1 : (t.H - t.K) / t.S + 1, OW = t.kind == 0 ? 1 : (t.W - t.K) / t.S + 1;
        size_t ni = (size_t)t.N * t.H * t.W * t.C, no = (size_t)t.N * OH * OW * t.C;
        t.argmax = malloc(no * sizeof *t.argmax);
        t.gc.forward = pool_fwd;
        t.gc.backward = pool_bwd;
        gc_outputs(&t.gc, "pool", no);
        if (t.kind == 2)
            gc_input(&t.gc, distinct_values(&r, ni), ni, H_MAX, TOL_LINEAR);
        else
            gc_input(&t.gc, randn(&r, ni, 1.0f), ni, H_LINEAR, TOL_LINEAR);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
        free(t.argmax);
    }
}

static void test_pool_forward_values(void **state) {
    (void)state;
    /* one image 4x4, 2 channels: channel 0 = 0..15 row-major, channel 1 = its negation */
    float x[32], out[8], gap[2];
    int am[8];
    for (int p = 0; p < 16; p++) x[2 * p] = (float)p, x[2 * p + 1] = -(float)p;
    ops_maxpool2d_forward(out, am, x, 1, 4, 4, 2, 2, 2);
    /* window (0,0) covers pixels 0,1,4,5: max of ch0 is pixel 5, of ch1 is pixel 0 */
    const float want_max[8] = {5, 0, 7, -2, 13, -8, 15, -10};
    const int want_am[8] = {10, 1, 14, 5, 26, 17, 30, 21};
    for (int i = 0; i < 8; i++) {
        assert_true(out[i] == want_max[i]);
        assert_int_equal(am[i], want_am[i]);
    }
    ops_avgpool2d_forward(out, x, 1, 4, 4, 2, 2, 2);
    const float want_avg[8] = {2.5f, -2.5f, 4.5f, -4.5f, 10.5f, -10.5f, 12.5f, -12.5f};
    for (int i = 0; i < 8; i++) assert_true(fabsf(out[i] - want_avg[i]) < 1e-6f);
    ops_global_avgpool_forward(gap, x, 1, 4, 4, 2);
    assert_true(fabsf(gap[0] - 7.5f) < 1e-6f && fabsf(gap[1] + 7.5f) < 1e-6f);
    /* maxpool backward routes each output gradient to its argmax only */
    float dout[8], dx[32] = {0};
    for (int i = 0; i < 8; i++) dout[i] = (float)(i + 1);
    ops_maxpool2d_forward(out, am, x, 1, 4, 4, 2, 2, 2);
    ops_maxpool2d_backward(dx, dout, am, 1, 2, 2, 2);
    float total = 0;
    for (int i = 0; i < 32; i++) total += dx[i];
    assert_true(total == 36.0f);
    for (int i = 0; i < 8; i++) assert_true(dx[want_am[i]] == dout[i]);
}

/* ---------- elementwise ---------- */

typedef struct {
    GradCase gc;
    int gelu;
} ActCase;

static void act_fwd(GradCase *gc) {
    if (((ActCase *)gc)->gelu)
        ops_gelu_forward(gc->out, gc->in[0], gc->n_out);
    else
        ops_relu_forward(gc->out, gc->in[0], gc->n_out);
}

static void act_bwd(GradCase *gc) {
    if (((ActCase *)gc)->gelu)
        ops_gelu_backward(gc->grad[0], gc->dout, gc->in[0], gc->n_out, OPS_ACCUMULATE);
    else
        ops_relu_backward(gc->grad[0], gc->dout, gc->in[0], gc->n_out);
}

static void test_activation_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 7);
    const size_t sizes[] = {1, 3, 17, 200};
    for (int gelu = 0; gelu <= 1; gelu++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            ActCase t = {.gelu = gelu};
            t.gc.forward = act_fwd;
            t.gc.backward = act_bwd;
            gc_outputs(&t.gc, gelu ? "gelu" : "relu", n);
            float *x = randn(&r, n, 2.0f);
            /* ReLU is linear on each side of 0: push every input more than h away from the kink,
             * where a difference is not a derivative, and difference it with the large step */
            if (!gelu)
                for (size_t i = 0; i < n; i++) x[i] += copysignf(1.5f * H_LINEAR, x[i]);
            gc_input(&t.gc, x, n, gelu ? H_SMOOTH : H_LINEAR, gelu ? TOL_SMOOTH : TOL_LINEAR);
            check_gradients(&t.gc, &r);
            gc_free(&t.gc);
        }
}

static void test_activation_forward_values(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 8);
    size_t n = 1000;
    float *x = randn(&r, n, 3.0f), *y = zeros(n), *z = zeros(n);
    ops_gelu_forward(y, x, n);
    ops_relu_forward(z, x, n);
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        double g = 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        assert_true(fabs(y[i] - g) <= 1e-6 * (1.0 + fabs(g)));
        assert_true(z[i] == (x[i] > 0 ? x[i] : 0.0f));
    }
    ops_add_forward(y, x, z, n);
    for (size_t i = 0; i < n; i++) assert_true(y[i] == x[i] + z[i]);
    free(x), free(y), free(z);
}

/* The in-place, overwriting GELU backward equals the accumulating one added to zeros, value for value, on the
 * serial path and above OPS_PAR_MIN (the inputs reach the tails where the logistic is 0 or 1). */
static void test_gelu_backward_inplace(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 9);
    const size_t sizes[] = {1, 17, 1000, OPS_PAR_MIN + 3};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = randn(&r, n, 4.0f), *dy = randn(&r, n, 1.0f), *ref = zeros(n), *d = copy_of(dy, n);
        x[0] = -60.0f;
        ops_gelu_backward(ref, dy, x, n, OPS_ACCUMULATE);
        ops_gelu_backward(d, d, x, n, OPS_OVERWRITE);
        for (size_t i = 0; i < n; i++) assert_true(d[i] == ref[i]); /* 0 * -dy is -0 where 0 + -0 is 0 */
        free(x), free(dy), free(ref), free(d);
    }
}

/* ---------- layernorm ---------- */

typedef struct {
    GradCase gc;
    int B, C;
    float *mean, *rstd;
} LayerNormCase;

#define LN_EPS 1e-5f

static void ln_fwd(GradCase *gc) {
    LayerNormCase *t = (LayerNormCase *)gc;
    ops_layernorm_forward(gc->out, t->mean, t->rstd, gc->in[0], gc->in[1], gc->in[2], t->B, t->C, LN_EPS);
}

static void ln_bwd(GradCase *gc) {
    LayerNormCase *t = (LayerNormCase *)gc;
    ops_layernorm_backward(gc->grad[0], gc->grad[1], gc->grad[2], gc->dout, gc->in[0], gc->in[1], t->mean, t->rstd,
                           t->B, t->C);
}

static void test_layernorm_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 9);
    /* C = 1: the output is the bias whatever the input, so the input gradient is exactly 0 */
    const int shapes[][2] = {{1, 3}, {3, 17}, {17, 3}, {2, 1}, {4, 32}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        LayerNormCase t = {.B = shapes[s][0], .C = shapes[s][1]};
        t.mean = zeros(t.B);
        t.rstd = zeros(t.B);
        t.gc.forward = ln_fwd;
        t.gc.backward = ln_bwd;
        gc_outputs(&t.gc, "layernorm", (size_t)t.B * t.C);
        gc_input(&t.gc, randn(&r, (size_t)t.B * t.C, 1.0f), (size_t)t.B * t.C, H_SMOOTH, TOL_SMOOTH);
        gc_input(&t.gc, randn(&r, t.C, 1.0f), t.C, H_LINEAR, TOL_LINEAR);
        gc_input(&t.gc, randn(&r, t.C, 1.0f), t.C, H_LINEAR, TOL_LINEAR);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
        free(t.mean), free(t.rstd);
    }
}

static void test_layernorm_forward_values(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 10);
    int B = 7, C = 33;
    float *x = randn(&r, B * C, 2.0f), *w = randn(&r, C, 1.0f), *b = randn(&r, C, 1.0f);
    for (int i = 0; i < B * C; i++) x[i] += 100.0f; /* a large mean must not cost precision */
    float *y = zeros(B * C), *mean = zeros(B), *rstd = zeros(B);
    double *ref = malloc(sizeof(double) * B * C);
    ops_layernorm_forward(y, mean, rstd, x, w, b, B, C, LN_EPS);
    for (int i = 0; i < B; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < C; j++) m += x[i * C + j];
        m /= C;
        for (int j = 0; j < C; j++) v += (x[i * C + j] - m) * (x[i * C + j] - m);
        double s = 1.0 / sqrt(v / C + LN_EPS);
        for (int j = 0; j < C; j++) ref[i * C + j] = (x[i * C + j] - m) * s * w[j] + b[j];
        assert_true(fabs(mean[i] - m) < 1e-5 * fabs(m) && fabs(rstd[i] - s) < 1e-5 * s);
    }
    ASSERT_CLOSE("layernorm forward", rel_err_d(y, ref, B * C), 1e-5);
    free(x), free(w), free(b), free(y), free(mean), free(rstd), free(ref);
}

/* ---------- softmax ---------- */

typedef struct {
    GradCase gc;
    int B, V;
} RowCase;

static void softmax_fwd(GradCase *gc) {
    RowCase *t = (RowCase *)gc;
    ops_softmax_forward(gc->out, gc->in[0], t->B, t->V);
}

static void softmax_bwd(GradCase *gc) {
    RowCase *t = (RowCase *)gc;
    ops_softmax_backward(gc->grad[0], gc->dout, gc->out, t->B, t->V);
}

static const int ROW_SHAPES[][2] = {{1, 1}, {1, 3}, {3, 17}, {17, 3}, {2, 50}};

static void test_softmax_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 11);
    for (size_t s = 0; s < sizeof ROW_SHAPES / sizeof ROW_SHAPES[0]; s++) {
        RowCase t = {.B = ROW_SHAPES[s][0], .V = ROW_SHAPES[s][1]};
        t.gc.forward = softmax_fwd;
        t.gc.backward = softmax_bwd;
        gc_outputs(&t.gc, "softmax", (size_t)t.B * t.V);
        gc_input(&t.gc, randn(&r, (size_t)t.B * t.V, 2.0f), (size_t)t.B * t.V, H_SMOOTH, TOL_SMOOTH);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
    }
}

/* softmax against exp/sum in double; logits of +-1000 stay finite (max subtraction). */
static void test_softmax_forward_values_and_stability(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 12);
    int B = 5, V = 23;
    float *x = randn(&r, B * V, 3.0f), *y = zeros(B * V);
    double *ref = malloc(sizeof(double) * B * V);
    ops_softmax_forward(y, x, B, V);
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp(x[b * V + v]);
        for (int v = 0; v < V; v++) ref[b * V + v] = exp(x[b * V + v]) / sum;
        float lse = ops_softmax_row(y + b * V, x + b * V, V);
        assert_true(fabs(lse - log(sum)) < 1e-5 * fabs(log(sum)) + 1e-6);
        float lse_only = ops_logsumexp_row(x + b * V, V); /* no probabilities written: the same bits */
        assert_memory_equal(&lse_only, &lse, sizeof lse);
    }
    ASSERT_CLOSE("softmax forward", rel_err_d(y, ref, B * V), 1e-5);
    float big[3] = {1000.0f, 999.0f, -1000.0f}, p[3];
    float lse = ops_softmax_row(p, big, 3);
    assert_true(isfinite(lse) && fabs(lse - (1000.0 + log(1.0 + exp(-1.0)))) < 1e-3);
    assert_true(ops_logsumexp_row(big, 3) == lse);
    assert_true(fabs(p[0] - 1.0 / (1.0 + exp(-1.0))) < 1e-6 && p[2] == 0.0f);
    free(x), free(y), free(ref);
}

/* ---------- attention ---------- */

typedef struct {
    GradCase gc;
    int B, T, C, NH;
    float *preatt, *att, *dpreatt, *datt;
} AttnCase;

static void attn_fwd(GradCase *gc) {
    AttnCase *t = (AttnCase *)gc;
    ops_attention_forward(gc->out, t->preatt, t->att, gc->in[0], t->B, t->T, t->C, t->NH);
}

static void attn_bwd(GradCase *gc) {
    AttnCase *t = (AttnCase *)gc;
    ops_attention_backward(gc->grad[0], t->dpreatt, t->datt, gc->dout, gc->in[0], t->att, t->B, t->T, t->C, t->NH);
}

static void attn_alloc(AttnCase *t) {
    size_t na = (size_t)t->B * t->NH * t->T * t->T;
    t->preatt = zeros(na), t->att = zeros(na), t->dpreatt = zeros(na), t->datt = zeros(na);
}

static void attn_free(AttnCase *t) { free(t->preatt), free(t->att), free(t->dpreatt), free(t->datt); }

/* B, T, C, NH: head sizes 1, 3 and 4, one token, one head; head sizes 24 and 32 over more than 16
 * positions (the kernels' vector paths: 16 positions or head columns per vector, and a tail) */
static const int ATTN_SHAPES[][4] = {{1, 1, 3, 1}, {2, 5, 6, 2}, {1, 17, 4, 4}, {3, 3, 3, 1},
                                     {2, 7, 8, 2}, {1, 18, 48, 2}, {2, 33, 64, 2}};

static void test_attention_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 13);
    for (size_t s = 0; s < sizeof ATTN_SHAPES / sizeof ATTN_SHAPES[0]; s++) {
        AttnCase t = {.B = ATTN_SHAPES[s][0], .T = ATTN_SHAPES[s][1], .C = ATTN_SHAPES[s][2], .NH = ATTN_SHAPES[s][3]};
        attn_alloc(&t);
        t.gc.forward = attn_fwd;
        t.gc.backward = attn_bwd;
        gc_outputs(&t.gc, "attention", (size_t)t.B * t.T * t.C);
        size_t n = (size_t)t.B * t.T * 3 * t.C;
        gc_input(&t.gc, randn(&r, n, 1.0f), n, H_SMOOTH, TOL_SMOOTH);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
        attn_free(&t);
    }
}

static void test_attention_fast_matches_naive(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 14);
    const int big[4] = {4, 17, 32, 4}; /* above OPS_PAR_MIN: the OpenMP path */
    for (size_t s = 0; s <= sizeof ATTN_SHAPES / sizeof ATTN_SHAPES[0]; s++) {
        const int *c = s < sizeof ATTN_SHAPES / sizeof ATTN_SHAPES[0] ? ATTN_SHAPES[s] : big;
        AttnCase t = {.B = c[0], .T = c[1], .C = c[2], .NH = c[3]};
        attn_alloc(&t);
        size_t n = (size_t)t.B * t.T * 3 * t.C, no = (size_t)t.B * t.T * t.C;
        float *qkv = randn(&r, n, 1.5f), *y1 = zeros(no), *y2 = zeros(no);
        ops_attention_forward(y1, t.preatt, t.att, qkv, t.B, t.T, t.C, t.NH);
        ops_attention_forward_naive(y2, qkv, t.B, t.T, t.C, t.NH);
        ASSERT_CLOSE("attention forward", rel_err(y1, y2, no), FAST_VS_NAIVE_TOL);
        /* the whole batch (parallel when large) equals one sequence at a time (serial) */
        float *dy = randn(&r, no, 1.0f), *dq1 = zeros(n), *dq2 = zeros(n);
        ops_attention_backward(dq1, t.dpreatt, t.datt, dy, qkv, t.att, t.B, t.T, t.C, t.NH);
        size_t seq_qkv = (size_t)t.T * 3 * t.C, seq_att = (size_t)t.NH * t.T * t.T;
        for (int b = 0; b < t.B; b++)
            ops_attention_backward(dq2 + b * seq_qkv, t.dpreatt, t.datt, dy + (size_t)b * t.T * t.C, qkv + b * seq_qkv,
                                   t.att + b * seq_att, 1, t.T, t.C, t.NH);
        ASSERT_CLOSE("attention backward batch vs per sequence", rel_err(dq1, dq2, n), 1e-6);
        free(qkv), free(y1), free(y2), free(dy), free(dq1), free(dq2);
        attn_free(&t);
    }
}

/* Tree attention against the naive causal attention of every sequence: B sequences of length T,
 * sequence b > 0 sharing its first shared[b] positions with sequence 0 (0: a second root), stored
 * as a forest of sequence 0's rows plus each other sequence's own rows. */
static void check_attention_tree(int T, int C, int NH) {
    enum { B = 4 };
    const int shared[B] = {T, 3, 0, T - 1};
    Rng r;
    rng_init(&r, 16);
    float *qkv = randn(&r, (size_t)B * T * 3 * C, 1.5f), *ref = zeros((size_t)B * T * C);
    for (int b = 1; b < B; b++) memcpy(qkv + (size_t)b * T * 3 * C, qkv, (size_t)shared[b] * 3 * C * sizeof(float));
    ops_attention_forward_naive(ref, qkv, B, T, C, NH);
    float *tq = zeros((size_t)B * T * 3 * C), *out = zeros((size_t)B * T * C);
    int parent[B * T], row_of[B][T], N = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            if (b > 0 && t < shared[b]) {
                row_of[b][t] = row_of[0][t];
                continue;
            }
            memcpy(tq + (size_t)N * 3 * C, qkv + ((size_t)b * T + t) * 3 * C, 3 * C * sizeof(float));
            parent[N] = t > 0 ? row_of[b][t - 1] : -1;
            row_of[b][t] = N++;
        }
    assert_int_equal(N, T + (T - 3) + T + 1);
    ops_attention_tree_forward(out, tq, parent, N, C, NH);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            ASSERT_CLOSE("tree attention row", rel_err(out + (size_t)row_of[b][t] * C, ref + ((size_t)b * T + t) * C, C),
                         FAST_VS_NAIVE_TOL);
    free(qkv), free(ref), free(tq), free(out);
}

/* Short chains with small heads, and chains longer than the kernel's padding block (its scores
 * are padded to a multiple of 16 keys) with the caption decoder's head size. */
static void test_attention_tree_matches_sequences(void **state) {
    (void)state;
    check_attention_tree(6, 8, 2);
    check_attention_tree(37, 64, 4);
}

/* Perturbing token t0's key and value changes no output before t0, bit for bit, and the saved
 * scores and weights of a key after its query are zero (the saved buffers are key-major), each
 * query's weights summing to 1. */
static void test_attention_is_causal(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 15);
    AttnCase t = {.B = 2, .T = 9, .C = 8, .NH = 2};
    attn_alloc(&t);
    size_t n = (size_t)t.B * t.T * 3 * t.C, no = (size_t)t.B * t.T * t.C;
    float *qkv = randn(&r, n, 1.0f), *y1 = zeros(no), *y2 = zeros(no), *y3 = zeros(no);
    ops_attention_forward(y1, t.preatt, t.att, qkv, t.B, t.T, t.C, t.NH);
    for (int b = 0; b < t.B; b++)
        for (int h = 0; h < t.NH; h++)
            for (int i = 0; i < t.T; i++) { /* key-major: query i's weight on key j at (j, i) */
                double sum = 0;
                for (int j = 0; j < t.T; j++) {
                    float a = t.att[((b * t.NH + h) * t.T + j) * t.T + i];
                    if (j > i) assert_true(a == 0.0f && t.preatt[((b * t.NH + h) * t.T + j) * t.T + i] == 0.0f);
                    sum += a;
                }
                assert_true(fabs(sum - 1.0) < 1e-5);
            }
    const int t0 = 5;
    for (int b = 0; b < t.B; b++)
        for (int i = t.C; i < 3 * t.C; i++) qkv[((size_t)b * t.T + t0) * 3 * t.C + i] += 3.0f;
    ops_attention_forward(y2, t.preatt, t.att, qkv, t.B, t.T, t.C, t.NH);
    ops_attention_forward_naive(y3, qkv, t.B, t.T, t.C, t.NH);
    for (int b = 0; b < t.B; b++) {
        size_t before = (size_t)t0 * t.C, row = (size_t)b * t.T * t.C;
        assert_memory_equal(y1 + row, y2 + row, before * sizeof(float));
        /* ...while the perturbed position itself does change */
        assert_true(memcmp(y1 + row + before, y2 + row + before, t.C * sizeof(float)) != 0);
    }
    ASSERT_CLOSE("attention forward after perturbation", rel_err(y2, y3, no), FAST_VS_NAIVE_TOL);
    free(qkv), free(y1), free(y2), free(y3);
    attn_free(&t);
}

/* ---------- embedding ---------- */

typedef struct {
    GradCase gc;
    int B, T, C, V;
    int *ids;
} EmbCase;

static void emb_fwd(GradCase *gc) {
    EmbCase *t = (EmbCase *)gc;
    ops_embedding_forward(gc->out, t->ids, gc->in[0], gc->in[1], t->B, t->T, t->C, t->V);
}

static void emb_bwd(GradCase *gc) {
    EmbCase *t = (EmbCase *)gc;
    ops_embedding_backward(gc->grad[0], gc->grad[1], gc->dout, t->ids, t->B, t->T, t->C, t->V);
}

static void test_embedding_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 16);
    /* B, T, C, V; V small relative to B*T, so ids repeat and their gradients must add up */
    const int shapes[][4] = {{1, 1, 1, 1}, {1, 3, 17, 3}, {3, 17, 3, 5}, {2, 4, 6, 17}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        EmbCase t = {.B = shapes[s][0], .T = shapes[s][1], .C = shapes[s][2], .V = shapes[s][3]};
        t.ids = malloc(sizeof(int) * t.B * t.T);
        for (int i = 0; i < t.B * t.T; i++) t.ids[i] = (int)rng_below(&r, t.V);
        t.gc.forward = emb_fwd;
        t.gc.backward = emb_bwd;
        gc_outputs(&t.gc, "embedding", (size_t)t.B * t.T * t.C);
        gc_input(&t.gc, randn(&r, (size_t)t.V * t.C, 1.0f), (size_t)t.V * t.C, H_LINEAR, TOL_LINEAR);
        gc_input(&t.gc, randn(&r, (size_t)t.T * t.C, 1.0f), (size_t)t.T * t.C, H_LINEAR, TOL_LINEAR);
        check_gradients(&t.gc, &r);
        /* without positions: the plain lookup */
        float *y = zeros(t.gc.n_out);
        ops_embedding_forward(y, t.ids, t.gc.in[0], NULL, t.B, t.T, t.C, t.V);
        for (int i = 0; i < t.B * t.T; i++)
            assert_memory_equal(y + (size_t)i * t.C, t.gc.in[0] + (size_t)t.ids[i] * t.C, t.C * sizeof(float));
        free(y);
        gc_free(&t.gc);
        free(t.ids);
    }
}

/* ---------- softmax cross-entropy ---------- */

typedef struct {
    GradCase gc;
    int B, V;
    int *targets;  /* hard targets, or NULL for soft */
    float *target; /* soft targets [B, V] */
    float *probs;
} XentCase;

static void xent_fwd(GradCase *gc) {
    XentCase *t = (XentCase *)gc;
    if (t->targets)
        ops_softmax_xent_forward(gc->out, t->probs, gc->in[0], t->targets, t->B, t->V);
    else
        ops_softmax_xent_soft_forward(gc->out, t->probs, gc->in[0], t->target, t->B, t->V);
}

static void xent_bwd(GradCase *gc) {
    XentCase *t = (XentCase *)gc;
    if (t->targets)
        ops_softmax_xent_backward(gc->grad[0], gc->dout, t->probs, t->targets, t->B, t->V);
    else
        ops_softmax_xent_soft_backward(gc->grad[0], gc->dout, t->probs, t->target, t->B, t->V);
}

/* A random distribution per row (some exact zeros, as in bag-of-words targets). */
static float *random_distributions(Rng *r, int B, int V) {
    float *q = zeros((size_t)B * V);
    for (int b = 0; b < B; b++) {
        float sum = 0;
        for (int v = 0; v < V; v++) sum += (q[b * V + v] = rng_uniform(r) < 0.3f ? 0.0f : rng_uniform(r));
        if (sum == 0.0f) sum = q[b * V] = 1.0f;
        for (int v = 0; v < V; v++) q[b * V + v] /= sum;
    }
    return q;
}

static void test_xent_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 17);
    for (int soft = 0; soft <= 1; soft++)
        for (size_t s = 0; s < sizeof ROW_SHAPES / sizeof ROW_SHAPES[0]; s++) {
            XentCase t = {.B = ROW_SHAPES[s][0], .V = ROW_SHAPES[s][1]};
            t.probs = zeros((size_t)t.B * t.V);
            if (soft) {
                t.target = random_distributions(&r, t.B, t.V);
            } else {
                t.targets = malloc(sizeof(int) * t.B);
                /* every third row is padding (-1) */
                for (int b = 0; b < t.B; b++) t.targets[b] = b % 3 == 2 ? -1 : (int)rng_below(&r, t.V);
            }
            t.gc.forward = xent_fwd;
            t.gc.backward = xent_bwd;
            gc_outputs(&t.gc, soft ? "xent soft" : "xent", t.B);
            gc_input(&t.gc, randn(&r, (size_t)t.B * t.V, 2.0f), (size_t)t.B * t.V, H_SMOOTH, TOL_SMOOTH);
            check_gradients(&t.gc, &r);
            gc_free(&t.gc);
            free(t.probs), free(t.targets), free(t.target);
        }
}

/* Loss = log-sum-exp - target logit in double; ignored rows: zero loss and zero gradient. */
static void test_xent_values_and_ignore_index(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 18);
    int B = 6, V = 11;
    int targets[6] = {0, -1, 10, 4, -1, 7};
    float *z = randn(&r, B * V, 3.0f), *p = zeros(B * V), *loss = zeros(B), *dz = zeros(B * V), *dl = randn(&r, B, 1.0f);
    z[3 * V + 2] = 500.0f; /* row 3's target probability underflows; its loss must still be finite */
    ops_softmax_xent_forward(loss, p, z, targets, B, V);
    ops_softmax_xent_backward(dz, dl, p, targets, B, V);
    for (int b = 0; b < B; b++) {
        if (targets[b] < 0) {
            assert_true(loss[b] == 0.0f);
            for (int v = 0; v < V; v++) assert_true(dz[b * V + v] == 0.0f);
            continue;
        }
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, z[b * V + v]);
        for (int v = 0; v < V; v++) sum += exp(z[b * V + v] - mx);
        double want = mx + log(sum) - z[b * V + targets[b]];
        assert_true(isfinite(loss[b]) && fabs(loss[b] - want) <= 1e-5 * fabs(want) + 1e-6);
    }
    free(z), free(p), free(loss), free(dz), free(dl);
}

/* Soft cross-entropy with one-hot targets is the hard cross-entropy, in value and gradient. */
static void test_xent_soft_equals_hard_on_one_hot(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 19);
    int B = 5, V = 17;
    int targets[5];
    float *q = zeros(B * V);
    for (int b = 0; b < B; b++) q[b * V + (targets[b] = (int)rng_below(&r, V))] = 1.0f;
    float *z = randn(&r, B * V, 2.0f), *dl = randn(&r, B, 1.0f);
    float *p1 = zeros(B * V), *p2 = zeros(B * V), *l1 = zeros(B), *l2 = zeros(B), *d1 = zeros(B * V), *d2 = zeros(B * V);
    ops_softmax_xent_forward(l1, p1, z, targets, B, V);
    ops_softmax_xent_soft_forward(l2, p2, z, q, B, V);
    ops_softmax_xent_backward(d1, dl, p1, targets, B, V);
    ops_softmax_xent_soft_backward(d2, dl, p2, q, B, V);
    ASSERT_CLOSE("soft vs hard loss", rel_err(l2, l1, B), 1e-6);
    ASSERT_CLOSE("soft vs hard gradient", rel_err(d2, d1, B * V), 1e-6);
    free(q), free(z), free(dl), free(p1), free(p2), free(l1), free(l2), free(d1), free(d2);
}

/* ---------- l2norm ---------- */

typedef struct {
    GradCase gc;
    int B, D;
    float eps, *norm;
} L2Case;

static void l2_fwd(GradCase *gc) {
    L2Case *t = (L2Case *)gc;
    ops_l2norm_forward(gc->out, t->norm, gc->in[0], t->B, t->D, t->eps);
}

static void l2_bwd(GradCase *gc) {
    L2Case *t = (L2Case *)gc;
    ops_l2norm_backward(gc->grad[0], gc->dout, gc->out, t->norm, t->B, t->D, t->eps);
}

static void test_l2norm_gradients(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 20);
    for (size_t s = 0; s < sizeof ROW_SHAPES / sizeof ROW_SHAPES[0]; s++) {
        L2Case t = {.B = ROW_SHAPES[s][0], .D = ROW_SHAPES[s][1], .eps = 1e-6f};
        t.norm = zeros(t.B);
        t.gc.forward = l2_fwd;
        t.gc.backward = l2_bwd;
        gc_outputs(&t.gc, "l2norm", (size_t)t.B * t.D);
        float *x = randn(&r, (size_t)t.B * t.D, 1.0f);
        /* D = 1 rows have norm |x|: keep them away from 0, where the map jumps from -1 to 1 */
        for (int i = 0; i < t.B * t.D; i++)
            if (fabsf(x[i]) < 0.1f) x[i] += x[i] < 0 ? -0.2f : 0.2f;
        gc_input(&t.gc, x, (size_t)t.B * t.D, H_SMOOTH, TOL_SMOOTH);
        check_gradients(&t.gc, &r);
        gc_free(&t.gc);
        free(t.norm);
    }
    /* rows below eps: out = x / eps, a linear map with gradient dout / eps */
    L2Case t = {.B = 2, .D = 3, .eps = 1e-2f};
    t.norm = zeros(t.B);
    t.gc.forward = l2_fwd;
    t.gc.backward = l2_bwd;
    gc_outputs(&t.gc, "l2norm below eps", 6);
    gc_input(&t.gc, randn(&r, 6, 1e-3f), 6, 1e-4f, TOL_LINEAR);
    check_gradients(&t.gc, &r);
    gc_free(&t.gc);
    free(t.norm);
}

static void test_l2norm_forward_values(void **state) {
    (void)state;
    float x[6] = {3, 4, 0, 0, 0, 0}, y[6], n[2];
    ops_l2norm_forward(y, n, x, 2, 3, 1e-6f);
    assert_true(n[0] == 5.0f && n[1] == 0.0f);
    assert_true(fabsf(y[0] - 0.6f) < 1e-7f && fabsf(y[1] - 0.8f) < 1e-7f && y[2] == 0.0f);
    for (int i = 3; i < 6; i++) assert_true(y[i] == 0.0f); /* a zero row stays finite */
}

/* ---------- OpenMP paths equal the serial path ---------- */

/* Each row-wise kernel on a batch above OPS_PAR_MIN (threaded) against the same kernel called on
 * row blocks below it (serial); backwards start from the same non-zero gradient. */
static void test_parallel_paths_match_serial(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 21);
    const int B = 1024, C = 96, blk = 64; /* 98304 elements in all, 6144 per block */
    const size_t n = (size_t)B * C;
    float *x = randn(&r, n, 1.0f), *dy = randn(&r, n, 1.0f), *w = randn(&r, C, 1.0f), *bb = randn(&r, C, 1.0f);
    float *y1 = zeros(n), *y2 = zeros(n), *g1 = randn(&r, n, 1.0f), *g2 = copy_of(g1, n);
    float *s1 = zeros(B), *s2 = zeros(B), *t1 = zeros(B), *t2 = zeros(B);
    float *dw1 = zeros(C), *dw2 = zeros(C), *db1 = zeros(C), *db2 = zeros(C);
    float *q = random_distributions(&r, B, C);
    int *tg = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) tg[b] = b % 5 == 0 ? -1 : (int)rng_below(&r, C);

    ops_layernorm_forward(y1, s1, t1, x, w, bb, B, C, LN_EPS);
    ops_layernorm_backward(g1, dw1, db1, dy, x, w, s1, t1, B, C);
    for (int b = 0; b < B; b += blk) {
        ops_layernorm_forward(y2 + b * C, s2 + b, t2 + b, x + b * C, w, bb, blk, C, LN_EPS);
        ops_layernorm_backward(g2 + b * C, dw2, db2, dy + b * C, x + b * C, w, s2 + b, t2 + b, blk, C);
    }
    ASSERT_CLOSE("layernorm forward", rel_err(y1, y2, n), 0);
    ASSERT_CLOSE("layernorm dinp", rel_err(g1, g2, n), 0);
    ASSERT_CLOSE("layernorm dweight", rel_err(dw1, dw2, C), 1e-5);
    ASSERT_CLOSE("layernorm dbias", rel_err(db1, db2, C), 1e-5);

    ops_softmax_forward(y1, x, B, C);
    ops_softmax_backward(g1, dy, y1, B, C);
    for (int b = 0; b < B; b += blk) {
        ops_softmax_forward(y2 + b * C, x + b * C, blk, C);
        ops_softmax_backward(g2 + b * C, dy + b * C, y2 + b * C, blk, C);
    }
    ASSERT_CLOSE("softmax forward", rel_err(y1, y2, n), 0);
    ASSERT_CLOSE("softmax backward", rel_err(g1, g2, n), 0);

    ops_softmax_xent_forward(s1, y1, x, tg, B, C);
    ops_softmax_xent_backward(g1, dy, y1, tg, B, C);
    ops_softmax_xent_soft_forward(t1, y1, x, q, B, C);
    ops_softmax_xent_soft_backward(g1, dy, y1, q, B, C);
    for (int b = 0; b < B; b += blk) {
        ops_softmax_xent_forward(s2 + b, y2 + b * C, x + b * C, tg + b, blk, C);
        ops_softmax_xent_backward(g2 + b * C, dy + b, y2 + b * C, tg + b, blk, C);
        ops_softmax_xent_soft_forward(t2 + b, y2 + b * C, x + b * C, q + b * C, blk, C);
        ops_softmax_xent_soft_backward(g2 + b * C, dy + b, y2 + b * C, q + b * C, blk, C);
    }
    ASSERT_CLOSE("xent forward", rel_err(s1, s2, B), 0);
    ASSERT_CLOSE("xent soft forward", rel_err(t1, t2, B), 0);
    ASSERT_CLOSE("xent backwards", rel_err(g1, g2, n), 0);

    ops_l2norm_forward(y1, s1, x, B, C, 1e-6f);
    ops_l2norm_backward(g1, dy, y1, s1, B, C, 1e-6f);
    for (int b = 0; b < B; b += blk) {
        ops_l2norm_forward(y2 + b * C, s2 + b, x + b * C, blk, C, 1e-6f);
        ops_l2norm_backward(g2 + b * C, dy + b * C, y2 + b * C, s2 + b, blk, C, 1e-6f);
    }
    ASSERT_CLOSE("l2norm forward", rel_err(y1, y2, n), 0);
    ASSERT_CLOSE("l2norm backward", rel_err(g1, g2, n), 0);

    ops_gelu_forward(y1, x, n);
    ops_gelu_backward(g1, dy, x, n, OPS_ACCUMULATE);
    ops_relu_backward(g1, dy, x, n);
    for (size_t i = 0; i < n; i += (size_t)blk * C) {
        ops_gelu_forward(y2 + i, x + i, (size_t)blk * C);
        ops_gelu_backward(g2 + i, dy + i, x + i, (size_t)blk * C, OPS_ACCUMULATE);
        ops_relu_backward(g2 + i, dy + i, x + i, (size_t)blk * C);
    }
    ASSERT_CLOSE("gelu forward", rel_err(y1, y2, n), 0);
    ASSERT_CLOSE("gelu + relu backward", rel_err(g1, g2, n), 0);

    /* pools over N images of 8x8x24 (above OPS_PAR_MIN), against one image at a time */
    const int N = 64, H = 8, W = 8, PC = 24, OH = 4;
    const size_t img = (size_t)H * W * PC, pimg = (size_t)OH * OH * PC;
    int *am1 = malloc(sizeof(int) * N * pimg), *am2 = malloc(sizeof(int) * N * pimg);
    ops_maxpool2d_forward(y1, am1, x, N, H, W, PC, 2, 2);
    ops_maxpool2d_backward(g1, dy, am1, N, OH, OH, PC);
    ops_avgpool2d_forward(y1 + N * pimg, x, N, H, W, PC, 2, 2);
    ops_avgpool2d_backward(g1, dy, N, H, W, PC, 2, 2);
    ops_global_avgpool_forward(y1 + 2 * N * pimg, x, N, H, W, PC);
    ops_global_avgpool_backward(g1, dy, N, H, W, PC);
    for (int i = 0; i < N; i++) {
        ops_maxpool2d_forward(y2 + i * pimg, am2 + i * pimg, x + i * img, 1, H, W, PC, 2, 2);
        for (size_t j = 0; j < pimg; j++) am2[i * pimg + j] += (int)(i * img); /* flat index into the batch */
        ops_avgpool2d_forward(y2 + N * pimg + i * pimg, x + i * img, 1, H, W, PC, 2, 2);
        ops_global_avgpool_forward(y2 + 2 * N * pimg + i * PC, x + i * img, 1, H, W, PC);
    }
    ops_maxpool2d_backward(g2, dy, am2, N, OH, OH, PC);
    for (int i = 0; i < N; i++) {
        ops_avgpool2d_backward(g2 + i * img, dy + i * pimg, 1, H, W, PC, 2, 2);
        ops_global_avgpool_backward(g2 + i * img, dy + i * PC, 1, H, W, PC);
    }
    assert_memory_equal(am1, am2, sizeof(int) * N * pimg);
    ASSERT_CLOSE("pool forwards", rel_err(y1, y2, 2 * N * pimg + N * PC), 0);
    ASSERT_CLOSE("pool backwards", rel_err(g1, g2, n), 0);

    free(x), free(dy), free(w), free(bb), free(y1), free(y2), free(g1), free(g2), free(s1), free(s2), free(t1), free(t2);
    free(dw1), free(dw2), free(db1), free(db2), free(q), free(tg), free(am1), free(am2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_accuracy_and_edges),
        cmocka_unit_test(test_linear_gradients),
        cmocka_unit_test(test_linear_fast_matches_naive),
        cmocka_unit_test(test_linear_null_gradients_skipped),
        cmocka_unit_test(test_conv2d_gradients),
        cmocka_unit_test(test_conv2d_fast_matches_naive),
        cmocka_unit_test(test_conv2d_direct_matches_naive),
        cmocka_unit_test(test_conv2d_relu_backward_gradients),
        cmocka_unit_test(test_conv2d_relu_backward_fast_matches_naive),
        cmocka_unit_test(test_pool_gradients),
        cmocka_unit_test(test_pool_forward_values),
        cmocka_unit_test(test_activation_gradients),
        cmocka_unit_test(test_activation_forward_values),
        cmocka_unit_test(test_gelu_backward_inplace),
        cmocka_unit_test(test_layernorm_gradients),
        cmocka_unit_test(test_layernorm_forward_values),
        cmocka_unit_test(test_softmax_gradients),
        cmocka_unit_test(test_softmax_forward_values_and_stability),
        cmocka_unit_test(test_attention_gradients),
        cmocka_unit_test(test_attention_fast_matches_naive),
        cmocka_unit_test(test_attention_tree_matches_sequences),
        cmocka_unit_test(test_attention_is_causal),
        cmocka_unit_test(test_embedding_gradients),
        cmocka_unit_test(test_xent_gradients),
        cmocka_unit_test(test_xent_values_and_ignore_index),
        cmocka_unit_test(test_xent_soft_equals_hard_on_one_hot),
        cmocka_unit_test(test_l2norm_gradients),
        cmocka_unit_test(test_l2norm_forward_values),
        cmocka_unit_test(test_parallel_paths_match_serial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
