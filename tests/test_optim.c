/* test_optim.c — AdamW against hand-computed steps, the weight-decay exemption, the warm-up +
 * cosine schedule at its landmarks, and global-norm clipping (including non-finite gradients).
 * Deliberately left out: training convergence (the trainer's tests). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/tensors.h"
#include "optim/optim.h"

static void assert_near(double got, double want, double rel) {
    if (!(fabs(got - want) <= rel * fabs(want) + 1e-12)) fail_msg("got %.9g, want %.9g", got, want);
}

/* w [2] decays, b [1] is exempt (TENSOR_NO_DECAY). */
typedef struct {
    Tensors t;
    float *w, *dw, *b, *db;
} TwoTensors;

static void two_tensors(TwoTensors *p) {
    tensors_init(&p->t, TBUF_MAX);
    tensors_add1(&p->t, "w", 2, 0, &p->w, &p->dw);
    tensors_add1(&p->t, "b", 1, TENSOR_NO_DECAY, &p->b, &p->db);
    tensors_alloc(&p->t);
}

static const AdamWConfig CFG = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};

static void test_adamw_two_steps_by_hand(void **state) {
    (void)state;
    TwoTensors p;
    two_tensors(&p);
    p.w[0] = 1.0f, p.w[1] = -2.0f, p.b[0] = 3.0f;
    p.dw[0] = 0.5f, p.dw[1] = -1.0f, p.db[0] = 2.0f;
    /* Step 1, lr 0.1: m = 0.1 g, v = 0.001 g^2; bias correction divides by 0.1 and 0.001, so
     * mhat = g, vhat = g^2 and the step is lr * g / (|g| + 1e-8) = 0.1 * sign(g) (to 2e-8).
     * w0 = 1 - 0.1 * 0.99999998 - 0.1 * 0.1 * 1       = 0.890000002
     * w1 = -2 + 0.1 * 0.99999999 - 0.1 * 0.1 * (-2)   = -1.880000001
     * b  = 3 - 0.1 * 0.999999995 (exempt from decay) = 2.9000000005 */
    adamw_step(&p.t, &CFG, 0.1f, 1);
    assert_near(p.w[0], 0.890000002, 1e-6);
    assert_near(p.w[1], -1.880000001, 1e-6);
    assert_near(p.b[0], 2.9000000005, 1e-6);
    /* Step 2 with g = [-0.5, 0.5], 0: bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999.
     * w0: m = 0.9*0.05 + 0.1*(-0.5) = -0.005, v = 0.999*0.00025 + 0.001*0.25 = 0.00049975,
     *     mhat = -0.0263157895, vhat = 0.25, step = -0.0526315779;
     *     w0 = 0.890000002 + 0.1*0.0526315779 - 0.01*0.890000002 = 0.88636316
     * w1: m = 0.9*(-0.1) + 0.05 = -0.04, v = 0.999*0.001 + 0.00025 = 0.001249,
     *     mhat = -0.2105263158, vhat = 0.6248124062, sqrt = 0.7904507614, step = -0.2663370363;
     *     w1 = -1.880000001 + 0.02663370363 + 0.01*1.880000001 = -1.834566297
     * b:  m = 0.9*0.2 = 0.18, v = 0.999*0.004 = 0.003996, mhat = 0.9473684211,
     *     vhat = 1.9989994997, sqrt = 1.4138597879, step = 0.6700582494;
     *     b = 2.9000000005 - 0.06700582494 = 2.832994176 */
    p.dw[0] = -0.5f, p.dw[1] = 0.5f, p.db[0] = 0.0f;
    adamw_step(&p.t, &CFG, 0.1f, 2);
    assert_near(p.w[0], 0.88636316, 1e-6);
    assert_near(p.w[1], -1.834566297, 1e-6);
    assert_near(p.b[0], 2.832994176, 1e-6);
    float *m = tensors_ptr(&p.t, TBUF_ADAM_M, 0), *v = tensors_ptr(&p.t, TBUF_ADAM_V, 0);
    /* the moments carry fp32's 1 - 0.999f = 0.00099998713 (1.3e-5 relative) */
    assert_near(m[0], -0.005, 1e-5);
    assert_near(v[1], 0.001249, 5e-5);
    tensors_free(&p.t);
}

/* With zero gradients the Adam term is 0, so only the decoupled decay moves a parameter:
 * w -> w * (1 - lr * wd) = w * 0.99, while the exempt tensor stays bit-identical. */
static void test_adamw_decay_exemption(void **state) {
    (void)state;
    TwoTensors p;
    two_tensors(&p);
    p.w[0] = 2.0f, p.w[1] = -4.0f, p.b[0] = 5.0f;
    adamw_step(&p.t, &CFG, 0.1f, 1);
    assert_near(p.w[0], 1.98, 1e-6);
    assert_near(p.w[1], -3.96, 1e-6);
    assert_true(p.b[0] == 5.0f);
    tensors_free(&p.t);
}

