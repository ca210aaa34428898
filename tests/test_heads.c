/* test_heads.c — identity / linear / mlp / gated heads: registry and errors (exact messages), parameter
 * names and shapes, forwards against hand-written loops, finite-difference checks of every
 * parameter tensor and of the input gradient, and that the input gradient accumulates (+=). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/check.h"
#include "common/rng.h"
#include "common/tensors.h"
#include "heads/head.h"
#include "gradcheck.h"

/* eps 1e-2 for smooth heads (linear, GELU): round-off / (2 eps) << atol; 3e-4 with kink detection
 * for ReLU (see gradcheck.h and test_towers.c). */
static const GradcheckTol TOL_SMOOTH = {.eps = 1e-2f, .rtol = 1e-2, .atol = 1e-3, .samples = 8};
static const GradcheckTol TOL_RELU = {.eps = 3e-4f, .rtol = 1e-2, .atol = 1e-3, .samples = 8, .skip_kinks = 1};

enum { B = 3, IN = 6, OUT = 5, HID = 7 };

typedef struct {
    Tensors params, acts;
    Head *head;
    float in[B * IN], din[B * IN];
} HeadFixture;

static void fixture_build(HeadFixture *f, const char *kind, int depth, int act, int out_dim) {
    HeadConfig cfg = {"", depth, HID, ""};
    snprintf(cfg.kind, sizeof cfg.kind, "%s", kind);
    snprintf(cfg.activation, sizeof cfg.activation, "%s", head_activation_name(act));
    tensors_init(&f->params, 4);
    tensors_init(&f->acts, 2);
    Err err = {""};
    f->head = head_create(&cfg, "img.head", IN, out_dim, B, &f->params, &f->acts, &err);
    assert_non_null(f->head);
    assert_string_equal(f->head->ops->name, kind);
    assert_int_equal(f->head->in_dim, IN);
    assert_int_equal(f->head->out_dim, out_dim);
    tensors_alloc(&f->params);
    tensors_alloc(&f->acts);
    Rng r;
    rng_init(&r, 3);
    head_init(f->head, &r);
    /* biases start at 0: make them non-zero so the forward checks see them */
    for (int i = 0; i < f->params.n; i++)
        if (strstr(f->params.info[i].name, "bias"))
            rng_fill_normal(&r, tensors_ptr(&f->params, TBUF_VALUE, i), (long)f->params.info[i].count, 0.5f);
    rng_fill_normal(&r, f->in, B * IN, 1.0f);
}

static void fixture_free(HeadFixture *f) {
    head_free(f->head);
    tensors_free(&f->params);
    tensors_free(&f->acts);
}

static const float *param(const HeadFixture *f, const char *name, int d0, int d1) {
    int i = tensors_find(&f->params, name);
    assert_true(i >= 0);
    assert_int_equal(f->params.info[i].shape[0], d0);
    if (d1) assert_int_equal(f->params.info[i].shape[1], d1);
    return tensors_ptr(&f->params, TBUF_VALUE, i);
}

static const float *head_fwd(void *m) {
    HeadFixture *f = m;
    return head_forward(f->head, f->in, B);
}
static void head_bwd(void *m, const float *dout) {
    HeadFixture *f = m;
    memset(f->din, 0, sizeof f->din);
    head_backward(f->head, f->din, dout, B);
}

/* every parameter tensor, then every input element */
static void head_gradcheck(const char *kind, int depth, int act, int out_dim, const GradcheckTol *tol) {
    HeadFixture f;
    fixture_build(&f, kind, depth, act, out_dim);
    float R[B * HID];
    GradcheckModel m = {head_fwd, head_bwd, &f, (size_t)B * out_dim, R};
    Rng r;
    rng_init(&r, 41);
    GradcheckStats st = gradcheck_model(&m, &f.params, tol, &r);
    GradcheckTol all = *tol;
    all.samples = B * IN;
    gradcheck_array(&st, "input", f.in, f.din, B * IN, gradcheck_model_loss, &m, &all, &r);
    print_message("gradcheck %s: %d elements of %d tensors + input, worst %.3f (%s), %d kinks skipped\n", kind,
                  st.n_checked, f.params.n, st.worst, st.worst_name, st.n_kinks);
    assert_int_equal(st.n_failed, 0);
    assert_int_equal(st.n_flat, 0);
    assert_true(st.n_kinks * 10 <= st.n_checked);
    fixture_free(&f);
}

