/* test_eval.c — linear probe (loss/gradient, optimiser, protocol), retrieval recall, embedding
 * geometry, each against naive double references or hand-computed values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/rng.h"
#include "eval/evaluate.h"
#include "eval/geometry.h"
#include "eval/probe.h"
#include "eval/rank.h"
#include "eval/retrieval.h"

/* ---------------------------------------------------------------- data generators */

/* Gaussian classes: row i = mu[y_i] + N(0, 1); a fraction `flip` of labels is then redrawn uniformly.
 * x [n, d], y [n], mu [C, d] */
static void gen_clusters(float *x, int *y, int n, int d, int C, const float *mu, float flip, Rng *r) {
    for (int i = 0; i < n; i++) {
        int c = (int)rng_below(r, (uint32_t)C);
        for (int k = 0; k < d; k++) x[(long)i * d + k] = mu[c * d + k] + rng_normal(r);
        y[i] = rng_uniform(r) < flip ? (int)rng_below(r, (uint32_t)C) : c;
    }
}

/* Noise-free linear labels: x ~ N(0, I), y = argmax_c x·v_c. x [n, d], y [n], v [C, d] */
static void gen_linear_rule(float *x, int *y, int n, int d, int C, const float *v, Rng *r) {
    for (int i = 0; i < n; i++) {
        float *xi = x + (long)i * d;
        for (int k = 0; k < d; k++) xi[k] = rng_normal(r);
        int best = 0;
        double best_s = -INFINITY;
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int k = 0; k < d; k++) s += (double)xi[k] * v[c * d + k];
            if (s > best_s) best_s = s, best = c;
        }
        y[i] = best;
    }
}

static void normalize_rows(float *x, int n, int d) {
    for (long i = 0; i < n; i++) {
        double s = 0.0;
        for (int k = 0; k < d; k++) s += (double)x[i * d + k] * x[i * d + k];
        for (int k = 0; k < d; k++) x[i * d + k] = (float)(x[i * d + k] / sqrt(s));
    }
}

/* n random rows on the unit sphere in R^d (malloc'd; caller frees) */
static float *random_unit_rows(int n, int d, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    float *x = malloc(sizeof(float) * n * d);
    rng_fill_normal(&r, x, (long)n * d, 1.0f);
    normalize_rows(x, n, d);
    return x;
}

/* A probe problem with train/val/test splits drawn from one generator. */
typedef struct {
    int n_train, n_val, n_test, d, C;
    float *x_train, *x_val, *x_test;
    int *y_train, *y_val, *y_test;
} Splits;

static Splits splits_alloc(int n_train, int n_val, int n_test, int d, int C) {
    Splits s = {n_train, n_val, n_test, d, C, malloc(sizeof(float) * n_train * d), malloc(sizeof(float) * n_val * d),
                malloc(sizeof(float) * n_test * d), malloc(sizeof(int) * n_train), malloc(sizeof(int) * n_val),
                malloc(sizeof(int) * n_test)};
    return s;
}

static void splits_free(Splits *s) {
    free(s->x_train), free(s->x_val), free(s->x_test), free(s->y_train), free(s->y_val), free(s->y_test);
}

/* Cluster splits; class means ~ N(0, sep²) per coordinate; train/val labels flipped, test clean. */
static Splits cluster_splits(int n_train, int n_val, int n_test, int d, int C, float sep, float flip, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    Splits s = splits_alloc(n_train, n_val, n_test, d, C);
    float *mu = malloc(sizeof(float) * C * d);
    rng_fill_normal(&r, mu, (long)C * d, sep);
    gen_clusters(s.x_train, s.y_train, n_train, d, C, mu, flip, &r);
    gen_clusters(s.x_val, s.y_val, n_val, d, C, mu, flip, &r);
    gen_clusters(s.x_test, s.y_test, n_test, d, C, mu, 0.0f, &r);
    free(mu);
    return s;
}

static Splits linear_rule_splits(int n_train, int n_val, int n_test, int d, int C, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    Splits s = splits_alloc(n_train, n_val, n_test, d, C);
    float *v = malloc(sizeof(float) * C * d);
    rng_fill_normal(&r, v, (long)C * d, 1.0f);
    gen_linear_rule(s.x_train, s.y_train, n_train, d, C, v, &r);
    gen_linear_rule(s.x_val, s.y_val, n_val, d, C, v, &r);
    gen_linear_rule(s.x_test, s.y_test, n_test, d, C, v, &r);
    free(v);
    return s;
}

/* Adds a strong common factor to every split of s: row i gets FACTOR · u_i · w (u_i ~ N(0, 1), w [d] a
 * fixed N(0, 1) vector), so the standardised features are highly correlated and the loss
 * ill-conditioned, as the towers' pooled features are (one direction carrying most variance). */
#define FACTOR 10.0f
static void add_common_factor(Splits *s, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    float *w = malloc(sizeof(float) * s->d);
    rng_fill_normal(&r, w, s->d, 1.0f);
    float *xs[3] = {s->x_train, s->x_val, s->x_test};
    int ns[3] = {s->n_train, s->n_val, s->n_test};
    for (int k = 0; k < 3; k++)
        for (long i = 0; i < ns[k]; i++) {
            float u = FACTOR * rng_normal(&r);
            for (int j = 0; j < s->d; j++) xs[k][i * s->d + j] += u * w[j];
        }
    free(w);
}

static ProbeResult splits_probe(const Splits *s) {
    return probe_fit_eval(s->x_train, s->y_train, s->n_train, s->x_val, s->y_val, s->n_val, s->x_test, s->y_test,
                          s->n_test, s->d, s->C);
}

/* ---------------------------------------------------------------- probe */

/* Train and val of s standardised with train statistics (mean, inv_std [d] out; xt, xv malloc'd). */
static void standardize_splits(const Splits *s, float *mean, float *inv_std, float **xt, float **xv) {
    *xt = malloc(sizeof(float) * s->n_train * s->d), *xv = malloc(sizeof(float) * s->n_val * s->d);
    probe_standardize_fit(mean, inv_std, s->x_train, s->n_train, s->d);
    probe_standardize_apply(*xt, s->x_train, mean, inv_std, s->n_train, s->d);
    probe_standardize_apply(*xv, s->x_val, mean, inv_std, s->n_val, s->d);
}