/* warm-up 100 images, total 1100, peak 1: linear 0 -> 1, then 0.5 (1 + cos(pi * progress)). */
static void test_schedule_landmarks(void **state) {
    (void)state;
    assert_near(schedule_lr(0, 100, 1100, 1.0f), 0.0, 0);
    assert_near(schedule_lr(50, 100, 1100, 1.0f), 0.5, 1e-6);                /* warm-up middle */
    assert_near(schedule_lr(100, 100, 1100, 1.0f), 1.0, 1e-6);               /* warm-up end = peak */
    assert_near(schedule_lr(350, 100, 1100, 2.0f), 1.0 + sqrt(0.5), 1e-6);   /* progress 1/4 */
    assert_near(schedule_lr(600, 100, 1100, 1.0f), 0.5, 1e-6);               /* cosine middle */
    assert_near(schedule_lr(1100, 100, 1100, 1.0f), 0.0, 0);                 /* end */
    assert_near(schedule_lr(5000, 100, 1100, 1.0f), 0.0, 0);                 /* past the end */
    assert_near(schedule_lr(600, 0, 1100, 1.0f), 0.5 * (1 + cos(M_PI * 600 / 1100)), 1e-6); /* no warm-up */
    /* floor 0.1: the cosine runs from 1 down to 0.1 */
    assert_near(schedule_lr_floor(600, 100, 1100, 1.0f, 0.1f), 0.55, 1e-6);
    assert_near(schedule_lr_floor(1100, 100, 1100, 1.0f, 0.1f), 0.1, 1e-6);
    assert_near(schedule_lr_floor(50, 100, 1100, 1.0f, 0.1f), 0.5, 1e-6);
}

/* constant and wsd: the rate at N images is the same for every budget up to
 * schedule_budget_free_until; cosine's is not (the reason the efficiency ablations avoid it). */
static void test_schedules_budget_independent(void **state) {
    (void)state;
    Schedule c = {SCHEDULE_CONSTANT, 100, 1100, 0.2, 1.0f}, w = {SCHEDULE_WSD, 100, 1100, 0.2, 1.0f};
    assert_near(schedule_at(&c, 50), 0.5, 1e-6);
    assert_near(schedule_at(&c, 1000), 1.0, 0);
    assert_near(schedule_budget_free_until(&c), 1100, 0);
    assert_near(schedule_budget_free_until(&w), 880, 1e-9);  /* decay over the last 20% */
    assert_near(schedule_at(&w, 880), 1.0, 0);
    assert_near(schedule_at(&w, 990), 0.5, 1e-6);             /* half-way down the linear decay */
    assert_near(schedule_at(&w, 1100), 0.0, 0);
    assert_near(schedule_at(&w, 5000), 0.0, 0);
    Schedule cos = {SCHEDULE_COSINE, 100, 1100, 0.2, 1.0f};
    assert_near(schedule_at(&cos, 600), schedule_lr(600, 100, 1100, 1.0f), 0);
    const ScheduleKind kinds[3] = {SCHEDULE_CONSTANT, SCHEDULE_WSD, SCHEDULE_COSINE};
    for (int k = 0; k < 3; k++) {
        Schedule a = {kinds[k], 100, 1100, 0.2, 1.0f}, b = {kinds[k], 100, 5000, 0.2, 1.0f};
        double until = fmin(schedule_budget_free_until(&a), schedule_budget_free_until(&b));
        int same = 1;
        for (double x = 0; x <= 1100; x += 10) same &= (x > until) || schedule_at(&a, x) == schedule_at(&b, x);
        assert_true(same);
        assert_true(kinds[k] == SCHEDULE_COSINE ? schedule_at(&a, 600) != schedule_at(&b, 600)
                                                : schedule_at(&a, 600) == schedule_at(&b, 600));
    }
    assert_int_equal(schedule_kind_find("wsd"), SCHEDULE_WSD);
    assert_int_equal(schedule_kind_find("linear"), -1);
    assert_null(schedule_kind_name(3));
}

/* grads [3, 4] and [12]: global norm 13. */
static void test_grad_clip_global_norm(void **state) {
    (void)state;
    TwoTensors p;
    two_tensors(&p);
    p.dw[0] = 3.0f, p.dw[1] = 4.0f, p.db[0] = 12.0f;
    assert_near(grad_clip_global_norm(&p.t, 20.0f), 13.0, 1e-7); /* below the limit: untouched */
    assert_true(p.dw[0] == 3.0f && p.dw[1] == 4.0f && p.db[0] == 12.0f);
    assert_near(grad_clip_global_norm(&p.t, 0.0f), 13.0, 1e-7); /* 0: measure only */
    assert_true(p.db[0] == 12.0f);
    assert_near(grad_clip_global_norm(&p.t, 6.5f), 13.0, 1e-7); /* returns the norm before clipping */
    assert_near(p.dw[0], 1.5, 1e-6);
    assert_near(p.dw[1], 2.0, 1e-6);
    assert_near(p.db[0], 6.0, 1e-6);
    assert_near(grad_clip_global_norm(&p.t, 0.0f), 6.5, 1e-6);
    /* "clipped" is exactly the scaling condition: above a positive limit, finite */
    assert_true(grad_clip_applies(13.0f, 6.5f) && !grad_clip_applies(6.5f, 6.5f) && !grad_clip_applies(13.0f, 0.0f));
    assert_true(!grad_clip_applies(NAN, 1.0f) && !grad_clip_applies(INFINITY, 1.0f));
    /* a non-finite gradient gives a non-finite norm and leaves the gradients alone */
    p.dw[1] = NAN;
    assert_true(isnan(grad_clip_global_norm(&p.t, 1.0f)));
    assert_true(p.db[0] == 6.0f);
    p.dw[1] = INFINITY;
    assert_true(isinf(grad_clip_global_norm(&p.t, 1.0f)));
    assert_true(p.db[0] == 6.0f);
    tensors_free(&p.t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_two_steps_by_hand),
        cmocka_unit_test(test_adamw_decay_exemption),
        cmocka_unit_test(test_schedule_landmarks),
        cmocka_unit_test(test_schedules_budget_independent),
        cmocka_unit_test(test_grad_clip_global_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
