/* probe.c — linear probe: multinomial logistic regression with L2 on frozen features, fitted by
 * full-batch L-BFGS (as CLIP's sklearn probe), λ chosen on a validation split.
 *
 * Protocol: standardise with train statistics; fit the λ grid on train as a regularisation path,
 * largest λ first (from zero), each smaller λ warm-started from the previous solution, and score
 * each on val; keep the val-argmax (ties to the larger λ); refit on train+val (restandardised with
 * train+val statistics) from the chosen λ's solution mapped through the new standardisation
 * (probe_restandardize: the same function of the raw features), and report test accuracy.
 *
 * Why warm starts and a preconditioner do not change the estimate: every fit is strictly convex
 * (in W by the L2 term; the bias's one flat direction, a shift of every class, changes no
 * prediction), so where L-BFGS starts and which metric it steps in change the path to the one
 * optimum, not the optimum it stops at within its stopping rule (tests/test_eval.c checks a path
 * against fits from zero). What they cost (tests/bench/bench_probe.c, the projection quick run's
 * features, d = 128, 10 classes): fits from zero took 540 iterations over the grid and refit, 200
 * (the cap) at λ = 1e-4 without converging; pooled features are strongly correlated, so the small-λ
 * losses are ill-conditioned and the iterations went to their slow directions, which a warm start
 * does not shorten (the path alone: 493). The L-BFGS initial inverse Hessian γ (Σ + Cλ I)⁻¹ on W
 * (precondition_fit) removes that: 211 iterations from zero, every λ converged, 180 on the path.
 * The path's order and starts are fixed, so a result is bitwise reproducible for a given input
 * (fit_probes runs each fit single-threaded, so whatever the thread count).
 *
 * Deliberately left out: minibatch/stochastic training, class weights, a regularised bias,
 * cross-validation folds, a strong-Wolfe line search (backtracking Armijo is enough for this
 * smooth convex loss), carrying the L-BFGS pairs from one λ to the next.
 */
#include "eval/probe.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "eval/rank.h"
#include "ops/ops.h" /* OPS_PAR_MIN: the shared OpenMP fork threshold */

const float PROBE_LAMBDAS[PROBE_N_LAMBDAS] = {1e-4f, 1e-3f, 1e-2f, 1e-1f, 1.0f};

/* L-BFGS memory and stopping rules. FTOL is a relative decrease per iteration: the loss is computed
 * from fp32 logits, so changes much below ~1e-7 relative are round-off, not progress. */
#define LBFGS_M 10
#define LBFGS_GTOL 1e-5
#define LBFGS_FTOL 1e-7
#define ARMIJO_C1 1e-4
#define MAX_BACKTRACKS 40

long probe_n_params(int d, int n_classes) { return (long)(d + 1) * n_classes; }

static void check_labels(const int *y, int n, int n_classes) {
    for (int i = 0; i < n; i++) CHECK(y[i] >= 0 && y[i] < n_classes, "label %d of row %d not in [0, %d)", y[i], i, n_classes);
}

void probe_standardize_fit(float *mean, float *inv_std, const float *x, int n, int d) {
    CHECK(n > 0 && d > 0, "n=%d d=%d", n, d);
    double *acc = callocCheck((size_t)d, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) acc[j] += x[(long)i * d + j];
    for (int j = 0; j < d; j++) mean[j] = (float)(acc[j] / n);
    memset(acc, 0, (size_t)d * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double c = (double)x[(long)i * d + j] - mean[j];
            acc[j] += c * c;
        }
    /* Features are embeddings of scale ~1e-2..1e1; a std below 1e-6 is a constant feature plus
     * round-off, which scaling up would turn into noise. */
    for (int j = 0; j < d; j++) {
        double sd = sqrt(acc[j] / n);
        inv_std[j] = sd > 1e-6 ? (float)(1.0 / sd) : 1.0f;
    }
    free(acc);
}

void probe_standardize_apply(float *out, const float *x, const float *mean, const float *inv_std, int n, int d) {
    for (long i = 0; i < (long)n; i++)
        for (int j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - mean[j]) * inv_std[j];
}

/* logits [n, C] = x [n, d] · W [d, C] + b [C] */
static void probe_logits(float *logits, const float *params, const float *x, int n, int d, int C) {
    const float *b = params + (long)d * C;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, d, 1.0f, x, d, params, C, 0.0f, logits, C);
    for (long i = 0; i < (long)n; i++)
        for (int c = 0; c < C; c++) logits[i * C + c] += b[c];
}