/* Loss and max |gradient| of p on standardised xt. */
static double loss_and_max_grad(const Splits *s, const float *xt, const float *p, float lambda, double *max_g,
                                float *g) {
    const long P = probe_n_params(s->d, s->C);
    float *logits = malloc(sizeof(float) * s->n_train * s->C);
    double *row_loss = malloc(sizeof(double) * s->n_train);
    memset(g, 0, sizeof(float) * P);
    double f = probe_loss_grad(g, logits, row_loss, p, xt, s->y_train, s->n_train, s->d, s->C, lambda);
    *max_g = 0.0;
    for (long k = 0; k < P; k++) *max_g = fmax(*max_g, fabs(g[k]));
    free(logits), free(row_loss);
    return f;
}


/* mean_i CE + (λ/2)‖W‖², all in double. p [(d+1)*C]: W [d, C] then b [C]. */
static double naive_probe_loss(const double *p, const float *x, const int *y, int n, int d, int C, double lambda) {
    double loss = 0.0, reg = 0.0;
    double *z = malloc(sizeof(double) * C);
    for (int i = 0; i < n; i++) {
        double zmax = -INFINITY, sum = 0.0;
        for (int c = 0; c < C; c++) {
            z[c] = p[(long)d * C + c];
            for (int k = 0; k < d; k++) z[c] += (double)x[(long)i * d + k] * p[k * C + c];
            zmax = fmax(zmax, z[c]);
        }
        for (int c = 0; c < C; c++) sum += exp(z[c] - zmax);
        loss += zmax + log(sum) - z[y[i]];
    }
    for (long k = 0; k < (long)d * C; k++) reg += p[k] * p[k];
    free(z);
    return loss / n + 0.5 * lambda * reg;
}

static void test_probe_loss_matches_naive_and_gradient_matches_fd(void **state) {
    (void)state;
    const int n = 13, d = 7, C = 5;
    const float lambda = 0.3f;
    const long P = probe_n_params(d, C);
    Rng r;
    rng_init(&r, 7);
    float *x = malloc(sizeof(float) * n * d), *p = malloc(sizeof(float) * P), *g = malloc(sizeof(float) * P);
    float *logits = malloc(sizeof(float) * n * C);
    double *row_loss = malloc(sizeof(double) * n), *pd = calloc((size_t)P, sizeof(double));
    int y[13];
    rng_fill_normal(&r, x, (long)n * d, 1.0f);
    rng_fill_normal(&r, p, P, 0.5f);
    for (int i = 0; i < n; i++) y[i] = (int)rng_below(&r, C);
    for (long k = 0; k < P; k++) pd[k] = p[k], g[k] = 0.25f; /* a prior value: the gradient must add to it */

    double ref = naive_probe_loss(pd, x, y, n, d, C, lambda);
    double f_nograd = probe_loss_grad(NULL, logits, row_loss, p, x, y, n, d, C, lambda);
    double f = probe_loss_grad(g, logits, row_loss, p, x, y, n, d, C, lambda);
    assert_true(fabs(f - ref) <= 1e-5 * fabs(ref));
    assert_true(f == f_nograd);

    const double eps = 1e-5;
    for (long k = 0; k < P; k++) {
        double keep = pd[k];
        pd[k] = keep + eps;
        double fp = naive_probe_loss(pd, x, y, n, d, C, lambda);
        pd[k] = keep - eps;
        double fm = naive_probe_loss(pd, x, y, n, d, C, lambda);
        pd[k] = keep;
        double fd = (fp - fm) / (2 * eps);
        double analytic = (double)g[k] - 0.25;
        assert_true(fabs(analytic - fd) <= 1e-5 + 1e-4 * fabs(fd));
    }
    free(x), free(p), free(g), free(logits), free(row_loss), free(pd);
}

static void test_probe_train_reaches_a_stationary_point(void **state) {
    (void)state;
    const float lambdas[2] = {1e-3f, 1e-1f};
    for (int l = 0; l < 2; l++) {
        Splits s = cluster_splits(600, 1, 1, 24, 6, 0.4f, 0.1f, 11);
        const long P = probe_n_params(s.d, s.C);
        float *mean = malloc(sizeof(float) * s.d), *inv_std = malloc(sizeof(float) * s.d);
        float *p = calloc((size_t)P, sizeof(float)), *g = calloc((size_t)P, sizeof(float));
        float *logits = malloc(sizeof(float) * s.n_train * s.C);
        double *row_loss = malloc(sizeof(double) * s.n_train);
        probe_standardize_fit(mean, inv_std, s.x_train, s.n_train, s.d);
        probe_standardize_apply(s.x_train, s.x_train, mean, inv_std, s.n_train, s.d);
        double f0 = probe_loss_grad(NULL, logits, row_loss, p, s.x_train, s.y_train, s.n_train, s.d, s.C, lambdas[l]);
        int iters = probe_train(p, s.x_train, s.y_train, s.n_train, s.d, s.C, lambdas[l], PROBE_MAX_ITER);
        double f = probe_loss_grad(g, logits, row_loss, p, s.x_train, s.y_train, s.n_train, s.d, s.C, lambdas[l]);
        assert_true(iters > 0 && iters < PROBE_MAX_ITER);
        assert_true(f < 0.7 * f0);
        /* convex loss: a vanishing gradient means the minimum */
        for (long k = 0; k < P; k++) assert_true(fabsf(g[k]) < 1e-4f);
        free(mean), free(inv_std), free(p), free(g), free(logits), free(row_loss);
        splits_free(&s);
    }
}

/* Correlated features (a common factor over every column) make the small-λ loss ill-conditioned;
 * the preconditioned L-BFGS still reaches the minimum in few iterations (10 when written; plain
 * L-BFGS, the optimiser before the preconditioner, stopped on its FTOL plateau after 195 with
 * max|g| 3e-4, short of the minimum). */