static void test_gradcheck_linear(void **state) {
    (void)state;
    head_gradcheck("linear", 0, 0, OUT, &TOL_SMOOTH);
}
static void test_gradcheck_mlp_relu_depth2(void **state) {
    (void)state;
    head_gradcheck("mlp", 2, HEAD_ACT_RELU, OUT, &TOL_RELU);
}
static void test_gradcheck_mlp_gelu_depth3(void **state) {
    (void)state;
    head_gradcheck("mlp", 3, HEAD_ACT_GELU, OUT, &TOL_SMOOTH);
}
static void test_gradcheck_identity(void **state) {
    (void)state;
    head_gradcheck("identity", 0, 0, IN, &TOL_SMOOTH);
}

/* The hidden activation in double: ReLU or GELU's tanh approximation. */
static double act_ref(int act, double h) {
    return act == HEAD_ACT_RELU ? (h > 0 ? h : 0) : 0.5 * h * (1.0 + tanh(sqrt(2.0 / M_PI) * (h + 0.044715 * h * h * h)));
}

/* W2 act(W1 h + b1), in double */
static void mlp2_forward_matches_loops(int act) {
    HeadFixture f;
    fixture_build(&f, "mlp", 2, act, OUT);
    assert_int_equal(f.params.n, 3); /* fc1.weight, fc1.bias, fc2.weight: no bias on the output layer */
    const float *w1 = param(&f, "img.head.fc1.weight", HID, IN), *b1 = param(&f, "img.head.fc1.bias", HID, 0);
    const float *w2 = param(&f, "img.head.fc2.weight", OUT, HID);
    assert_int_equal(tensors_find(&f.params, "img.head.fc2.bias"), -1);
    const float *out = head_forward(f.head, f.in, B);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OUT; o++) {
            double s = 0;
            for (int j = 0; j < HID; j++) {
                double h = b1[j];
                for (int i = 0; i < IN; i++) h += (double)w1[j * IN + i] * f.in[b * IN + i];
                s += w2[o * HID + j] * act_ref(act, h);
            }
            assert_true(fabs(out[b * OUT + o] - s) < 1e-5);
        }
    fixture_free(&f);
}

static void test_mlp_relu_forward_is_simclr_head(void **state) {
    (void)state;
    mlp2_forward_matches_loops(HEAD_ACT_RELU);
}

static void test_mlp_gelu_forward(void **state) {
    (void)state;
    mlp2_forward_matches_loops(HEAD_ACT_GELU);
}

/* gated: W2 (act(W1 h + b1) * (V h + c)), in double */
static void gated_forward_matches_loops(int act) {
    HeadFixture f;
    fixture_build(&f, "gated", 2, act, OUT);
    assert_int_equal(f.params.n, 5); /* fc1, gate: weight and bias; fc2: weight only */
    const float *w1 = param(&f, "img.head.fc1.weight", HID, IN), *b1 = param(&f, "img.head.fc1.bias", HID, 0);
    const float *v = param(&f, "img.head.gate.weight", HID, IN), *c = param(&f, "img.head.gate.bias", HID, 0);
    const float *w2 = param(&f, "img.head.fc2.weight", OUT, HID);
    const float *out = head_forward(f.head, f.in, B);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OUT; o++) {
            double s = 0;
            for (int j = 0; j < HID; j++) {
                double h = b1[j], g = c[j];
                for (int i = 0; i < IN; i++) {
                    h += (double)w1[j * IN + i] * f.in[b * IN + i];
                    g += (double)v[j * IN + i] * f.in[b * IN + i];
                }
                s += w2[o * HID + j] * act_ref(act, h) * g;
            }
            assert_true(fabs(out[b * OUT + o] - s) < 1e-5);
        }
    fixture_free(&f);
}

static void test_gated_forward(void **state) {
    (void)state;
    gated_forward_matches_loops(HEAD_ACT_RELU);
    gated_forward_matches_loops(HEAD_ACT_GELU);
}

static void test_gradcheck_gated(void **state) {
    (void)state;
    head_gradcheck("gated", 2, HEAD_ACT_RELU, OUT, &TOL_RELU);
    head_gradcheck("gated", 2, HEAD_ACT_GELU, OUT, &TOL_SMOOTH);
}

static void test_linear_has_no_bias_and_identity_passes_through(void **state) {
    (void)state;
    HeadFixture f;
    fixture_build(&f, "linear", 0, 0, OUT);
    assert_int_equal(f.params.n, 1);
    const float *w = param(&f, "img.head.fc1.weight", OUT, IN);
    const float *out = head_forward(f.head, f.in, B);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OUT; o++) {
            double s = 0;
            for (int i = 0; i < IN; i++) s += (double)w[o * IN + i] * f.in[b * IN + i];
            assert_true(fabs(out[b * OUT + o] - s) < 1e-5);
        }
    fixture_free(&f);
    fixture_build(&f, "identity", 0, 0, IN);
    assert_int_equal(f.params.n, 0);
    assert_memory_equal(head_forward(f.head, f.in, B), f.in, sizeof f.in);
    fixture_free(&f);
}