double probe_loss_grad(float *grad, float *logits, double *row_loss, const float *params, const float *x,
                       const int *y, int n, int d, int C, float lambda) {
    probe_logits(logits, params, x, n, d, C);
    const float inv_n = 1.0f / (float)n;
    /* Row-parallel softmax-xent; each row's loss goes to its own slot so the sum below has a fixed
     * order and the loss is bitwise reproducible (the line search compares losses). */
#pragma omp parallel for schedule(static) if ((long)n * C >= OPS_PAR_MIN)
    for (int i = 0; i < n; i++) {
        float *z = logits + (long)i * C;
        float zmax = z[0];
        for (int c = 1; c < C; c++) zmax = z[c] > zmax ? z[c] : zmax;
        /* one exp per logit (they were a third of a fit's time): kept in z for the gradient */
        const float zy = z[y[i]];
        double sum = 0.0;
        for (int c = 0; c < C; c++) {
            double e = exp((double)(z[c] - zmax));
            sum += e;
            if (grad) z[c] = (float)e;
        }
        row_loss[i] = zmax + log(sum) - zy;
        if (grad) {
            const double scale = inv_n / sum;
            for (int c = 0; c < C; c++) z[c] = (float)(z[c] * scale);
            z[y[i]] -= inv_n;
        }
    }
    double loss = 0.0, reg = 0.0;
    for (int i = 0; i < n; i++) loss += row_loss[i];
    const long dC = (long)d * C;
    for (long k = 0; k < dC; k++) reg += (double)params[k] * params[k];
    if (grad) {
        /* logits now hold dL/dlogits = (softmax - onehot)/n */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, C, n, 1.0f, x, d, logits, C, 1.0f, grad, C);
        for (long k = 0; k < dC; k++) grad[k] += lambda * params[k];
        float *gb = grad + dC;
        for (long i = 0; i < (long)n; i++)
            for (int c = 0; c < C; c++) gb[c] += logits[i * C + c];
    }
    return loss / n + 0.5 * lambda * reg;
}

static double dot(const float *a, const float *b, long n) {
    double s = 0.0;
    for (long k = 0; k < n; k++) s += (double)a[k] * b[k];
    return s;
}

typedef struct {
    const float *x;
    const int *y;
    int n, d, C;
    float lambda;
    float *logits;    /* [n, C] */
    double *row_loss; /* [n] */
} Objective;

/* g [P] is overwritten with the gradient at p [P]. */
static double objective_eval(Objective *o, float *g, const float *p) {
    memset(g, 0, (size_t)probe_n_params(o->d, o->C) * sizeof(float));
    return probe_loss_grad(g, o->logits, o->row_loss, p, o->x, o->y, o->n, o->d, o->C, o->lambda);
}

/* L-BFGS state: a ring buffer of the last LBFGS_M (s, y) pairs, the preconditioner, and the
 * scratch of one iteration. */
typedef struct {
    long P;
    int d, C;
    float *S, *Y;  /* [LBFGS_M, P]: steps and gradient changes */
    double rho[LBFGS_M], alpha[LBFGS_M];
    int n_pairs, newest;
    float *g, *g_new, *p_new, *dir, *mv; /* [P] each */
    float *M; /* [d, d]: the initial inverse Hessian's W block, (Σ + μ I)⁻¹ (precondition_fit) */
} Lbfgs;

static void lbfgs_init(Lbfgs *q, int d, int C) {
    memset(q, 0, sizeof *q);
    q->P = probe_n_params(d, C);
    q->d = d, q->C = C;
    q->newest = -1;
    const size_t P = (size_t)q->P;
    q->S = mallocCheck((size_t)LBFGS_M * P * sizeof(float));
    q->Y = mallocCheck((size_t)LBFGS_M * P * sizeof(float));
    q->g = mallocCheck(P * sizeof(float));
    q->g_new = mallocCheck(P * sizeof(float));
    q->p_new = mallocCheck(P * sizeof(float));
    q->dir = mallocCheck(P * sizeof(float));
    q->mv = mallocCheck(P * sizeof(float));
    q->M = mallocCheck((size_t)d * d * sizeof(float));
}

static void lbfgs_free(Lbfgs *q) {
    free(q->S), free(q->Y), free(q->g), free(q->g_new), free(q->p_new), free(q->dir), free(q->mv), free(q->M);
}