#define CORRELATED_MAX_ITERS 40
static void test_probe_train_is_fast_on_correlated_features(void **state) {
    (void)state;
    Splits s = cluster_splits(800, 1, 1, 24, 6, 0.3f, 0.15f, 41);
    add_common_factor(&s, 42);
    const long P = probe_n_params(s.d, s.C);
    const float lambda = PROBE_LAMBDAS[0];
    float *mean = malloc(sizeof(float) * s.d), *inv_std = malloc(sizeof(float) * s.d), *xt, *xv;
    float *p = calloc((size_t)P, sizeof(float)), *g = malloc(sizeof(float) * P);
    standardize_splits(&s, mean, inv_std, &xt, &xv);
    double g0, f0 = loss_and_max_grad(&s, xt, p, lambda, &g0, g);
    int iters = probe_train(p, xt, s.y_train, s.n_train, s.d, s.C, lambda, PROBE_MAX_ITER);
    double gmax, f = loss_and_max_grad(&s, xt, p, lambda, &gmax, g);
    assert_true(iters < CORRELATED_MAX_ITERS);
    assert_true(f < 0.8 * f0 && gmax < 1e-4); /* convex: a vanishing gradient means the minimum */
    free(mean), free(inv_std), free(xt), free(xv), free(p), free(g);
    splits_free(&s);
}

/* Without L2 a constant feature (standardised to 0) makes the preconditioner's Σ singular: the fit
 * falls back to plain L-BFGS instead of failing. */
static void test_probe_train_without_l2_on_a_constant_feature(void **state) {
    (void)state;
    Splits s = cluster_splits(300, 1, 1, 6, 3, 0.5f, 0.2f, 13);
    for (int i = 0; i < s.n_train; i++) s.x_train[i * s.d] = 2.0f;
    const long P = probe_n_params(s.d, s.C);
    float *mean = malloc(sizeof(float) * s.d), *inv_std = malloc(sizeof(float) * s.d), *xt, *xv;
    float *p = calloc((size_t)P, sizeof(float)), *g = malloc(sizeof(float) * P);
    standardize_splits(&s, mean, inv_std, &xt, &xv);
    double g0, f0 = loss_and_max_grad(&s, xt, p, 0.0f, &g0, g);
    int iters = probe_train(p, xt, s.y_train, s.n_train, s.d, s.C, 0.0f, PROBE_MAX_ITER);
    double gmax, f = loss_and_max_grad(&s, xt, p, 0.0f, &gmax, g);
    assert_true(iters > 0 && f < 0.9 * f0 && gmax < 1e-4);
    free(mean), free(inv_std), free(xt), free(xv), free(p), free(g);
    splits_free(&s);
}

static void test_probe_standardize_uses_train_statistics(void **state) {
    (void)state;
    /* column 0: mean 2, std 1; column 1: constant 5 (inv_std 1, standardises to 0) */
    float x[8] = {1, 5, 3, 5, 1, 5, 3, 5}, mean[2], inv_std[2], out[8];
    probe_standardize_fit(mean, inv_std, x, 4, 2);
    assert_true(mean[0] == 2.0f && mean[1] == 5.0f);
    assert_true(inv_std[0] == 1.0f && inv_std[1] == 1.0f);
    probe_standardize_apply(out, x, mean, inv_std, 4, 2);
    const float want[8] = {-1, 0, 1, 0, -1, 0, 1, 0};
    for (int k = 0; k < 8; k++) assert_true(out[k] == want[k]);
}

static void test_probe_separable_clusters_reach_full_accuracy(void **state) {
    (void)state;
    Splits s = cluster_splits(400, 200, 1000, 16, 4, 4.0f, 0.0f, 3);
    ProbeResult r = splits_probe(&s);
    assert_true(r.test_acc >= 0.995f);
    assert_true(r.val_acc >= 0.99f);
    splits_free(&s);
}

static void test_probe_random_labels_stay_at_chance(void **state) {
    (void)state;
    Splits s = cluster_splits(400, 200, 2000, 16, 4, 0.0f, 0.0f, 5); /* all means 0: labels carry nothing */
    ProbeResult r = splits_probe(&s);
    assert_true(r.test_acc > 0.19f && r.test_acc < 0.31f);
    splits_free(&s);
}

/* The λ path replayed with the exposed pieces on standardised train xt [n_train, d] and val
 * xv [n_val, d]: largest λ first from zero, each next from the previous solution. Per λ (grid
 * order): its solution into sol [PROBE_N_LAMBDAS][P], iterations, validation accuracy. */
static void replay_path(const Splits *s, const float *xt, const float *xv, float *sol, int *iters, float *acc) {
    const long P = probe_n_params(s->d, s->C);
    float *p = calloc((size_t)P, sizeof(float));
    for (int l = PROBE_N_LAMBDAS - 1; l >= 0; l--) {
        iters[l] = probe_train(p, xt, s->y_train, s->n_train, s->d, s->C, PROBE_LAMBDAS[l], PROBE_MAX_ITER);
        acc[l] = probe_accuracy(p, xv, s->y_val, s->n_val, s->d, s->C);
        memcpy(sol + l * P, p, sizeof(float) * P);
    }
    free(p);
}

/* Train+val of s standardised with their own statistics (mean, inv_std [d] out), and test with
 * them: xa, ya, xs malloc'd. */
static void standardize_train_val(const Splits *s, float *mean, float *inv_std, float **xa, int **ya, float **xs) {
    const int n_all = s->n_train + s->n_val, d = s->d;
    *xa = malloc(sizeof(float) * n_all * d), *xs = malloc(sizeof(float) * s->n_test * d), *ya = malloc(sizeof(int) * n_all);
    memcpy(*xa, s->x_train, sizeof(float) * s->n_train * d);
    memcpy(*xa + s->n_train * d, s->x_val, sizeof(float) * s->n_val * d);
    memcpy(*ya, s->y_train, sizeof(int) * s->n_train);
    memcpy(*ya + s->n_train, s->y_val, sizeof(int) * s->n_val);
    probe_standardize_fit(mean, inv_std, *xa, n_all, d);
    probe_standardize_apply(*xa, *xa, mean, inv_std, n_all, d);
    probe_standardize_apply(*xs, s->x_test, mean, inv_std, s->n_test, d);
}