/* din is accumulated into, not overwritten: two backwards give twice one */
static void test_backward_accumulates_into_din(void **state) {
    (void)state;
    for (int k = 0; head_kind_name(k); k++) { /* every head of the registry */
        HeadFixture f;
        int out_dim = !strcmp(head_kind_name(k), "identity") ? IN : OUT;
        fixture_build(&f, head_kind_name(k), 2, HEAD_ACT_GELU, out_dim);
        float dout[B * IN], once[B * IN] = {0};
        Rng r;
        rng_init(&r, 8);
        rng_fill_normal(&r, dout, B * out_dim, 1.0f);
        head_forward(f.head, f.in, B);
        head_backward(f.head, once, dout, B);
        memcpy(f.din, once, sizeof once);
        head_backward(f.head, f.din, dout, B);
        double norm = 0;
        for (int i = 0; i < B * IN; i++) {
            assert_true(fabsf(f.din[i] - 2.0f * once[i]) <= 1e-6f * (1.0f + fabsf(once[i])));
            norm += fabs(once[i]);
        }
        assert_true(norm > 1e-3);
        head_backward(f.head, NULL, dout, B); /* no input gradient wanted: allowed */
        fixture_free(&f);
    }
}

static void expect_head_error(const char *kind, int depth, int hidden, const char *act, int in_dim, int out_dim,
                              const char *msg) {
    HeadConfig cfg = {"", depth, hidden, ""};
    snprintf(cfg.kind, sizeof cfg.kind, "%s", kind);
    snprintf(cfg.activation, sizeof cfg.activation, "%s", act);
    Tensors p, a;
    tensors_init(&p, 4);
    tensors_init(&a, 2);
    Err err = {""};
    assert_null(head_create(&cfg, "img.head", in_dim, out_dim, 4, &p, &a, &err));
    assert_string_equal(err.msg, msg);
    assert_int_equal(p.n, 0); /* nothing declared */
    assert_int_equal(a.n, 0);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_errors(void **state) {
    (void)state;
    char valid[256], msg[400];
    names_join(valid, sizeof valid, head_kind_name); /* the registry is the list (test_registry.c) */
    snprintf(msg, sizeof msg, "unknown head kind 'conv'; valid: %s", valid);
    expect_head_error("conv", 1, 8, "relu", 16, 16, msg);
    expect_head_error("identity", 1, 8, "relu", 16, 8, "identity head: embedding dim 8 must equal the representation dim 16");
    expect_head_error("mlp", 0, 8, "relu", 16, 8, "mlp head: depth must be in 1..8, got 0");
    expect_head_error("mlp", 9, 8, "relu", 16, 8, "mlp head: depth must be in 1..8, got 9");
    expect_head_error("mlp", 2, 0, "relu", 16, 8, "mlp head: hidden must be >= 1, got 0");
    expect_head_error("mlp", 2, 8, "swish", 16, 8, "unknown mlp head activation 'swish'; valid: relu, gelu");
    expect_head_error("linear", 1, 8, "relu", 16, 0, "linear head: dims must be >= 1, got 16 -> 0");
    expect_head_error("gated", 3, 8, "relu", 16, 8, "gated head: depth must be 2 (one gated hidden layer), got 3");
    expect_head_error("gated", 2, 0, "relu", 16, 8, "gated head: hidden must be >= 1, got 0");
    expect_head_error("gated", 2, 8, "tanh", 16, 8, "unknown gated head activation 'tanh'; valid: relu, gelu");
    Err err = {""};
    assert_string_equal(head_lookup("mlp", &err)->name, "mlp");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_relu_forward_is_simclr_head),
        cmocka_unit_test(test_mlp_gelu_forward),
        cmocka_unit_test(test_linear_has_no_bias_and_identity_passes_through),
        cmocka_unit_test(test_gated_forward),
        cmocka_unit_test(test_gradcheck_gated),
        cmocka_unit_test(test_gradcheck_linear),
        cmocka_unit_test(test_gradcheck_mlp_relu_depth2),
        cmocka_unit_test(test_gradcheck_mlp_gelu_depth3),
        cmocka_unit_test(test_gradcheck_identity),
        cmocka_unit_test(test_backward_accumulates_into_din),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