/* LAPACK Cholesky factor and inverse from it. OpenBLAS exports them, but Debian ships no
 * LAPACKE/lapack.h with this stack (gfortran ABI: a trailing hidden length of the char arg). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);

/* q->M = (Σ + μ I)⁻¹ with Σ = xᵀx / n the second moments of the standardised features x [n, d].
 * The loss's Hessian in W is about Σ ⊗ S + λ I, S the softmax's curvature (I/C - 11ᵀ/C² at the
 * zero start), so this is its inverse up to scale (which the L-BFGS scaling supplies) for μ = C λ:
 * correlated features, the slow directions of small λ, no longer slow the fit (on the bench's
 * features μ from 3λ to 100λ took within 5% as many iterations, μ = λ 9-15% more; C = 10 there).
 * If Σ + μ I is singular to working precision (λ = 0 with a constant or duplicated feature),
 * M = I: plain L-BFGS. */
static void precondition_fit(Lbfgs *q, const float *x, int n, float lambda) {
    const int d = q->d;
    float *sf = q->M;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0f / (float)n, x, d, 0.0f, sf, d);
    double *a = mallocCheck((size_t)d * d * sizeof(double));
    for (int i = 0; i < d; i++) /* row-major upper, read by LAPACK as column-major lower */
        for (int j = i; j < d; j++) a[(long)i * d + j] = sf[(long)i * d + j];
    for (int j = 0; j < d; j++) a[(long)j * d + j] += (double)q->C * lambda;
    int info = 0;
    dpotrf_("L", &d, a, &d, &info, 1);
    if (!info) dpotri_("L", &d, a, &d, &info, 1);
    for (int i = 0; i < d; i++) /* column-major lower (i >= j) at a[j*d + i] = row-major upper */
        for (int j = 0; j <= i; j++)
            sf[(long)j * d + i] = sf[(long)i * d + j] = info ? (float)(i == j) : (float)a[(long)j * d + i];
    free(a);
}

/* q->mv = M v on the W block (each column of W [d, C] mixed by M), the bias block unchanged. */
static void precondition(Lbfgs *q, const float *v) {
    const long dC = (long)q->d * q->C;
    cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, q->d, q->C, 1.0f, q->M, q->d, v, q->C, 0.0f, q->mv, q->C);
    memcpy(q->mv + dC, v + dC, (size_t)q->C * sizeof(float));
}

/* q->dir = -H g by the two-loop recursion; falls back to the normalised -g (and forgets the
 * memory) when round-off has lost the descent property. Returns gᵀdir (< 0). */
static double lbfgs_direction(Lbfgs *q) {
    const long P = q->P;
    float *dir = q->dir;
    for (long k = 0; k < P; k++) dir[k] = -q->g[k];
    for (int j = 0; j < q->n_pairs; j++) {
        int s = (q->newest - j + LBFGS_M) % LBFGS_M;
        q->alpha[s] = q->rho[s] * dot(q->S + s * P, dir, P);
        for (long k = 0; k < P; k++) dir[k] -= (float)q->alpha[s] * q->Y[s * P + k];
    }
    /* initial inverse Hessian γ M, γ = sᵀy / yᵀMy of the newest pair; before any pair, a
     * unit-length step */
    double gamma;
    if (q->n_pairs) {
        const float *y = q->Y + q->newest * P;
        precondition(q, y);
        gamma = 1.0 / (q->rho[q->newest] * dot(y, q->mv, P));
        precondition(q, dir);
    } else {
        precondition(q, dir);
        gamma = 1.0 / sqrt(dot(q->mv, q->mv, P));
    }
    for (long k = 0; k < P; k++) dir[k] = (float)gamma * q->mv[k];
    for (int j = q->n_pairs - 1; j >= 0; j--) {
        int s = (q->newest - j + LBFGS_M) % LBFGS_M;
        double beta = q->rho[s] * dot(q->Y + s * P, dir, P);
        for (long k = 0; k < P; k++) dir[k] += (float)(q->alpha[s] - beta) * q->S[s * P + k];
    }
    double gd = dot(q->g, dir, P);
    if (!(gd < 0.0)) {
        q->n_pairs = 0;
        double inv_norm = 1.0 / sqrt(dot(q->g, q->g, P));
        for (long k = 0; k < P; k++) dir[k] = (float)(-q->g[k] * inv_norm);
        gd = dot(q->g, dir, P);
    }
    return gd;
}

/* Backtracking Armijo search from the quasi-Newton step t = 1: q->p_new and q->g_new at the
 * accepted point, *f_new its loss. Returns 0 if no decrease is representable in fp32. */