/* Replays the protocol with the exposed pieces: the λ path on standardised train, scored on val;
 * the result must be the val-argmax (ties to the larger λ), with the path's iterations, and the
 * test accuracy that of the train+val refit from the chosen solution mapped by
 * probe_restandardize. Returns how many grid values tie at the best val accuracy and, in *spread,
 * whether some λ scored worse. */
static int check_lambda_is_the_validation_argmax(const Splits *s, int *spread) {
    const int d = s->d, C = s->C;
    const long P = probe_n_params(d, C);
    float *mean = malloc(sizeof(float) * d), *inv_std = malloc(sizeof(float) * d);
    float *mean_all = malloc(sizeof(float) * d), *inv_std_all = malloc(sizeof(float) * d);
    float *sol = malloc(sizeof(float) * PROBE_N_LAMBDAS * P), *xt, *xv, *xa, *xs;
    int *ya, iters[PROBE_N_LAMBDAS];
    standardize_splits(s, mean, inv_std, &xt, &xv);
    float acc[PROBE_N_LAMBDAS], best_acc = -1.0f, best_lambda = 0.0f, lo_acc = 2.0f;
    int best = 0;
    replay_path(s, xt, xv, sol, iters, acc);
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) {
        if (acc[l] >= best_acc) best_acc = acc[l], best_lambda = PROBE_LAMBDAS[l], best = l;
        lo_acc = fminf(lo_acc, acc[l]);
    }
    int ties = 0;
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) ties += acc[l] == best_acc;
    *spread = best_acc > lo_acc;
    ProbeResult r = splits_probe(s);
    assert_true(r.lambda == best_lambda);
    assert_true(r.val_acc == best_acc);
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) assert_true(r.iters[l] == iters[l]);

    standardize_train_val(s, mean_all, inv_std_all, &xa, &ya, &xs);
    float *p = sol + best * P;
    probe_restandardize(p, mean, inv_std, mean_all, inv_std_all, d, C);
    assert_true(r.refit_iters == probe_train(p, xa, ya, s->n_train + s->n_val, d, C, r.lambda, PROBE_MAX_ITER));
    assert_true(r.test_acc == probe_accuracy(p, xs, s->y_test, s->n_test, d, C));
    free(mean), free(inv_std), free(mean_all), free(inv_std_all), free(sol);
    free(xt), free(xv), free(xa), free(ya), free(xs);
    return ties;
}

static void test_probe_lambda_is_the_validation_argmax(void **state) {
    (void)state;
    int spread;
    /* noisy: the grid matters, so picking the argmax has teeth */
    Splits noisy = cluster_splits(150, 300, 300, 20, 3, 0.35f, 0.2f, 21);
    check_lambda_is_the_validation_argmax(&noisy, &spread);
    assert_true(spread);
    /* separable: several λ tie at the best val accuracy, so the tie rule is exercised */
    Splits easy = cluster_splits(200, 200, 200, 16, 4, 4.0f, 0.0f, 3);
    assert_true(check_lambda_is_the_validation_argmax(&easy, &spread) >= 2);
    splits_free(&noisy);
    splits_free(&easy);
}

/* logits [n, C] of params on x [n, d] standardised by (mean, inv_std), in double. */
static void naive_standardized_logits(double *logits, const float *params, const float *x, const float *mean,
                                      const float *inv_std, int n, int d, int C) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            double z = params[(long)d * C + c];
            for (int k = 0; k < d; k++) z += ((double)x[i * d + k] - mean[k]) * inv_std[k] * params[k * C + c];
            logits[i * C + c] = z;
        }
}

/* The refit's warm start: the mapped parameters give every raw row the logits the originals gave
 * it under the other standardisation (naive double reference), a constant column included. */
static void test_probe_restandardize_keeps_the_function(void **state) {
    (void)state;
    enum { N = 12, D = 5, C = 4, N_FROM = 6 };
    const long P = probe_n_params(D, C);
    Rng r;
    rng_init(&r, 31);
    float x[N * D], p[(D + 1) * C], mean_from[D], inv_std_from[D], mean_to[D], inv_std_to[D];
    double want[N * C], got[N * C];
    rng_fill_normal(&r, x, N * D, 2.0f);
    for (int i = 0; i < N; i++) {
        x[i * D + D - 1] = 3.0f; /* constant: inv_std 1 on both sides */
        for (int k = 0; k < D - 1 && i >= N_FROM; k++) x[i * D + k] = 1.5f * x[i * D + k] + 4.0f; /* other statistics */
    }
    rng_fill_normal(&r, p, P, 1.0f);
    probe_standardize_fit(mean_from, inv_std_from, x, N_FROM, D);
    probe_standardize_fit(mean_to, inv_std_to, x, N, D);
    naive_standardized_logits(want, p, x, mean_from, inv_std_from, N, D, C);
    probe_restandardize(p, mean_from, inv_std_from, mean_to, inv_std_to, D, C);
    naive_standardized_logits(got, p, x, mean_to, inv_std_to, N, D, C);
    for (int k = 0; k < N * C; k++) assert_true(fabs(got[k] - want[k]) <= 1e-5 * (1.0 + fabs(want[k])));
    /* the two standardisations differ, so an identity map would fail */
    assert_true(fabsf(mean_to[0] - mean_from[0]) > 1.0f && fabsf(inv_std_to[0] / inv_std_from[0] - 1.0f) > 0.1f);
}

/* The warm-started path stops at the optimum each λ's fit from zero stops at, with the same
 * validation accuracy, in fewer iterations (a path started from zero, as before, or from garbage
 * fails the count). Convexity bounds the loss gap by each end point's gradient: f(a) - f(b) <=
 * g(a)·(a - b). Both end points are stationary: max|g| below STATIONARY (the stopping rule's GTOL
 * 1e-5, or its FTOL plateau: up to 6e-5 here), so the gap is at most STATIONARY · |a - b|_1; the
 * loss itself is known to LOSS_ROUNDING relative (fp32 logits: FTOL's round-off level). */
#define STATIONARY 1e-4
#define LOSS_ROUNDING 1e-7
static void test_probe_path_reaches_the_cold_optimum(void **state) {
    (void)state;
    Splits s = linear_rule_splits(1200, 400, 400, 24, 6, 41);
    const long P = probe_n_params(s.d, s.C);
    float *mean = malloc(sizeof(float) * s.d), *inv_std = malloc(sizeof(float) * s.d), *xt, *xv;
    float *sol = malloc(sizeof(float) * PROBE_N_LAMBDAS * P), *cold = malloc(sizeof(float) * P);
    float *g_warm = malloc(sizeof(float) * P), *g_cold = malloc(sizeof(float) * P), acc[PROBE_N_LAMBDAS];
    int iters[PROBE_N_LAMBDAS], warm_total = 0, cold_total = 0;
    standardize_splits(&s, mean, inv_std, &xt, &xv);
    replay_path(&s, xt, xv, sol, iters, acc);
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) {
        const float *warm = sol + l * P, lambda = PROBE_LAMBDAS[l];
        memset(cold, 0, sizeof(float) * P);
        cold_total += probe_train(cold, xt, s.y_train, s.n_train, s.d, s.C, lambda, PROBE_MAX_ITER);
        warm_total += iters[l];
        double gw, gc, fw = loss_and_max_grad(&s, xt, warm, lambda, &gw, g_warm);
        double fc = loss_and_max_grad(&s, xt, cold, lambda, &gc, g_cold), dw = 0.0, dc = 0.0, l1 = 0.0;
        for (long k = 0; k < P; k++) {
            dw += (double)g_warm[k] * (warm[k] - cold[k]);
            dc += (double)g_cold[k] * (cold[k] - warm[k]);
            l1 += fabs((double)warm[k] - cold[k]);
        }
        assert_true(gw < STATIONARY && gc < STATIONARY);
        assert_true(fw - fc <= dw + LOSS_ROUNDING * fc && fc - fw <= dc + LOSS_ROUNDING * fc);
        assert_true(fabs(fw - fc) <= STATIONARY * l1 + LOSS_ROUNDING * fc);
        assert_true(acc[l] == probe_accuracy(cold, xv, s.y_val, s.n_val, s.d, s.C));
    }
    assert_true(warm_total < cold_total);
    free(mean), free(inv_std), free(xt), free(xv), free(sol), free(cold), free(g_warm), free(g_cold);
    splits_free(&s);
}

/* The whole protocol: the refit from the chosen λ's mapped solution (the replay checks the mapping
 * is applied) gives the test accuracy of a refit from zero, in fewer iterations. */
static void test_probe_refit_from_the_chosen_solution_matches_a_cold_refit(void **state) {
    (void)state;
    Splits s = linear_rule_splits(1200, 400, 400, 24, 6, 41);
    const long P = probe_n_params(s.d, s.C);
    float *mean = malloc(sizeof(float) * s.d), *inv_std = malloc(sizeof(float) * s.d), *xa, *xs;
    float *cold = calloc((size_t)P, sizeof(float));
    int *ya, spread;
    check_lambda_is_the_validation_argmax(&s, &spread);
    ProbeResult r = splits_probe(&s);
    standardize_train_val(&s, mean, inv_std, &xa, &ya, &xs);
    int cold_iters = probe_train(cold, xa, ya, s.n_train + s.n_val, s.d, s.C, r.lambda, PROBE_MAX_ITER);
    assert_true(r.test_acc == probe_accuracy(cold, xs, s.y_test, s.n_test, s.d, s.C));
    assert_true(r.lambda == PROBE_LAMBDAS[0] && r.refit_iters < cold_iters);
    free(mean), free(inv_std), free(xa), free(xs), free(cold), free(ya);
    splits_free(&s);
}

/* Small noisy training sets (n = 3d, 30% flipped labels) want strong regularisation; a large
 * noise-free linearly labelled one wants little. (Checked on 10 seeds while writing: always λ = 1
 * vs λ = 1e-4; three are kept here.) */
static void test_probe_lambda_grows_for_small_noisy_training_sets(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        Splits small = cluster_splits(120, 1000, 200, 40, 4, 0.5f, 0.3f, seed);
        Splits large = linear_rule_splits(2000, 1000, 200, 32, 4, seed);
        ProbeResult rs = splits_probe(&small), rl = splits_probe(&large);
        assert_true(rs.lambda >= 0.1f);
        assert_true(rl.lambda <= 1e-3f);
        assert_true(rl.test_acc > 0.95f);
        splits_free(&small);
        splits_free(&large);
    }
}

/* ---------------------------------------------------------------- retrieval */

/* Naive double reference of the rule of eval/rank.h, written out independently: the true match's
 * position under random tie-breaking is uniform on above+1 .. above+tied+1. */
static double naive_credit(int above, int tied, int k) {
    double hit = 0.0;
    for (int pos = above + 1; pos <= above + tied + 1; pos++) hit += pos <= k;
    return hit / (tied + 1);
}

static RetrievalResult naive_retrieval(const float *img, const float *txt, int N, int D) {
    double hits[4] = {0, 0, 0, 0};
    for (int dir = 0; dir < 2; dir++) {
        const float *q = dir ? txt : img, *c = dir ? img : txt;
        for (int i = 0; i < N; i++) {
            double s_true = 0.0;
            for (int k = 0; k < D; k++) s_true += (double)q[(long)i * D + k] * c[(long)i * D + k];
            int above = 0, tied = 0;
            for (int j = 0; j < N; j++) {
                double s = 0.0;
                for (int k = 0; k < D; k++) s += (double)q[(long)i * D + k] * c[(long)j * D + k];
                above += j != i && s > s_true;
                tied += j != i && s == s_true;
            }
            hits[2 * dir] += naive_credit(above, tied, 1);
            hits[2 * dir + 1] += naive_credit(above, tied, 5);
        }
    }
    RetrievalResult r = {(float)(hits[0] / N), (float)(hits[1] / N), (float)(hits[2] / N), (float)(hits[3] / N)};
    return r;
}