static int line_search(Objective *o, Lbfgs *q, const float *params, double f, double gd, double *f_new) {
    double t = 1.0;
    for (int ls = 0; ls < MAX_BACKTRACKS; ls++, t *= 0.5) {
        for (long k = 0; k < q->P; k++) q->p_new[k] = params[k] + (float)t * q->dir[k];
        *f_new = objective_eval(o, q->g_new, q->p_new);
        if (*f_new <= f + ARMIJO_C1 * t * gd) return 1;
    }
    return 0;
}

/* Records the pair (p_new - params, g_new - g) unless it would break positive definiteness, then
 * moves to the new point (params = p_new, g = g_new). */
static void lbfgs_step(Lbfgs *q, float *params) {
    const long P = q->P;
    int s = (q->newest + 1) % LBFGS_M;
    for (long k = 0; k < P; k++) {
        q->S[s * P + k] = q->p_new[k] - params[k];
        q->Y[s * P + k] = q->g_new[k] - q->g[k];
    }
    double sy = dot(q->S + s * P, q->Y + s * P, P);
    if (sy > 1e-12 * dot(q->Y + s * P, q->Y + s * P, P) && sy > 0.0) {
        q->rho[s] = 1.0 / sy;
        q->newest = s;
        q->n_pairs = q->n_pairs < LBFGS_M ? q->n_pairs + 1 : LBFGS_M;
    }
    memcpy(params, q->p_new, (size_t)P * sizeof(float));
    float *tmp = q->g;
    q->g = q->g_new;
    q->g_new = tmp;
}

static double max_abs(const float *g, long P) {
    double m = 0.0;
    for (long k = 0; k < P; k++) m = fmax(m, fabs(g[k]));
    return m;
}

int probe_train(float *params, const float *x, const int *y, int n, int d, int n_classes, float lambda,
                int max_iter) {
    CHECK(n > 0 && d > 0 && n_classes > 0 && lambda >= 0.0f && max_iter >= 0, "n=%d d=%d classes=%d lambda=%g max_iter=%d",
          n, d, n_classes, (double)lambda, max_iter);
    check_labels(y, n, n_classes);
    const long P = probe_n_params(d, n_classes);
    Objective o = {x, y, n, d, n_classes, lambda, mallocCheck((size_t)n * n_classes * sizeof(float)),
                   mallocCheck((size_t)n * sizeof(double))};
    Lbfgs q;
    lbfgs_init(&q, d, n_classes);
    precondition_fit(&q, x, n, lambda);
    double f = objective_eval(&o, q.g, params), f_new;
    int it = 0;
    for (; it < max_iter && max_abs(q.g, P) > LBFGS_GTOL; it++) {
        double gd = lbfgs_direction(&q);
        if (!line_search(&o, &q, params, f, gd, &f_new)) break; /* converged as far as fp32 goes */
        lbfgs_step(&q, params);
        double f_prev = f;
        f = f_new;
        if (f_prev - f <= LBFGS_FTOL * fmax(1.0, fabs(f))) {
            it++;
            break;
        }
    }
    free(o.logits);
    free(o.row_loss);
    lbfgs_free(&q);
    return it;
}

float probe_accuracy(const float *params, const float *x, const int *y, int n, int d, int n_classes) {
    CHECK(n > 0 && d > 0 && n_classes > 0, "n=%d d=%d classes=%d", n, d, n_classes);
    check_labels(y, n, n_classes);
    float *logits = mallocCheck((size_t)n * n_classes * sizeof(float));
    probe_logits(logits, params, x, n, d, n_classes);
    double correct = 0; /* argmax ties and non-finite logits by the rule of eval/rank.h */
    for (long i = 0; i < (long)n; i++) correct += rank_topk_credit(logits + i * n_classes, n_classes, y[i], 1);
    free(logits);
    return (float)(correct / n);
}

void probe_restandardize(float *params, const float *mean_from, const float *inv_std_from, const float *mean_to,
                         const float *inv_std_to, int d, int n_classes) {
    /* (x - m1) s1 = (x - m2) s2 · (s1 / s2) + (m2 - m1) s1: the rows of W scale by s1/s2, and the
     * constant term (m2 - m1) s1 · W moves into the bias. */
    float *b = params + (long)d * n_classes;
    double *shift = callocCheck((size_t)n_classes, sizeof(double));
    for (int j = 0; j < d; j++) {
        const double offset = ((double)mean_to[j] - mean_from[j]) * inv_std_from[j];
        const double scale = (double)inv_std_from[j] / inv_std_to[j];
        float *w = params + (long)j * n_classes;
        for (int c = 0; c < n_classes; c++) {
            shift[c] += offset * w[c];
            w[c] = (float)(w[c] * scale);
        }
    }
    for (int c = 0; c < n_classes; c++) b[c] = (float)(b[c] + shift[c]);
    free(shift);
}