static void assert_retrieval_equal(RetrievalResult a, RetrievalResult b) {
    /* credits are multiples of 1/(k(k+1)...) summed in double: equal up to the float rounding */
    const float tol = 1e-6f;
    assert_true(fabsf(a.i2t_r1 - b.i2t_r1) <= tol && fabsf(a.i2t_r5 - b.i2t_r5) <= tol &&
                fabsf(a.t2i_r1 - b.t2i_r1) <= tol && fabsf(a.t2i_r5 - b.t2i_r5) <= tol);
}

static void test_retrieval_identical_pairs_are_perfect(void **state) {
    (void)state;
    const int N = 300, D = 32;
    float *x = random_unit_rows(N, D, 3);
    RetrievalResult got = retrieval_eval(x, x, N, D);
    RetrievalResult want = {1, 1, 1, 1};
    assert_retrieval_equal(got, want);
    free(x);
}

/* img = identity, so score(image i, text j) = txt[j][i] = S[i][j]: any score matrix can be set. */
static void test_retrieval_hand_ranks_with_ties(void **state) {
    (void)state;
    enum { N = 6 };
    const float S[N][N] = {
        {5, 1, 2, 3, 4, 0}, /* i2t: first, alone: R@1 1, R@5 1 */
        {3, 2, 3, 1, 0, 0}, /* two strictly above: R@1 0, R@5 1 */
        {1, 1, 1, 1, 1, 1}, /* a 6-way tie: R@1 1/6, R@5 5/6 */
        {0, 9, 9, 4, 9, 9}, /* four above: R@1 0, R@5 1 */
        {0, 0, 0, 0, 7, 7}, /* a 2-way tie at the top: R@1 1/2, R@5 1 */
        {9, 8, 8, 8, 8, 8}, /* one above, a 5-way tie for places 2..6: R@1 0, R@5 4/5 */
    };
    /* t2i (columns): col0 one above (9), col1 two (9, 8), col2 four (2, 3, 9, 8), col3 one (8),
     * col4 two (9, 8), col5 one (9), no ties: R@1 0, R@5 1 */
    float img[N * N] = {0}, txt[N * N];
    for (int i = 0; i < N; i++) img[i * N + i] = 1.0f;
    for (int j = 0; j < N; j++)
        for (int i = 0; i < N; i++) txt[j * N + i] = S[i][j];
    RetrievalResult want = {(float)((1 + 1.0 / 6 + 0.5) / 6), (float)((4 + 5.0 / 6 + 0.8) / 6), 0.0f, 1.0f};
    assert_retrieval_equal(retrieval_eval(img, txt, N, N), want);
    assert_retrieval_equal(naive_retrieval(img, txt, N, N), want);
}

static void test_retrieval_matches_naive_for_every_block_size(void **state) {
    (void)state;
    /* small integer entries: every score is exact in fp32, and ties are frequent */
    const int N = 257, D = 6;
    Rng r;
    rng_init(&r, 9);
    float *img = malloc(sizeof(float) * N * D), *txt = malloc(sizeof(float) * N * D);
    for (long k = 0; k < (long)N * D; k++) {
        img[k] = (float)((int)rng_below(&r, 3) - 1);
        txt[k] = (float)((int)rng_below(&r, 3) - 1);
    }
    for (int i = 0; i < N; i += 3) /* make a third of the pairs agree, so recall is not ~0 */
        memcpy(txt + (long)i * D, img + (long)i * D, sizeof(float) * D);
    RetrievalResult want = naive_retrieval(img, txt, N, D);
    assert_true(want.i2t_r5 > 0.0f && want.i2t_r5 < 1.0f);
    const int blocks[4] = {1, 7, 64, N};
    for (int b = 0; b < 4; b++) assert_retrieval_equal(retrieval_eval_blocked(img, txt, N, D, blocks[b]), want);
    assert_retrieval_equal(retrieval_eval(img, txt, N, D), want);
    free(img), free(txt);
}

static void test_retrieval_nan_counts_as_a_miss(void **state) {
    (void)state;
    enum { N = 7 };
    float img[N * N] = {0}, txt[N * N] = {0};
    for (int i = 0; i < N; i++) img[i * N + i] = txt[i * N + i] = 1.0f;
    img[0] = NAN; /* image 0 scores NaN against every text */
    RetrievalResult got = retrieval_eval(img, txt, N, N);
    /* i2t: image 0's true score is NaN, so all 6 others rank above it (miss); images 1..6 are
     * exact. t2i: text 0 misses likewise; texts 1..6 see image 0's NaN score, which ranks above
     * their match (a non-finite competitor is never below the truth): out of R@1, inside R@5. */
    RetrievalResult want = {6.0f / 7, 6.0f / 7, 0.0f, 6.0f / 7};
    assert_retrieval_equal(got, want);
}

/* ---------------------------------------------------------------- the tie rule (eval/rank.h) */

static void test_rank_credit_hand_values(void **state) {
    (void)state;
    const float row[6] = {2, 1, 1, 1, 0, 3}; /* truth 1: one above (2) plus the 3, a 3-way tie */
    assert_true(rank_topk_credit(row, 6, 1, 1) == 0.0);
    assert_true(rank_topk_credit(row, 6, 1, 2) == 0.0);
    assert_true(fabs(rank_topk_credit(row, 6, 1, 3) - 1.0 / 3) < 1e-15);
    assert_true(fabs(rank_topk_credit(row, 6, 1, 4) - 2.0 / 3) < 1e-15);
    assert_true(rank_topk_credit(row, 6, 1, 5) == 1.0);
    assert_true(rank_topk_credit(row, 6, 5, 1) == 1.0); /* the unique maximum */
    assert_true(rank_topk_credit(row, 6, 4, 5) == 0.0); /* the unique minimum is sixth */
    /* random rows of small integers (many ties) against the naive enumeration of positions */
    Rng r;
    rng_init(&r, 17);
    for (int trial = 0; trial < 200; trial++) {
        float v[9];
        for (int j = 0; j < 9; j++) v[j] = (float)rng_below(&r, 4);
        int truth = (int)rng_below(&r, 9), above = 0, tied = 0;
        for (int j = 0; j < 9; j++) above += v[j] > v[truth], tied += j != truth && v[j] == v[truth];
        for (int k = 1; k <= 9; k++) assert_true(fabs(rank_topk_credit(v, 9, truth, k) - naive_credit(above, tied, k)) < 1e-15);
    }
    const float inf_row[3] = {1, INFINITY, 0}, nan_true[3] = {NAN, 0, -1}, ninf_true[3] = {-INFINITY, -INFINITY, -INFINITY};
    assert_true(rank_topk_credit(inf_row, 3, 0, 1) == 0.0 && rank_topk_credit(inf_row, 3, 0, 2) == 1.0);
    assert_true(rank_topk_credit(nan_true, 3, 0, 3) == 0.0);
    assert_true(rank_topk_credit(ninf_true, 3, 1, 3) == 0.0);
}

static void test_zeroshot_constant_scores_give_chance(void **state) {
    (void)state;
    enum { N = 37, C = 12 };
    float scores[N * C];
    int labels[N];
    for (int i = 0; i < N; i++) labels[i] = (i * 5) % C;
    for (int k = 0; k < N * C; k++) scores[k] = 0.25f;
    double top1, top5;
    zeroshot_accuracy(scores, labels, N, C, &top1, &top5);
    assert_true(fabs(top1 - 1.0 / C) < 1e-12 && fabs(top5 - 5.0 / C) < 1e-12);
    for (int k = 0; k < N * C; k++) scores[k] = NAN;
    zeroshot_accuracy(scores, labels, N, C, &top1, &top5);
    assert_true(top1 == 0.0 && top5 == 0.0);
    /* one NaN per row on a class other than the truth, the truth scored highest otherwise: the NaN
     * outranks it (top-1 miss), top-5 still holds it */
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) scores[i * C + c] = c == labels[i] ? 1.0f : (c == (labels[i] + 1) % C ? NAN : 0.0f);
    zeroshot_accuracy(scores, labels, N, C, &top1, &top5);
    assert_true(top1 == 0.0 && top5 == 1.0);
}

static void test_zeroshot_partial_ties_give_the_expected_value(void **state) {
    (void)state;
    enum { C = 8 };
    /* image 0: truth tied with 2 others at the top; image 1: 4 above, truth tied with 3 others for
     * places 5..8; image 2: truth alone at the top; image 3: truth last */
    const float scores[4 * C] = {
        5, 5, 5, 1, 1, 1, 1, 1,  /* label 0 */
        9, 9, 9, 9, 2, 2, 2, 2,  /* label 4 */
        0, 0, 0, 0, 0, 0, 0, 3,  /* label 7 */
        1, 1, 1, 1, 1, 1, 1, 0,  /* label 7 */
    };
    const int labels[4] = {0, 4, 7, 7};
    double top1, top5;
    zeroshot_accuracy(scores, labels, 4, C, &top1, &top5);
    double want1 = (1.0 / 3 + 0 + 1 + 0) / 4, want5 = (1 + 1.0 / 4 + 1 + 0) / 4;
    assert_true(fabs(top1 - want1) < 1e-12 && fabs(top5 - want5) < 1e-12);
    /* the probe's accuracy uses the same rule: identity features, logits = x, a 3-way tie at the top */
    float params[(C + 1) * C] = {0};
    for (int c = 0; c < C; c++) params[c * C + c] = 1.0f;
    assert_true(fabsf(probe_accuracy(params, scores, labels, 4, C, C) - (float)want1) < 1e-7f);
}

static void test_retrieval_constant_embeddings_give_chance(void **state) {
    (void)state;
    enum { N = 40, D = 4 };
    float x[N * D];
    for (int k = 0; k < N * D; k++) x[k] = 0.5f;
    RetrievalResult r = retrieval_eval(x, x, N, D);
    assert_true(fabsf(r.i2t_r1 - 1.0f / N) < 1e-7f && fabsf(r.t2i_r5 - 5.0f / N) < 1e-7f);
}

/* ---------------------------------------------------------------- geometry */

static void test_geometry_alignment_against_direct_and_hand_values(void **state) {
    (void)state;
    const int N = 200, D = 16;
    float *x = random_unit_rows(N, D, 4), *y = random_unit_rows(N, D, 40);
    double ref = 0.0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) ref += pow((double)x[i * D + k] - y[i * D + k], 2) / N;
    assert_true(fabs(geometry_alignment(x, y, N, D) - ref) <= 1e-6 * ref);
    assert_true(geometry_alignment(x, x, N, D) == 0.0f);
    for (long k = 0; k < (long)N * D; k++) y[k] = -x[k];
    assert_true(fabsf(geometry_alignment(x, y, N, D) - 4.0f) < 1e-5f);
    free(x), free(y);
}

static double direct_uniformity(const float *x, int N, int D) {
    double s = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            if (i == j) continue;
            double d2 = 0.0;
            for (int k = 0; k < D; k++) d2 += pow((double)x[i * D + k] - x[j * D + k], 2);
            s += exp(-2.0 * d2);
        }
    return log(s / ((double)N * (N - 1)));
}