/* The λ path on standardised train xs [n_train, d] scored on val_s [n_val, d]: r->lambda, r->val_acc,
 * r->iters; best [P] gets the chosen λ's parameters. params [P] is scratch. */
static void fit_lambda_path(ProbeResult *r, float *best, float *params, const float *xs, const int *train_y,
                            int n_train, const float *val_s, const int *val_y, int n_val, int d, int n_classes) {
    const long P = probe_n_params(d, n_classes);
    memset(params, 0, (size_t)P * sizeof(float));
    r->val_acc = -1.0f;
    for (int l = PROBE_N_LAMBDAS - 1; l >= 0; l--) { /* largest λ first: each warm-starts the next */
        r->iters[l] = probe_train(params, xs, train_y, n_train, d, n_classes, PROBE_LAMBDAS[l], PROBE_MAX_ITER);
        float acc = probe_accuracy(params, val_s, val_y, n_val, d, n_classes);
        if (acc > r->val_acc) { /* descending: a tie keeps the larger λ already held */
            r->val_acc = acc;
            r->lambda = PROBE_LAMBDAS[l];
            memcpy(best, params, (size_t)P * sizeof(float));
        }
    }
}

ProbeResult probe_fit_eval(const float *train_x, const int *train_y, int n_train, const float *val_x,
                           const int *val_y, int n_val, const float *test_x, const int *test_y, int n_test,
                           int d, int n_classes) {
    CHECK(n_train > 0 && n_val > 0 && n_test > 0 && d > 0 && n_classes > 0, "n_train=%d n_val=%d n_test=%d d=%d classes=%d",
          n_train, n_val, n_test, d, n_classes);
    const long P = probe_n_params(d, n_classes);
    const long n_all = (long)n_train + n_val;
    CHECK(n_all <= 2147483647L, "train+val rows overflow int");
    float *mean = mallocCheck((size_t)d * sizeof(float)), *inv_std = mallocCheck((size_t)d * sizeof(float));
    float *mean_all = mallocCheck((size_t)d * sizeof(float)), *inv_std_all = mallocCheck((size_t)d * sizeof(float));
    float *xs = mallocCheck((size_t)n_all * d * sizeof(float)); /* standardised train rows, then val rows */
    float *test_s = mallocCheck((size_t)n_test * d * sizeof(float));
    int *y_all = mallocCheck((size_t)n_all * sizeof(int));
    float *params = mallocCheck((size_t)P * sizeof(float)), *scratch = mallocCheck((size_t)P * sizeof(float));
    float *val_s = xs + (long)n_train * d;

    probe_standardize_fit(mean, inv_std, train_x, n_train, d);
    probe_standardize_apply(xs, train_x, mean, inv_std, n_train, d);
    probe_standardize_apply(val_s, val_x, mean, inv_std, n_val, d);
    ProbeResult r = {0};
    fit_lambda_path(&r, params, scratch, xs, train_y, n_train, val_s, val_y, n_val, d, n_classes);

    memcpy(xs, train_x, (size_t)n_train * d * sizeof(float));
    memcpy(val_s, val_x, (size_t)n_val * d * sizeof(float));
    memcpy(y_all, train_y, (size_t)n_train * sizeof(int));
    memcpy(y_all + n_train, val_y, (size_t)n_val * sizeof(int));
    probe_standardize_fit(mean_all, inv_std_all, xs, (int)n_all, d);
    probe_standardize_apply(xs, xs, mean_all, inv_std_all, (int)n_all, d);
    probe_standardize_apply(test_s, test_x, mean_all, inv_std_all, n_test, d);
    probe_restandardize(params, mean, inv_std, mean_all, inv_std_all, d, n_classes);
    r.refit_iters = probe_train(params, xs, y_all, (int)n_all, d, n_classes, r.lambda, PROBE_MAX_ITER);
    r.test_acc = probe_accuracy(params, test_s, test_y, n_test, d, n_classes);

    free(mean), free(inv_std), free(mean_all), free(inv_std_all);
    free(xs), free(test_s), free(y_all), free(params), free(scratch);
    return r;
}