static void test_geometry_uniformity_against_direct_and_hand_values(void **state) {
    (void)state;
    /* N = 1500 needs two row blocks (2^21 / 1500 = 1398 rows each) */
    const int N = 1500, D = 4;
    float *x = random_unit_rows(N, D, 5);
    double ref = direct_uniformity(x, N, D);
    assert_true(fabs(geometry_uniformity(x, N, D) - ref) <= 1e-4 * fabs(ref));
    free(x);

    const float antipodal[6] = {0.6f, 0.8f, 0.0f, -0.6f, -0.8f, 0.0f};
    assert_true(fabsf(geometry_uniformity(antipodal, 2, 3) - (-8.0f)) < 1e-5f);
    /* far-apart unnormalised points: exp(-2000) underflows in double, the log-sum-exp does not */
    const float far[4] = {0.0f, 0.0f, 30.0f, 10.0f}; /* d² = 1000 */
    assert_true(fabsf(geometry_uniformity(far, 2, 2) - (-2000.0f)) < 1e-3f);
    /* three points: two coincide (d² = 0), the third is at d² = 1 from both: pairs (ordered) give
     * 2·1 + 4·e^{-2} over 6 */
    const float three[6] = {0, 0, 0, 0, 1, 0};
    double want = log((2.0 + 4.0 * exp(-2.0)) / 6.0);
    assert_true(fabs(geometry_uniformity(three, 3, 2) - want) < 1e-6);
}

/* exp(entropy of s / Σs) */
static double erank_formula(const double *s, int k) {
    double sum = 0.0, h = 0.0;
    for (int i = 0; i < k; i++) sum += s[i];
    for (int i = 0; i < k; i++) h -= s[i] / sum * log(s[i] / sum);
    return exp(h);
}

/* x [N, D] = Σ_k s_k u_k v_kᵀ with u_k = Hadamard column k+1 / √N (zero mean, orthonormal) and v_k
 * orthonormal (Gram-Schmidt of random vectors), so the centred singular values are exactly s. */
static void build_known_singular_values(float *x, int N, int D, const double *s, int k, Rng *r) {
    double *v = malloc(sizeof(double) * k * D);
    for (int a = 0; a < k; a++) {
        for (int j = 0; j < D; j++) v[a * D + j] = rng_normal(r);
        for (int b = 0; b < a; b++) {
            double dp = 0.0;
            for (int j = 0; j < D; j++) dp += v[a * D + j] * v[b * D + j];
            for (int j = 0; j < D; j++) v[a * D + j] -= dp * v[b * D + j];
        }
        double nrm = 0.0;
        for (int j = 0; j < D; j++) nrm += v[a * D + j] * v[a * D + j];
        for (int j = 0; j < D; j++) v[a * D + j] /= sqrt(nrm);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            double acc = 0.0;
            for (int a = 0; a < k; a++) {
                double u = (__builtin_popcount((unsigned)(i & (a + 1))) & 1 ? -1.0 : 1.0) / sqrt((double)N);
                acc += s[a] * u * v[a * D + j];
            }
            x[i * D + j] = (float)acc;
        }
    free(v);
}

static void test_geometry_effective_rank_known_singular_values(void **state) {
    (void)state;
    const double s[6] = {5, 3, 2, 1, 0.5, 0.25};
    const double want = erank_formula(s, 6);
    Rng r;
    rng_init(&r, 6);
    /* N > D takes the D x D path, N < D the N x N one */
    const int shapes[2][2] = {{64, 20}, {16, 40}};
    for (int t = 0; t < 2; t++) {
        int N = shapes[t][0], D = shapes[t][1];
        float *x = malloc(sizeof(float) * N * D);
        build_known_singular_values(x, N, D, s, 6, &r);
        assert_true(fabs(geometry_effective_rank(x, N, D) - want) <= 1e-4 * want);
        free(x);
    }
}

static void test_geometry_effective_rank_isotropic_rank_one_and_constant(void **state) {
    (void)state;
    const int N = 4000, D = 32;
    Rng r;
    rng_init(&r, 8);
    float *x = malloc(sizeof(float) * N * D);
    rng_fill_normal(&r, x, (long)N * D, 1.0f);
    float er = geometry_effective_rank(x, N, D);
    assert_true(er > 0.97f * D && er <= D);

    /* rank one plus an offset the centring must remove */
    float v[32];
    rng_fill_normal(&r, v, D, 1.0f);
    for (int i = 0; i < N; i++) {
        float a = rng_normal(&r);
        for (int k = 0; k < D; k++) x[i * D + k] = a * v[k] + 3.0f + k;
    }
    assert_true(fabsf(geometry_effective_rank(x, N, D) - 1.0f) < 1e-3f);

    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) x[i * D + k] = (float)k;
    assert_true(geometry_effective_rank(x, N, D) == 0.0f);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_loss_matches_naive_and_gradient_matches_fd),
        cmocka_unit_test(test_probe_train_reaches_a_stationary_point),
        cmocka_unit_test(test_probe_train_is_fast_on_correlated_features),
        cmocka_unit_test(test_probe_train_without_l2_on_a_constant_feature),
        cmocka_unit_test(test_probe_standardize_uses_train_statistics),
        cmocka_unit_test(test_probe_separable_clusters_reach_full_accuracy),
        cmocka_unit_test(test_probe_random_labels_stay_at_chance),
        cmocka_unit_test(test_probe_lambda_is_the_validation_argmax),
        cmocka_unit_test(test_probe_lambda_grows_for_small_noisy_training_sets),
        cmocka_unit_test(test_probe_restandardize_keeps_the_function),
        cmocka_unit_test(test_probe_path_reaches_the_cold_optimum),
        cmocka_unit_test(test_probe_refit_from_the_chosen_solution_matches_a_cold_refit),
        cmocka_unit_test(test_retrieval_identical_pairs_are_perfect),
        cmocka_unit_test(test_retrieval_hand_ranks_with_ties),
        cmocka_unit_test(test_retrieval_matches_naive_for_every_block_size),
        cmocka_unit_test(test_retrieval_nan_counts_as_a_miss),
        cmocka_unit_test(test_rank_credit_hand_values),
        cmocka_unit_test(test_zeroshot_constant_scores_give_chance),
        cmocka_unit_test(test_zeroshot_partial_ties_give_the_expected_value),
        cmocka_unit_test(test_retrieval_constant_embeddings_give_chance),
        cmocka_unit_test(test_geometry_alignment_against_direct_and_hand_values),
        cmocka_unit_test(test_geometry_uniformity_against_direct_and_hand_values),
        cmocka_unit_test(test_geometry_effective_rank_known_singular_values),
        cmocka_unit_test(test_geometry_effective_rank_isotropic_rank_one_and_constant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
