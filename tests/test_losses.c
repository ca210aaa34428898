/* test_losses.c — the contrastive losses: values against hand-computed cases and a naive double
 * reference, gradients (I, T, every scalar) against central finite differences, dense = tiled,
 * no clamp in the forward and the clamp of the parameter t, fixed temperature, one-sided, accumulation, the MPI local-loss split
 * (shares sum to the whole), and bad configurations.
 *
 * Gradient checks are done twice: per coordinate against central differences of the double
 * reference (tight: the reference is itself checked equal to the float forward at the same point),
 * and along a random direction against central differences of the float implementation itself.
 */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/rng.h"

/* The small-loss batch: images share a common direction of this weight (so negatives come close),
 * texts are the images plus this much noise, at logit scale 100. */
#define SMALL_LOSS_NOISE 0.02f
#define SMALL_LOSS_SCALE 100.0f
#define SMALL_LOSS_SHARED 1.3f
#include "losses/losses.h"

/* ---------------------------------------------------------------------------------------------
 * Naive double reference, straight from the definitions in losses.h.
 */

static double dot_d(const double *a, const double *b, int D) {
    double s = 0.0;
    for (int k = 0; k < D; k++) s += a[k] * b[k];
    return s;
}

/* log sum_k exp(v[k]) over k != skip (skip < 0: none). */
static double lse_d(const double *v, int n, int skip) {
    double m = -INFINITY, s = 0.0;
    for (int k = 0; k < n; k++)
        if (k != skip && v[k] > m) m = v[k];
    for (int k = 0; k < n; k++)
        if (k != skip) s += exp(v[k] - m);
    return m + log(s);
}

static double softplus_d(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* img, txt [N, D]; scalars as in losses.h. */
static double ref_loss(const LossConfig *cfg, const double *img, const double *txt,
                       const double *scalars, int N, int D) {
    if (cfg->group_size > 0 && cfg->group_size < N) { /* the mean of the groups' losses */
        LossConfig whole = *cfg;
        whole.group_size = 0;
        int g = cfg->group_size;
        double sum = 0.0;
        for (int g0 = 0; g0 < N; g0 += g) sum += ref_loss(&whole, img + g0 * D, txt + g0 * D, scalars, g, D);
        return sum * g / N;
    }
    double *L = malloc(sizeof(double) * N * N), *col = malloc(sizeof(double) * N);
    double loss = 0.0;
    if (cfg->kind == LOSS_INFONCE || cfg->kind == LOSS_DCL) {
        double s = exp(scalars[0]);
        int skip_diag = cfg->kind == LOSS_DCL;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) L[i * N + j] = s * dot_d(img + i * D, txt + j * D, D);
        double rows = 0.0, cols = 0.0;
        for (int i = 0; i < N; i++) rows += lse_d(L + i * N, N, skip_diag ? i : -1) - L[i * N + i];
        for (int j = 0; j < N; j++) {
            for (int i = 0; i < N; i++) col[i] = L[i * N + j];
            cols += lse_d(col, N, skip_diag ? j : -1) - L[j * N + j];
        }
        loss = cfg->one_sided ? rows / N : 0.5 * (rows + cols) / N;
    } else if (cfg->kind == LOSS_SIGLIP) {
        double s = exp(scalars[0]), b = scalars[1];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double z = i == j ? 1.0 : -1.0;
                loss += softplus_d(-z * (s * dot_d(img + i * D, txt + j * D, D) + b));
            }
        loss /= N;
    } else {
        for (int i = 0; i < N; i++)
            for (int k = 0; k < D; k++) {
                double d = img[i * D + k] - txt[i * D + k];
                loss += d * d / N;
            }
        const double *sides[2] = {img, txt};
        for (int side = 0; side < 2; side++) {
            const double *x = sides[side];
            double sum = 0.0;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    if (i == j) continue;
                    double d2 = 0.0;
                    for (int k = 0; k < D; k++) d2 += (x[i * D + k] - x[j * D + k]) * (x[i * D + k] - x[j * D + k]);
                    sum += exp(-2.0 * d2);
                }
            loss += cfg->lambda * log(sum / ((double)N * (N - 1)));
        }
    }
    free(L);
    free(col);
    return loss;
}

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 */

typedef struct {
    int N, D, ns;
    float *img, *txt, scalars[2];
    float *dimg, *dtxt, dscalars[2];
    float *ws;
    double *img_d, *txt_d, scalars_d[2];
} Case;

/* Random embeddings (unit rows if `unit`, else N(0, 0.5^2) entries: the math must not rely on
 * normalisation), scalars at their init plus `jitter` * N(0,1). */
static Case case_make(const LossConfig *cfg, int N, int D, uint64_t seed, int unit, float jitter) {
    Case c = {.N = N, .D = D, .ns = loss_n_scalars(cfg->kind)};
    Rng r;
    rng_init(&r, seed);
    c.img = malloc(sizeof(float) * N * D);
    c.txt = malloc(sizeof(float) * N * D);
    c.dimg = calloc((size_t)N * D, sizeof(float));
    c.dtxt = calloc((size_t)N * D, sizeof(float));
    c.img_d = malloc(sizeof(double) * N * D);
    c.txt_d = malloc(sizeof(double) * N * D);
    rng_fill_normal(&r, c.img, (long)N * D, 0.5f);
    rng_fill_normal(&r, c.txt, (long)N * D, 0.5f);
    if (unit) {
        float *m[2] = {c.img, c.txt};
        for (int side = 0; side < 2; side++)
            for (int i = 0; i < N; i++) {
                double n2 = 0.0;
                for (int k = 0; k < D; k++) n2 += (double)m[side][i * D + k] * m[side][i * D + k];
                for (int k = 0; k < D; k++) m[side][i * D + k] = (float)(m[side][i * D + k] / sqrt(n2));
            }
    }
    loss_init_scalars(cfg, c.scalars);
    for (int k = 0; k < c.ns; k++) c.scalars[k] += jitter * rng_normal(&r);
    for (int k = 0; k < N * D; k++) c.img_d[k] = c.img[k], c.txt_d[k] = c.txt[k];
    for (int k = 0; k < c.ns; k++) c.scalars_d[k] = c.scalars[k];
    c.ws = malloc(sizeof(float) * loss_workspace_floats(cfg, N, D));
    return c;
}

static void case_free(Case *c) {
    free(c->img);
    free(c->txt);
    free(c->dimg);
    free(c->dtxt);
    free(c->img_d);
    free(c->txt_d);
    free(c->ws);
}

static float case_run(const LossConfig *cfg, Case *c) {
    memset(c->dimg, 0, sizeof(float) * c->N * c->D);
    memset(c->dtxt, 0, sizeof(float) * c->N * c->D);
    c->dscalars[0] = c->dscalars[1] = 0.0f;
    return loss_forward_backward(cfg, c->dimg, c->dtxt, c->dscalars, c->img, c->txt, c->scalars,
                                 c->N, c->D, c->ws);
}

static float max_abs(const float *x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* Central difference of the double reference at coordinate p (h small: the reference is smooth
 * and exact to ~1e-16, so the truncation error h^2 f''' dominates and is ~1e-10 here). */
static double fd_ref(const LossConfig *cfg, Case *c, double *p) {
    const double h = 1e-5, keep = *p;
    *p = keep + h;
    double fp = ref_loss(cfg, c->img_d, c->txt_d, c->scalars_d, c->N, c->D);
    *p = keep - h;
    double fm = ref_loss(cfg, c->img_d, c->txt_d, c->scalars_d, c->N, c->D);
    *p = keep;
    return (fp - fm) / (2.0 * h);
}

/* Every analytic gradient within 1e-4 of the largest gradient of its array (float round-off of
 * terms of size s ~ 14-100) plus 1e-6. */
static void check_grad_array(const LossConfig *cfg, Case *c, const float *g, double *x, int n,
                             const char *what) {
    float scale = max_abs(g, n);
    for (int k = 0; k < n; k++) {
        double fd = fd_ref(cfg, c, &x[k]);
        double tol = 1e-4 * scale + 1e-6;
        if (fabs(g[k] - fd) > tol)
            fail_msg("%s %s N=%d D=%d tile=%d one_sided=%d: d%s[%d] analytic %.8g vs fd %.8g",
                     loss_registry_name(cfg->kind), cfg->learn_temperature ? "learned" : "fixed", c->N,
                     c->D, cfg->tile, cfg->one_sided, what, k, g[k], fd);
    }
}

/* The implementation's own loss along direction v: (f(x + hv) - f(x - hv)) / 2h vs <g, v>. */
static void check_directional(const LossConfig *cfg, Case *c, uint64_t seed) {
    int n = c->N * c->D;
    float *v = malloc(sizeof(float) * (2 * n + 2)), *x0 = malloc(sizeof(float) * (2 * n + 2));
    Rng r;
    rng_init(&r, seed);
    rng_fill_normal(&r, v, 2 * n + 2, 1.0f);
    /* the scalars that move: all, or with a fixed temperature only those after t */
    int first_scalar = cfg->learn_temperature ? 0 : 1;
    int n_moving = c->ns > first_scalar ? c->ns - first_scalar : 0;
    double norm = 0.0, gv = 0.0;
    for (int k = 0; k < 2 * n + n_moving; k++) norm += (double)v[k] * v[k];
    for (int k = 0; k < 2 * n + 2; k++) v[k] = (float)(v[k] / sqrt(norm));
    memcpy(x0, c->img, sizeof(float) * n);
    memcpy(x0 + n, c->txt, sizeof(float) * n);
    memcpy(x0 + 2 * n, c->scalars, sizeof(float) * 2);
    case_run(cfg, c);
    float *sc_dir = v + 2 * n;
    for (int k = 0; k < n; k++) gv += (double)c->dimg[k] * v[k] + (double)c->dtxt[k] * v[n + k];
    for (int k = first_scalar; k < c->ns; k++) gv += (double)c->dscalars[k] * sc_dir[k - first_scalar];
    const float h = 1e-3f;
    float f[2];
    for (int sgn = 0; sgn < 2; sgn++) {
        float step = sgn ? -h : h;
        for (int k = 0; k < n; k++) c->img[k] = x0[k] + step * v[k], c->txt[k] = x0[n + k] + step * v[n + k];
        for (int k = first_scalar; k < c->ns; k++) c->scalars[k] = x0[2 * n + k] + step * sc_dir[k - first_scalar];
        f[sgn] = loss_forward_backward(cfg, NULL, NULL, NULL, c->img, c->txt, c->scalars, c->N,
                                       c->D, c->ws);
    }
    memcpy(c->img, x0, sizeof(float) * n);
    memcpy(c->txt, x0 + n, sizeof(float) * n);
    memcpy(c->scalars, x0 + 2 * n, sizeof(float) * 2);
    double fd = ((double)f[0] - f[1]) / (2.0 * h);
    /* fp32 loss round-off ~1e-6 over 2h = 2e-3 gives ~1e-3 of noise */
    if (fabs(fd - gv) > 3e-3 + 1e-2 * fabs(gv))
        fail_msg("%s N=%d D=%d tile=%d: directional derivative %.6g vs fd %.6g",
                 loss_registry_name(cfg->kind), c->N, c->D, cfg->tile, gv, fd);
    free(v);
    free(x0);
}

/* Value against the reference, then all gradients against finite differences; scalars NULL:
 * the loss's init values plus jitter. */
static void check_case(const LossConfig *cfg, int N, int D, uint64_t seed, int unit, float jitter,
                       const float *scalars) {
    Case c = case_make(cfg, N, D, seed, unit, jitter);
    for (int k = 0; scalars && k < c.ns; k++) c.scalars[k] = scalars[k], c.scalars_d[k] = scalars[k];
    c.dscalars[0] = c.dscalars[1] = 0.0f;
    float loss = case_run(cfg, &c);
    double ref = ref_loss(cfg, c.img_d, c.txt_d, c.scalars_d, N, D);
    if (fabs(loss - ref) > 1e-5 * fabs(ref) + 1e-6)
        fail_msg("%s N=%d D=%d tile=%d: loss %.8g vs reference %.8g", loss_registry_name(cfg->kind), N,
                 D, cfg->tile, loss, ref);
    check_grad_array(cfg, &c, c.dimg, c.img_d, N * D, "I");
    check_grad_array(cfg, &c, c.dtxt, c.txt_d, N * D, "T");
    for (int k = 0; k < c.ns; k++) {
        int learned = k > 0 || cfg->learn_temperature;
        if (!learned) {
            assert_true(c.dscalars[k] == 0.0f); /* fixed temperature: untouched */
            continue;
        }
        double fd = fd_ref(cfg, &c, &c.scalars_d[k]);
        if (fabs(c.dscalars[k] - fd) > 1e-4 * fabs(fd) + 1e-5)
            fail_msg("%s N=%d D=%d tile=%d: dscalar[%d] analytic %.8g vs fd %.8g",
                     loss_registry_name(cfg->kind), N, D, cfg->tile, k, c.dscalars[k], fd);
    }
    check_directional(cfg, &c, seed + 1000);
    case_free(&c);
}

static LossConfig config(int kind, int one_sided, int learn, int tile) {
    LossConfig cfg = loss_default_config(kind);
    cfg.one_sided = one_sided;
    cfg.learn_temperature = learn;
    cfg.tile = tile;
    return cfg;
}

/* N in {3, 5, 17} x D in {1, 3, 8} x dense/tiled (tile 2: every N is a non-multiple). */
static void check_all_shapes(int kind, int one_sided, int learn) {
    static const int Ns[] = {3, 5, 17}, Ds[] = {1, 3, 8}, tiles[] = {0, 2};
    uint64_t seed = 1;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int t = 0; t < 2; t++) {
                LossConfig cfg = config(kind, one_sided, learn, tiles[t]);
                check_case(&cfg, Ns[a], Ds[b], seed, (int)(seed % 2), 0.3f, NULL);
                seed++;
            }
}

/* ---------------------------------------------------------------------------------------------
 * Gradient checks.
 */

static void test_infonce_gradients(void **state) {
    (void)state;
    check_all_shapes(LOSS_INFONCE, 0, 1);
    check_all_shapes(LOSS_INFONCE, 1, 1);
    check_all_shapes(LOSS_INFONCE, 0, 0);
}

static void test_dcl_gradients(void **state) {
    (void)state;
    check_all_shapes(LOSS_DCL, 0, 1);
    check_all_shapes(LOSS_DCL, 1, 1);
}

static void test_siglip_gradients(void **state) {
    (void)state;
    check_all_shapes(LOSS_SIGLIP, 0, 1);
    check_all_shapes(LOSS_SIGLIP, 0, 0);
    /* near the decision boundary (t = 0, b = 0), where every pair contributes */
    static const float at_boundary[2] = {0.0f, 0.0f};
    for (int tile = 0; tile <= 3; tile += 3) {
        LossConfig cfg = config(LOSS_SIGLIP, 0, 1, tile);
        check_case(&cfg, 7, 4, 77, 0, 0.0f, at_boundary);
    }
}

static void test_align_uniform_gradients(void **state) {
    (void)state;
    check_all_shapes(LOSS_ALIGN_UNIFORM, 0, 1);
    LossConfig cfg = config(LOSS_ALIGN_UNIFORM, 0, 1, 2);
    cfg.lambda = 0.25f;
    check_case(&cfg, 5, 3, 123, 0, 0.0f, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Hand-computed values.
 */

/* I = [[1,0],[0,1]], T = [[1,0],[0.6,0.8]], t = ln 2 (s = 2):
 *   L = s I T^T = [[2, 1.2], [0, 1.6]].
 *   row 0: log(e^2 + e^1.2) - 2     = log(1 + e^-0.8)       = 0.3711007
 *   row 1: log(e^0 + e^1.6) - 1.6   = log(1 + e^-1.6)       = 0.1839007
 *   col 0: log(e^2 + e^0) - 2       = log(1 + e^-2)         = 0.1269280
 *   col 1: log(e^1.2 + e^1.6) - 1.6 = log(1 + e^-0.4)       = 0.5130153
 *   CE_rows = (0.3711007 + 0.1839007)/2 = 0.2775007, CE_cols = (0.1269280 + 0.5130153)/2 = 0.3199716
 *   infonce = (CE_rows + CE_cols)/2 = 0.2987362; one-sided = CE_rows = 0.2775007. */
static const float HAND_I[4] = {1, 0, 0, 1}, HAND_T[4] = {1, 0, 0.6f, 0.8f};

static void test_infonce_hand_2x2(void **state) {
    (void)state;
    float t = logf(2.0f);
    for (int tile = 0; tile <= 1; tile++) {
        LossConfig cfg = config(LOSS_INFONCE, 0, 1, tile);
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, HAND_I, HAND_T, &t, 2, 2, NULL),
                           0.2987362f, 2e-6f);
        cfg.one_sided = 1;
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, HAND_I, HAND_T, &t, 2, 2, NULL),
                           0.2775007f, 2e-6f);
    }
}

/* Same I, T; t = 0 (s = 1), b = -1: u = I T^T + b = [[0, -0.4], [-1, -0.2]], z = +1 on the
 * diagonal. Terms softplus(-z u):
 *   (0,0) log(1 + e^0)    = 0.6931472     (0,1) log(1 + e^-0.4) = 0.5130153
 *   (1,0) log(1 + e^-1)   = 0.3132617     (1,1) log(1 + e^0.2)  = 0.7981389
 *   siglip = (sum = 2.3175630) / N = 1.1587815. */
static void test_siglip_hand_2x2(void **state) {
    (void)state;
    float sc[2] = {0.0f, -1.0f};
    for (int tile = 0; tile <= 1; tile++) {
        LossConfig cfg = config(LOSS_SIGLIP, 0, 1, tile);
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, HAND_I, HAND_T, sc, 2, 2, NULL),
                           1.1587815f, 2e-6f);
    }
}

/* Row i of infonce is lse_j(L_ij) - L_ii, of dcl lse_{j != i}(L_ij) - L_ii, and
 *   lse_j - lse_{j != i} = log(sum_j e^L_ij / sum_{j != i} e^L_ij) = -log(1 - P_ii),
 * P the row softmax; likewise for columns. Hence
 *   dcl = infonce + (1/N) sum_i [w_r log(1 - P^row_ii) + w_c log(1 - P^col_ii)]. */
static void test_dcl_is_infonce_without_positive(void **state) {
    (void)state;
    for (int one_sided = 0; one_sided <= 1; one_sided++) {
        LossConfig inf = config(LOSS_INFONCE, one_sided, 1, 0), dcl = config(LOSS_DCL, one_sided, 1, 0);
        Case c = case_make(&inf, 6, 4, 5, 1, 0.0f);
        float v_inf = loss_forward_backward(&inf, NULL, NULL, NULL, c.img, c.txt, c.scalars, 6, 4, NULL);
        float v_dcl = loss_forward_backward(&dcl, NULL, NULL, NULL, c.img, c.txt, c.scalars, 6, 4, NULL);
        double s = exp(c.scalars_d[0]), L[36], corr = 0.0, col[6];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) L[i * 6 + j] = s * dot_d(c.img_d + i * 4, c.txt_d + j * 4, 4);
        double w_r = one_sided ? 1.0 : 0.5, w_c = one_sided ? 0.0 : 0.5;
        for (int i = 0; i < 6; i++) {
            for (int k = 0; k < 6; k++) col[k] = L[k * 6 + i];
            double p_row = exp(L[i * 6 + i] - lse_d(L + i * 6, 6, -1));
            double p_col = exp(L[i * 6 + i] - lse_d(col, 6, -1));
            corr += (w_r * log1p(-p_row) + w_c * log1p(-p_col)) / 6.0;
        }
        assert_true(corr < -1e-3); /* the relation is not trivially satisfied */
        assert_float_equal(v_dcl, v_inf + corr, 1e-5f * fabsf(v_dcl) + 1e-6f);
        case_free(&c);
    }
}

static void test_align_uniform_matches_direct_formula(void **state) {
    (void)state;
    for (int tile = 0; tile <= 8; tile += 8) {
        LossConfig cfg = config(LOSS_ALIGN_UNIFORM, 0, 1, tile);
        cfg.lambda = 0.7f;
        for (int unit = 0; unit <= 1; unit++) {
            Case c = case_make(&cfg, 37, 5, 11 + unit, unit, 0.0f);
            float v = loss_forward_backward(&cfg, NULL, NULL, NULL, c.img, c.txt, NULL, 37, 5, c.ws);
            double ref = ref_loss(&cfg, c.img_d, c.txt_d, NULL, 37, 5);
            assert_float_equal(v, ref, 1e-5 * fabs(ref) + 1e-6);
            case_free(&c);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Dense = tiled, clamp, options, accumulation.
 */

static void assert_close_arrays(const float *a, const float *b, int n, float rel) {
    float scale = max_abs(a, n);
    for (int k = 0; k < n; k++)
        if (fabsf(a[k] - b[k]) > rel * scale + 1e-7f)
            fail_msg("element %d: %.9g vs %.9g (scale %.3g)", k, a[k], b[k], scale);
}

static void test_tiled_equals_dense(void **state) {
    (void)state;
    static const int tiles[] = {8, 64, 1, 36};
    for (int kind = 0; kind < loss_count(); kind++)
        for (int one_sided = 0; one_sided <= (kind == LOSS_INFONCE || kind == LOSS_DCL); one_sided++) {
            LossConfig dense = config(kind, one_sided, 1, 0);
            Case a = case_make(&dense, 37, 16, 21 + kind, 1, 0.2f);
            float va = case_run(&dense, &a);
            for (int t = 0; t < 4; t++) {
                LossConfig tiled = config(kind, one_sided, 1, tiles[t]);
                Case b = case_make(&tiled, 37, 16, 21 + kind, 1, 0.2f);
                float vb = case_run(&tiled, &b);
                assert_float_equal(va, vb, 2e-6f * fabsf(va) + 1e-7f);
                assert_close_arrays(a.dimg, b.dimg, 37 * 16, 2e-6f);
                assert_close_arrays(a.dtxt, b.dtxt, 37 * 16, 2e-6f);
                for (int k = 0; k < a.ns; k++)
                    assert_float_equal(a.dscalars[k], b.dscalars[k], 2e-6f * fabsf(a.dscalars[k]) + 1e-7f);
                case_free(&b);
            }
            case_free(&a);
        }
}

/* The tiled softmax losses split their rows into parts that run on any thread: value and gradients
 * are bitwise the same on 1, 2 and 3 threads (10 row tiles in 4 parts; dk sums the parts in order,
 * whichever thread finishes first). */
static void test_tiled_threads_bitwise(void **state) {
    (void)state;
    enum { N = 300, D = 16, TILE = 32 };
    int threads_before = omp_get_max_threads();
    for (int kind = LOSS_INFONCE; kind <= LOSS_DCL; kind += LOSS_DCL - LOSS_INFONCE)
        for (int one_sided = 0; one_sided <= 1; one_sided++) {
            LossConfig cfg = config(kind, one_sided, 1, TILE);
            Case ref = case_make(&cfg, N, D, 61 + kind, 1, 0.2f);
            omp_set_num_threads(1);
            float v1 = case_run(&cfg, &ref);
            for (int th = 2; th <= 3; th++) {
                Case c = case_make(&cfg, N, D, 61 + kind, 1, 0.2f);
                omp_set_num_threads(th);
                float v = case_run(&cfg, &c);
                assert_memory_equal(&v, &v1, sizeof v);
                assert_memory_equal(c.dimg, ref.dimg, sizeof(float) * N * D);
                assert_memory_equal(c.dtxt, ref.dtxt, sizeof(float) * N * D);
                assert_memory_equal(c.dscalars, ref.dscalars, sizeof(float) * 2);
                case_free(&c);
            }
            case_free(&ref);
        }
    omp_set_num_threads(threads_before);
}

/* The forward does not clamp the logit scale: at exp(t) = 148 the loss is that at s = 148 and
 * dL/dt is alive and matches finite differences (a forward clamp made it 0, so t could never come
 * back). The parameter is clamped instead, by loss_clamp_scalars, to [0, ln 100]. */
static void test_no_clamp_in_forward_clamp_on_parameter(void **state) {
    (void)state;
    int kinds[] = {LOSS_INFONCE, LOSS_DCL, loss_find("multipos_infonce")};
    for (int k = 0; k < 3; k++)
        for (int tile = 0; tile <= 4; tile += 4) {
            LossConfig cfg = config(kinds[k], 0, 1, tile);
            Case c = case_make(&cfg, 9, 4, 31, 1, 0.0f);
            c.scalars[0] = 5.0f; /* e^5 = 148 */
            c.scalars_d[0] = 5.0;
            float v = case_run(&cfg, &c);
            if (kinds[k] != loss_find("multipos_infonce")) {
                double ref = ref_loss(&cfg, c.img_d, c.txt_d, c.scalars_d, 9, 4);
                assert_float_equal(v, ref, 1e-5 * fabs(ref));
                double fd = fd_ref(&cfg, &c, &c.scalars_d[0]);
                assert_true(fabs(fd) > 1e-3);
                assert_float_equal(c.dscalars[0], fd, 1e-4 * fabs(fd));
            }
            assert_true(c.dscalars[0] != 0.0f);
            float t[3] = {5.0f, -0.5f, 2.0f}, want[3] = {logf(100.0f), 0.0f, 2.0f};
            for (int i = 0; i < 3; i++) {
                loss_clamp_scalars(&cfg, &t[i]);
                assert_true(t[i] == want[i]);
            }
            case_free(&c);
        }
    /* siglip's scalars are not clamped (as in its paper); align_uniform has none */
    LossConfig sig = loss_default_config(LOSS_SIGLIP), au = loss_default_config(LOSS_ALIGN_UNIFORM);
    float sc[2] = {7.0f, -30.0f};
    loss_clamp_scalars(&sig, sc);
    assert_true(sc[0] == 7.0f && sc[1] == -30.0f);
    loss_clamp_scalars(&au, NULL);
}

/* Steps of 0.1 against the sign of dL/dt (as Adam's roughly are) on t alone, the parameter clamped
 * after each step: on a batch whose pairs match
 * (dL/dt < 0) t climbs to ln 100 and is held there; once the texts are shuffled (the positives are
 * now wrong, dL/dt > 0) t leaves the bound again. With the old clamp in the forward dL/dt was 0
 * at the bound and t stayed there for good. */
static void test_t_reaches_bound_and_leaves_it(void **state) {
    (void)state;
    enum { N = 8, D = 8 };
    for (int tile = 0; tile <= 3; tile += 3) {
        LossConfig cfg = config(LOSS_INFONCE, 0, 1, tile);
        Case c = case_make(&cfg, N, D, 41, 1, 0.0f);
        memcpy(c.txt, c.img, sizeof(float) * N * D); /* matching pairs */
        const float hi = logf(LOSS_LOGIT_SCALE_MAX), lr = 0.1f;
        int steps_at_bound = 0, left = 0;
        for (int step = 0; step < 200; step++) {
            if (step == 100) /* the texts shuffled: pair i now holds text i + 1 */
                for (int i = 0; i < N; i++)
                    memcpy(c.txt + i * D, c.img + ((i + 1) % N) * D, sizeof(float) * D);
            case_run(&cfg, &c);
            assert_true(c.dscalars[0] != 0.0f); /* alive, at the bound too */
            c.scalars[0] -= c.dscalars[0] > 0.0f ? lr : -lr;
            loss_clamp_scalars(&cfg, c.scalars);
            assert_true(c.scalars[0] <= hi && c.scalars[0] >= 0.0f);
            if (step < 100) steps_at_bound += c.scalars[0] == hi;
            if (step >= 100 && c.scalars[0] < hi - 0.5f) left = 1;
        }
        assert_true(steps_at_bound > 10); /* reached the bound and was held there */
        assert_true(left);                /* and came back down */
        case_free(&c);
    }
}

static void test_fixed_temperature_leaves_t_alone(void **state) {
    (void)state;
    for (int kind = 0; kind < loss_count(); kind++) {
        if (kind == LOSS_ALIGN_UNIFORM) continue;
        LossConfig learned = config(kind, 0, 1, 3), fixed = config(kind, 0, 0, 3);
        Case c = case_make(&learned, 7, 3, 41, 1, 0.1f);
        float v1 = case_run(&learned, &c);
        float dt_learned = c.dscalars[0], db_learned = c.dscalars[1];
        float g_learned = c.dimg[5];
        float v2 = case_run(&fixed, &c);
        assert_true(dt_learned != 0.0f);
        assert_true(c.dscalars[0] == 0.0f);
        /* the value and every other gradient are unchanged */
        assert_true(v1 == v2);
        assert_true(g_learned == c.dimg[5]);
        assert_true(db_learned == c.dscalars[1]);
        case_free(&c);
    }
}

/* Gradients accumulate (+=) into whatever the arrays hold; NULL outputs are skipped; a NULL
 * workspace is allocated for the call. */
static void test_accumulates_and_null_outputs(void **state) {
    (void)state;
    for (int kind = 0; kind < loss_count(); kind++)
        for (int tile = 0; tile <= 2; tile += 2) {
            LossConfig cfg = config(kind, 0, 1, tile);
            Case c = case_make(&cfg, 5, 3, 51, 1, 0.1f);
            float v = case_run(&cfg, &c);
            float g_img[15], g_txt[15], g_sc[2] = {c.dscalars[0], c.dscalars[1]};
            memcpy(g_img, c.dimg, sizeof g_img);
            memcpy(g_txt, c.dtxt, sizeof g_txt);
            float pre_img[15], pre_txt[15], pre_sc[2] = {0.5f, -0.25f};
            for (int k = 0; k < 15; k++) pre_img[k] = 0.1f * k, pre_txt[k] = -0.2f * k;
            memcpy(c.dimg, pre_img, sizeof pre_img);
            memcpy(c.dtxt, pre_txt, sizeof pre_txt);
            memcpy(c.dscalars, pre_sc, sizeof pre_sc);
            float v2 = loss_forward_backward(&cfg, c.dimg, c.dtxt, c.dscalars, c.img, c.txt, c.scalars, 5, 3, NULL);
            assert_true(v == v2);
            for (int k = 0; k < 15; k++) {
                assert_float_equal(c.dimg[k], pre_img[k] + g_img[k], 1e-6f);
                assert_float_equal(c.dtxt[k], pre_txt[k] + g_txt[k], 1e-6f);
            }
            for (int k = 0; k < 2; k++) assert_float_equal(c.dscalars[k], pre_sc[k] + (k < c.ns ? g_sc[k] : 0.0f), 1e-6f);
            /* only dtxt requested */
            memset(c.dtxt, 0, sizeof g_txt);
            float v3 = loss_forward_backward(&cfg, NULL, c.dtxt, NULL, c.img, c.txt, c.scalars, 5, 3, c.ws);
            assert_true(v == v3);
            for (int k = 0; k < 15; k++) assert_float_equal(c.dtxt[k], g_txt[k], 1e-6f);
            case_free(&c);
        }
}

/* Per-loss entry points read their kind from their name. */
static void test_named_entry_points(void **state) {
    (void)state;
    LossConfig cfg = config(LOSS_INFONCE, 0, 1, 0); /* deliberately the wrong kind for 3 of 4 */
    Case c = case_make(&cfg, 6, 3, 61, 1, 0.0f);
    float sc[2] = {1.0f, -2.0f};
    typedef float (*Fn)(const LossConfig *, float *, float *, float *, const float *, const float *,
                        const float *, int, int, float *);
    static const Fn fns[] = {[LOSS_INFONCE] = loss_infonce, [LOSS_SIGLIP] = loss_siglip,
                                           [LOSS_DCL] = loss_dcl, [LOSS_ALIGN_UNIFORM] = loss_align_uniform};
    for (int kind = 0; kind < (int)(sizeof fns / sizeof fns[0]); kind++) {
        LossConfig k = config(kind, 0, 1, 0);
        float expect = loss_forward_backward(&k, NULL, NULL, NULL, c.img, c.txt, sc, 6, 3, NULL);
        assert_true(fns[kind](&cfg, NULL, NULL, NULL, c.img, c.txt, sc, 6, 3, NULL) == expect);
    }
    case_free(&c);
}

/* Large logits (s = 100, near-identical pairs, dcl's positive far above every negative, siglip's
 * |u| in the hundreds) stay finite. */
static void test_extreme_logits_are_finite(void **state) {
    (void)state;
    for (int kind = 0; kind < loss_count(); kind++)
        for (int tile = 0; tile <= 3; tile += 3) {
            LossConfig cfg = config(kind, 0, 1, tile);
            Case c = case_make(&cfg, 8, 4, 71, 1, 0.0f);
            memcpy(c.txt, c.img, sizeof(float) * 32);
            c.scalars[0] = 6.0f;
            if (kind == LOSS_SIGLIP) c.scalars[1] = 50.0f;
            float v = case_run(&cfg, &c);
            assert_true(isfinite(v));
            for (int k = 0; k < 32; k++) assert_true(isfinite(c.dimg[k]) && isfinite(c.dtxt[k]));
            for (int k = 0; k < c.ns; k++) assert_true(isfinite(c.dscalars[k]));
            case_free(&c);
        }
}

/* N = 1: infonce has only the positive (loss 0, no gradient); siglip has one positive term. */
static void test_batch_of_one(void **state) {
    (void)state;
    float img[3] = {0.6f, 0.0f, 0.8f}, txt[3] = {0.0f, 1.0f, 0.0f};
    for (int tile = 0; tile <= 1; tile++) {
        LossConfig cfg = config(LOSS_INFONCE, 0, 1, tile);
        float t = 2.0f, d[3] = {0}, dt = 0.0f;
        assert_float_equal(loss_forward_backward(&cfg, d, NULL, &dt, img, txt, &t, 1, 3, NULL), 0.0f, 1e-7f);
        assert_float_equal(max_abs(d, 3), 0.0f, 1e-7f);
        cfg.kind = LOSS_SIGLIP;
        float sc[2] = {0.0f, 0.5f};
        double want = softplus_d(-0.5); /* u = 1 * 0 + 0.5, z = +1 */
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, img, txt, sc, 1, 3, NULL), want, 1e-6);
    }
}

/* The MPI local-loss split: shares over ranges partitioning [0, N) (uneven, one empty) sum to the
 * whole loss and its gradients, dense and tiled (tile 2: a share of 4 or 5 rows is 2 or 3 row
 * parts of the tiled softmax losses). */
static void test_local_shares_sum_to_whole(void **state) {
    (void)state;
    static const int cuts[] = {0, 4, 4, 9, 13}; /* ranks own [0,4), [4,4), [4,9), [9,13) */
    static const int tiles[] = {0, 5, 2};
    enum { N = 13, D = 6, RANKS = 4 };
    assert_false(loss_has_local(LOSS_ALIGN_UNIFORM));
    for (int kind = 0; kind < loss_count(); kind++) {
        if (!loss_has_local(kind)) continue;
        for (int one_sided = 0; one_sided <= (kind != LOSS_SIGLIP); one_sided++)
            for (int t = 0; t < 3; t++) {
                LossConfig cfg = config(kind, one_sided, 1, tiles[t]);
                Case whole = case_make(&cfg, N, D, 81 + kind, 1, 0.2f);
                float v = case_run(&cfg, &whole);
                float dimg[N * D] = {0}, dtxt[N * D] = {0}, dsc[2] = {0};
                double sum = 0.0;
                for (int r = 0; r < RANKS; r++) {
                    float *ws = malloc(sizeof(float) *
                                       loss_local_workspace_floats(&cfg, N, D, cuts[r], cuts[r + 1]));
                    sum += loss_local_forward_backward(&cfg, dimg, dtxt, dsc, whole.img, whole.txt,
                                                       whole.scalars, N, D, cuts[r], cuts[r + 1], ws);
                    free(ws);
                }
                assert_float_equal(sum, v, 2e-6 * fabs(v));
                assert_close_arrays(whole.dimg, dimg, N * D, 2e-6f);
                assert_close_arrays(whole.dtxt, dtxt, N * D, 2e-6f);
                for (int k = 0; k < whole.ns; k++)
                    assert_float_equal(dsc[k], whole.dscalars[k], 1e-5f * fabsf(whole.dscalars[k]) + 1e-7f);
                /* a share is not the whole: rank 0's rows alone give a different value */
                float part = loss_local_forward_backward(&cfg, NULL, NULL, NULL, whole.img, whole.txt,
                                                         whole.scalars, N, D, 0, 4, NULL);
                assert_true(fabsf(part - v) > 1e-3f * fabsf(v));
                case_free(&whole);
            }
    }
}

/* ---------------------------------------------------------------------------------------------
 * The grouped loss (loss.group_size): each row's negatives only from its group of g rows.
 */

/* Value and every gradient against the reference (the mean of the groups' losses, each computed
 * as a batch of its own) and finite differences, for g dividing N, dense and tiled. */
static void test_grouped_gradients(void **state) {
    (void)state;
    static const int kinds[] = {LOSS_INFONCE, LOSS_DCL, LOSS_SIGLIP}, groups[] = {2, 3, 4, 6};
    uint64_t seed = 700;
    for (int k = 0; k < 3; k++)
        for (int gi = 0; gi < 4; gi++)
            for (int tile = 0; tile <= 2; tile += 2) {
                LossConfig cfg = config(kinds[k], 0, 1, tile);
                cfg.group_size = groups[gi];
                check_case(&cfg, 12, 3, seed, (int)(seed % 2), 0.3f, NULL);
                seed++;
            }
    LossConfig one_sided = config(LOSS_INFONCE, 1, 1, 0);
    one_sided.group_size = 4;
    check_case(&one_sided, 12, 3, seed, 1, 0.3f, NULL);
}

/* g = N is the dense loss; g = N/2 is not (fewer negatives), and equals the mean of the two
 * halves' losses, each computed as a batch of its own. */
static void test_grouped_whole_batch_is_dense(void **state) {
    (void)state;
    static const int kinds[] = {LOSS_INFONCE, LOSS_DCL, LOSS_SIGLIP};
    for (int k = 0; k < 3; k++) {
        LossConfig dense = config(kinds[k], 0, 1, 0), grouped = dense;
        Case a = case_make(&dense, 10, 4, 801 + k, 1, 0.2f), b = case_make(&dense, 10, 4, 801 + k, 1, 0.2f);
        float v = case_run(&dense, &a);
        grouped.group_size = 10;
        assert_true(case_run(&grouped, &b) == v);
        assert_memory_equal(a.dimg, b.dimg, sizeof(float) * 40);
        assert_memory_equal(a.dtxt, b.dtxt, sizeof(float) * 40);
        grouped.group_size = 5;
        float halves = case_run(&grouped, &b);
        assert_true(fabsf(halves - v) > 1e-3f * fabsf(v));
        float h0 = loss_forward_backward(&dense, NULL, NULL, NULL, a.img, a.txt, a.scalars, 5, 4, NULL);
        float h1 = loss_forward_backward(&dense, NULL, NULL, NULL, a.img + 20, a.txt + 20, a.scalars, 5, 4, NULL);
        assert_float_equal(halves, 0.5f * (h0 + h1), 1e-6f * fabsf(halves));
        case_free(&a);
        case_free(&b);
    }
}

/* g = 1: no negatives at all. infonce's loss and every gradient are 0; siglip keeps only its
 * positive terms, (1/N) sum_i softplus(-(s I_i.T_i + b)), with their gradients. */
static void test_grouped_one_has_no_negatives(void **state) {
    (void)state;
    for (int tile = 0; tile <= 1; tile++) {
        LossConfig cfg = config(LOSS_INFONCE, 0, 1, tile);
        cfg.group_size = 1;
        Case c = case_make(&cfg, 6, 3, 811, 1, 0.2f);
        assert_float_equal(case_run(&cfg, &c), 0.0f, 0.0f);
        assert_float_equal(max_abs(c.dimg, 18), 0.0f, 0.0f);
        assert_float_equal(max_abs(c.dtxt, 18), 0.0f, 0.0f);
        assert_float_equal(c.dscalars[0], 0.0f, 0.0f);
        case_free(&c);
        cfg = config(LOSS_SIGLIP, 0, 1, tile);
        cfg.group_size = 1;
        Case d = case_make(&cfg, 6, 3, 812, 1, 0.2f);
        float v = case_run(&cfg, &d);
        double s = exp(d.scalars_d[0]), b = d.scalars_d[1], want = 0.0, db = 0.0;
        for (int i = 0; i < 6; i++) {
            double u = s * dot_d(d.img_d + i * 3, d.txt_d + i * 3, 3) + b;
            want += softplus_d(-u) / 6;
            double gu = -1.0 / (1.0 + exp(u)) / 6; /* d softplus(-u) / du / N */
            db += gu;
            for (int k = 0; k < 3; k++) {
                assert_float_equal(d.dimg[i * 3 + k], gu * s * d.txt_d[i * 3 + k], 1e-6);
                assert_float_equal(d.dtxt[i * 3 + k], gu * s * d.img_d[i * 3 + k], 1e-6);
            }
        }
        assert_float_equal(v, want, 1e-6 * want);
        assert_float_equal(d.dscalars[1], db, 1e-6);
        case_free(&d);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Small losses at large logits (issue 10): the value and gradients keep their relative precision.
 */

/* dL/dI, dL/dT [N, D] and dL/dt of infonce/dcl in double, straight from the definition
 * G = (1/N) [w_r (P - 1) + w_c (Q - 1)] (the 1 on the diagonal; dcl: P_ii = Q_ii = 0). */
static void ref_softmax_grads(const LossConfig *cfg, double *dimg, double *dtxt, double *dt,
                              const double *img, const double *txt, double t, int N, int D) {
    double s = exp(t), w_r = cfg->one_sided ? 1.0 : 0.5, w_c = 1.0 - w_r;
    int dcl = cfg->kind == LOSS_DCL;
    double *L = malloc(sizeof(double) * N * N), *G = calloc((size_t)N * N, sizeof(double));
    double *col = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) L[i * N + j] = s * dot_d(img + i * D, txt + j * D, D);
    for (int i = 0; i < N; i++) {
        double lr = lse_d(L + i * N, N, dcl ? i : -1);
        for (int k = 0; k < N; k++) col[k] = L[k * N + i];
        double lc = lse_d(col, N, dcl ? i : -1);
        for (int j = 0; j < N; j++) {
            int diag = i == j;
            G[i * N + j] += w_r * ((dcl && diag ? 0.0 : exp(L[i * N + j] - lr)) - diag) / N;
            G[j * N + i] += w_c * ((dcl && diag ? 0.0 : exp(L[j * N + i] - lc)) - diag) / N;
        }
    }
    *dt = 0.0;
    for (int i = 0; i < N * D; i++) dimg[i] = dtxt[i] = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double g = G[i * N + j];
            *dt += g * L[i * N + j];
            for (int k = 0; k < D; k++) {
                dimg[i * D + k] += s * g * txt[j * D + k];
                dtxt[j * D + k] += s * g * img[i * D + k];
            }
        }
    free(L);
    free(G);
    free(col);
}

/* Loss, dI, dT and dt of c under cfg within rel of the double reference (arrays: of their largest
 * element). */
static void check_against_double(const LossConfig *cfg, Case *c, double rel) {
    int n = c->N * c->D;
    double *gi = malloc(sizeof(double) * n), *gt = malloc(sizeof(double) * n), dt;
    float v = case_run(cfg, c);
    double ref = ref_loss(cfg, c->img_d, c->txt_d, c->scalars_d, c->N, c->D);
    ref_softmax_grads(cfg, gi, gt, &dt, c->img_d, c->txt_d, c->scalars_d[0], c->N, c->D);
    if (fabs(v - ref) > rel * fabs(ref))
        fail_msg("%s tile=%d: loss %.8g vs %.8g (rel %.2g)", loss_registry_name(cfg->kind), cfg->tile,
                 v, ref, fabs(v - ref) / fabs(ref));
    const float *g[2] = {c->dimg, c->dtxt};
    const double *r[2] = {gi, gt};
    for (int side = 0; side < 2; side++) {
        double scale = 0.0;
        for (int k = 0; k < n; k++) scale = fmax(scale, fabs(r[side][k]));
        assert_true(scale > 0.0);
        for (int k = 0; k < n; k++)
            if (fabs(g[side][k] - r[side][k]) > rel * scale)
                fail_msg("%s tile=%d: d%s[%d] %.8g vs %.8g (scale %.3g)", loss_registry_name(cfg->kind),
                         cfg->tile, side ? "T" : "I", k, g[side][k], r[side][k], scale);
    }
    if (fabs(c->dscalars[0] - dt) > rel * fabs(dt))
        fail_msg("%s tile=%d: dt %.8g vs %.8g", loss_registry_name(cfg->kind), cfg->tile, c->dscalars[0], dt);
    free(gi);
    free(gt);
}

/* x [D] scaled to unit norm; xd [D] its double copy. */
static void renormalise(float *x, double *xd, int D) {
    double n2 = 0.0;
    for (int k = 0; k < D; k++) n2 += (double)x[k] * x[k];
    for (int k = 0; k < D; k++) x[k] = (float)(x[k] / sqrt(n2)), xd[k] = x[k];
}

/* N = 2, D = 2, I = T = identity, t = ln 10: every term is log(1 + e^-10) = 4.5399e-5 (rounding
 * each LSE to a float gave 4.5776e-5). */
static void test_small_loss_identity_2x2(void **state) {
    (void)state;
    static const float E[4] = {1, 0, 0, 1};
    for (int tile = 0; tile <= 1; tile++)
        for (int one_sided = 0; one_sided <= 1; one_sided++) {
            LossConfig cfg = config(LOSS_INFONCE, one_sided, 1, tile);
            Case c = case_make(&cfg, 2, 2, 1, 0, 0.0f);
            memcpy(c.img, E, sizeof E);
            memcpy(c.txt, E, sizeof E);
            for (int k = 0; k < 4; k++) c.img_d[k] = c.txt_d[k] = E[k];
            c.scalars[0] = logf(10.0f);
            c.scalars_d[0] = c.scalars[0];
            double exact = log1p(exp(-exp(c.scalars_d[0])));
            assert_true(fabs(exact - 4.5399e-5) < 1e-9);
            float v = case_run(&cfg, &c);
            assert_float_equal(v, exact, 1e-6 * exact);
            check_against_double(&cfg, &c, 1e-5);
            case_free(&c);
        }
}

/* A normalised N = 256, D = 64 batch at logit scale 100 whose loss is ~4e-8 (each pair far above
 * its negatives): value and gradients of infonce and dcl, dense and tiled, against the double
 * reference (10% off before the LSEs kept their excess apart; PyTorch float32 is 0.1% off). */
static void test_small_loss_large_logits(void **state) {
    (void)state;
    enum { N = 256, D = 64 };
    for (int kind = LOSS_INFONCE; kind <= LOSS_DCL; kind += LOSS_DCL - LOSS_INFONCE)
        for (int tile = 0; tile <= 48; tile += 48) {
            LossConfig cfg = config(kind, 0, 1, tile);
            Case c = case_make(&cfg, N, D, 901, 1, 0.0f);
            /* images: random unit rows plus a shared direction; texts: the images plus noise */
            Rng r;
            rng_init(&r, 902);
            float g[D];
            rng_fill_normal(&r, g, D, 1.0f / 8.0f);
            for (int i = 0; i < N; i++) {
                for (int k = 0; k < D; k++) c.img[i * D + k] += SMALL_LOSS_SHARED * g[k];
                renormalise(c.img + i * D, c.img_d + i * D, D);
            }
            for (int i = 0; i < N; i++) {
                for (int k = 0; k < D; k++) c.txt[i * D + k] = c.img[i * D + k] + SMALL_LOSS_NOISE * rng_normal(&r);
                renormalise(c.txt + i * D, c.txt_d + i * D, D);
            }
            c.scalars[0] = logf(SMALL_LOSS_SCALE);
            c.scalars_d[0] = c.scalars[0];
            if (kind == LOSS_INFONCE) { /* the regime of the issue */
                double ref = ref_loss(&cfg, c.img_d, c.txt_d, c.scalars_d, N, D);
                assert_true(ref > 1e-8 && ref < 1e-7);
            }
            check_against_double(&cfg, &c, 1e-4);
            case_free(&c);
        }
}

/* ---------------------------------------------------------------------------------------------
 * multipos_infonce: duplicate captions (bitwise-equal text rows) are positives, not negatives.
 */

/* Straight from the definition in multipos_infonce.c, with the classes cls [N] given (fixed while
 * finite differences move single coordinates, which would break bitwise equality). */
static double ref_multipos(const LossConfig *cfg, const double *img, const double *txt,
                           const double *scalars, const int *cls, int N, int D) {
    double s = exp(scalars[0]), dirs[2] = {0.0, 0.0};
    for (int dir = 0; dir < 2; dir++) {
        const double *q = dir ? txt : img, *k = dir ? img : txt;
        for (int i = 0; i < N; i++) {
            double Z = 0.0, row = 0.0;
            int np = 0;
            for (int n = 0; n < N; n++)
                if (cls[n] != cls[i]) Z += exp(s * dot_d(q + i * D, k + n * D, D));
            for (int p = 0; p < N; p++) {
                if (cls[p] != cls[i]) continue;
                double x = s * dot_d(q + i * D, k + p * D, D);
                row += log(exp(x) + Z) - x;
                np++;
            }
            dirs[dir] += row / np / N;
        }
    }
    return cfg->one_sided ? dirs[0] : 0.5 * (dirs[0] + dirs[1]);
}

/* Makes text rows dup[2k+1] copies of rows dup[2k] (bitwise), in float and double. */
static void make_duplicates(Case *c, const int *dup, int n_dup, int *cls) {
    for (int i = 0; i < c->N; i++) cls[i] = i;
    for (int k = 0; k < n_dup; k++) {
        int from = dup[2 * k], to = dup[2 * k + 1];
        memcpy(c->txt + to * c->D, c->txt + from * c->D, sizeof(float) * c->D);
        for (int d = 0; d < c->D; d++) c->txt_d[to * c->D + d] = c->txt[to * c->D + d];
        cls[to] = cls[from];
    }
}

/* I = [[1,0],[0,1],[0.6,0.8]], T = [[1,0],[0,1],[1,0]] (texts 0 and 2 are one caption), s = 1:
 *   L = I T^T = [[1,0,1],[0,1,0],[0.6,0.8,0.6]], classes {0,2}, {1}.
 *   rows: 0: log(e^1 + e^0) - 1 = 0.3132617 (both positives alike)
 *         1: log(e^1 + e^0 + e^0) - 1 = 0.5514447
 *         2: log(e^0.6 + e^0.8) - 0.6 = 0.7981389
 *   cols: 0: [(log(e^1 + e^0) - 1) + (log(e^0.6 + e^0) - 0.6)]/2 = 0.3753748, col 2 the same
 *         1: log(e^0 + e^1 + e^0.8) - 1 = 0.7823525
 *   loss = (sum rows + sum cols) / 6 = 0.5326579; one-sided sum rows / 3 = 0.5542818
 *   (infonce on the same batch: 0.8649571, the duplicate counted as a negative). */
static void test_multipos_hand_3x2(void **state) {
    (void)state;
    static const float I[6] = {1, 0, 0, 1, 0.6f, 0.8f}, T[6] = {1, 0, 0, 1, 1, 0};
    float t = 0.0f;
    int kind = loss_find("multipos_infonce");
    assert_true(kind >= 0);
    for (int tile = 0; tile <= 2; tile++) {
        LossConfig cfg = config(kind, 0, 1, tile);
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, I, T, &t, 3, 2, NULL), 0.5326579f, 2e-6f);
        cfg.one_sided = 1;
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, I, T, &t, 3, 2, NULL), 0.5542818f, 2e-6f);
        cfg = config(LOSS_INFONCE, 0, 1, tile);
        assert_float_equal(loss_forward_backward(&cfg, NULL, NULL, NULL, I, T, &t, 3, 2, NULL), 0.8649571f, 2e-6f);
    }
}

/* The float implementation along a direction that moves duplicates together (so they stay
 * duplicates): (f(x + hv) - f(x - hv)) / 2h vs <g, v>. */
static void check_multipos_directional(const LossConfig *cfg, Case *c, const int *cls, uint64_t seed) {
    int n = c->N * c->D;
    float *v = malloc(sizeof(float) * (2 * n + 1)), *x0 = malloc(sizeof(float) * (2 * n + 1));
    Rng r;
    rng_init(&r, seed);
    rng_fill_normal(&r, v, 2 * n + 1, 1.0f);
    for (int i = 0; i < c->N; i++) memcpy(v + n + i * c->D, v + n + cls[i] * c->D, sizeof(float) * c->D);
    if (!cfg->learn_temperature) v[2 * n] = 0.0f;
    double norm = 0.0, gv = 0.0;
    for (int k = 0; k < 2 * n + 1; k++) norm += (double)v[k] * v[k];
    for (int k = 0; k < 2 * n + 1; k++) v[k] = (float)(v[k] / sqrt(norm));
    memcpy(x0, c->img, sizeof(float) * n);
    memcpy(x0 + n, c->txt, sizeof(float) * n);
    x0[2 * n] = c->scalars[0];
    case_run(cfg, c);
    for (int k = 0; k < n; k++) gv += (double)c->dimg[k] * v[k] + (double)c->dtxt[k] * v[n + k];
    gv += (double)c->dscalars[0] * v[2 * n];
    const float h = 1e-3f;
    float f[2];
    for (int sgn = 0; sgn < 2; sgn++) {
        float step = sgn ? -h : h;
        for (int k = 0; k < n; k++) c->img[k] = x0[k] + step * v[k], c->txt[k] = x0[n + k] + step * v[n + k];
        c->scalars[0] = x0[2 * n] + step * v[2 * n];
        f[sgn] = loss_forward_backward(cfg, NULL, NULL, NULL, c->img, c->txt, c->scalars, c->N, c->D, c->ws);
    }
    memcpy(c->img, x0, sizeof(float) * n);
    memcpy(c->txt, x0 + n, sizeof(float) * n);
    c->scalars[0] = x0[2 * n];
    double fd = ((double)f[0] - f[1]) / (2.0 * h);
    if (fabs(fd - gv) > 3e-3 + 1e-2 * fabs(gv))
        fail_msg("multipos N=%d tile=%d: directional derivative %.6g vs fd %.6g", c->N, cfg->tile, gv, fd);
    free(v);
    free(x0);
}

/* Central difference of ref_multipos at coordinate p. */
static double fd_multipos(const LossConfig *cfg, Case *c, const int *cls, double *p) {
    const double h = 1e-5, keep = *p;
    *p = keep + h;
    double fp = ref_multipos(cfg, c->img_d, c->txt_d, c->scalars_d, cls, c->N, c->D);
    *p = keep - h;
    double fm = ref_multipos(cfg, c->img_d, c->txt_d, c->scalars_d, cls, c->N, c->D);
    *p = keep;
    return (fp - fm) / (2.0 * h);
}

static void check_multipos_case(const LossConfig *cfg, int N, int D, const int *dup, int n_dup,
                                uint64_t seed) {
    Case c = case_make(cfg, N, D, seed, (int)(seed % 2), 0.3f);
    int cls[32];
    make_duplicates(&c, dup, n_dup, cls);
    float loss = case_run(cfg, &c);
    double ref = ref_multipos(cfg, c.img_d, c.txt_d, c.scalars_d, cls, N, D);
    if (fabs(loss - ref) > 1e-5 * fabs(ref) + 1e-6)
        fail_msg("multipos N=%d D=%d tile=%d: loss %.8g vs reference %.8g", N, D, cfg->tile, loss, ref);
    float *g[2] = {c.dimg, c.dtxt};
    double *x[2] = {c.img_d, c.txt_d};
    for (int side = 0; side < 2; side++) {
        float scale = max_abs(g[side], N * D);
        for (int k = 0; k < N * D; k++) {
            double fd = fd_multipos(cfg, &c, cls, &x[side][k]);
            if (fabs(g[side][k] - fd) > 1e-4 * scale + 1e-6)
                fail_msg("multipos N=%d D=%d tile=%d one_sided=%d: d%s[%d] analytic %.8g vs fd %.8g", N,
                         D, cfg->tile, cfg->one_sided, side ? "T" : "I", k, g[side][k], fd);
        }
    }
    if (cfg->learn_temperature) {
        double fd = fd_multipos(cfg, &c, cls, &c.scalars_d[0]);
        if (fabs(c.dscalars[0] - fd) > 1e-4 * fabs(fd) + 1e-5)
            fail_msg("multipos N=%d D=%d tile=%d: dt analytic %.8g vs fd %.8g", N, D, cfg->tile,
                     c.dscalars[0], fd);
    } else {
        assert_true(c.dscalars[0] == 0.0f);
    }
    check_multipos_directional(cfg, &c, cls, seed + 1000);
    case_free(&c);
}

/* Value and every gradient against the definition, dense and tiled (tile 3: blocks cut through
 * the classes), both directions and one-sided, with classes of sizes 1 to 4. */
static void test_multipos_gradients(void **state) {
    (void)state;
    int kind = loss_find("multipos_infonce");
    static const int dup9[] = {0, 3, 0, 5, 2, 7, 0, 8}, dup4[] = {1, 3};
    uint64_t seed = 300;
    for (int tile = 0; tile <= 3; tile += 3)
        for (int one_sided = 0; one_sided <= 1; one_sided++)
            for (int learn = 0; learn <= 1; learn++) {
                LossConfig cfg = config(kind, one_sided, learn, tile);
                check_multipos_case(&cfg, 9, 5, dup9, 4, seed++);
                check_multipos_case(&cfg, 4, 2, dup4, 1, seed++);
                check_multipos_case(&cfg, 7, 3, NULL, 0, seed++);
            }
}

/* One caption for the whole batch: nothing is a negative, so the loss and every gradient are 0. */
static void test_multipos_all_duplicates(void **state) {
    (void)state;
    int kind = loss_find("multipos_infonce");
    static const int dup[] = {0, 1, 0, 2, 0, 3, 0, 4};
    for (int tile = 0; tile <= 2; tile += 2) {
        LossConfig cfg = config(kind, 0, 1, tile);
        Case c = case_make(&cfg, 5, 3, 401, 1, 0.0f);
        int cls[5];
        make_duplicates(&c, dup, 4, cls);
        assert_float_equal(case_run(&cfg, &c), 0.0f, 0.0f);
        assert_float_equal(max_abs(c.dimg, 15), 0.0f, 0.0f);
        assert_float_equal(max_abs(c.dtxt, 15), 0.0f, 0.0f);
        assert_float_equal(c.dscalars[0], 0.0f, 0.0f);
        case_free(&c);
    }
}

/* Without duplicate captions it is infonce, value and gradients. */
static void test_multipos_without_duplicates_is_infonce(void **state) {
    (void)state;
    int kind = loss_find("multipos_infonce");
    for (int tile = 0; tile <= 5; tile += 5)
        for (int one_sided = 0; one_sided <= 1; one_sided++) {
            LossConfig mp = config(kind, one_sided, 1, tile), inf = config(LOSS_INFONCE, one_sided, 1, tile);
            Case a = case_make(&mp, 13, 6, 501, 1, 0.2f), b = case_make(&inf, 13, 6, 501, 1, 0.2f);
            float va = case_run(&mp, &a), vb = case_run(&inf, &b);
            assert_float_equal(va, vb, 2e-6f * fabsf(vb));
            assert_close_arrays(a.dimg, b.dimg, 13 * 6, 2e-5f);
            assert_close_arrays(a.dtxt, b.dtxt, 13 * 6, 2e-5f);
            assert_float_equal(a.dscalars[0], b.dscalars[0], 1e-5f * fabsf(b.dscalars[0]) + 1e-7f);
            case_free(&a);
            case_free(&b);
        }
}

/* ---------------------------------------------------------------------------------------------
 * Registry and bad configurations.
 */

/* The built-in LossKind values map to their registry entries; the registry lists each name once
 * and finds it back; scalars and their paper initialisations. */
static void test_names_scalars_and_inits(void **state) {
    (void)state;
    static const char *names[] = {"infonce", "siglip", "dcl", "align_uniform"};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(loss_find(names[k]), k);
        assert_string_equal(loss_registry_name(k), names[k]);
    }
    for (int k = 0; k < loss_count(); k++) {
        assert_non_null(loss_registry_name(k));
        assert_int_equal(loss_find(loss_registry_name(k)), k);
        char all[512];
        loss_list_names(all, sizeof all);
        assert_non_null(strstr(all, loss_registry_name(k)));
    }
    assert_null(loss_registry_name(loss_count()));
    assert_null(loss_registry_name(-1));
    assert_int_equal(loss_find("clip"), -1);
    assert_int_equal(loss_find(NULL), -1);
    char small[10];
    loss_list_names(small, sizeof small);
    assert_string_equal(small, "infonce, "); /* truncated to fit */
    assert_int_equal(loss_n_scalars(LOSS_INFONCE), 1);
    assert_int_equal(loss_n_scalars(LOSS_DCL), 1);
    assert_int_equal(loss_n_scalars(LOSS_SIGLIP), 2);
    assert_int_equal(loss_n_scalars(LOSS_ALIGN_UNIFORM), 0);
    float sc[2];
    LossConfig cfg = loss_default_config(LOSS_INFONCE);
    loss_init_scalars(&cfg, sc);
    assert_float_equal(expf(sc[0]), 1.0f / 0.07f, 1e-4f);
    cfg.init_temperature = 0.5f;
    loss_init_scalars(&cfg, sc);
    assert_float_equal(expf(sc[0]), 2.0f, 1e-6f);
    cfg = loss_default_config(LOSS_SIGLIP);
    cfg.init_temperature = 0.5f; /* siglip keeps the paper's init */
    loss_init_scalars(&cfg, sc);
    assert_float_equal(expf(sc[0]), 10.0f, 1e-5f);
    assert_float_equal(sc[1], -10.0f, 0.0f);
    cfg.init_logit_scale = 4.0f; /* siglip's own initial scalars */
    cfg.init_bias = -5.0f;
    loss_init_scalars(&cfg, sc);
    assert_float_equal(sc[0], logf(4.0f), 0.0f);
    assert_float_equal(sc[1], -5.0f, 0.0f);
    cfg.init_logit_scale = 0.0f; /* 0: the paper's scale */
    loss_init_scalars(&cfg, sc);
    assert_float_equal(expf(sc[0]), 10.0f, 1e-5f);
    cfg = loss_default_config(LOSS_INFONCE);
    cfg.init_logit_scale = 4.0f; /* the softmax losses read only their temperature */
    loss_init_scalars(&cfg, sc);
    assert_float_equal(expf(sc[0]), 1.0f / 0.07f, 1e-4f);
}

/* What each loss logs: the scale exp(t) and siglip's bias; never more
 * than the caller's capacity. */
static void test_log_scalars(void **state) {
    (void)state;
    const char *names[2];
    float values[2];
    float sc[2] = {4.0f, -3.0f};
    LossConfig cfg = loss_default_config(LOSS_INFONCE);
    assert_int_equal(loss_log_scalars(&cfg, sc, names, values, 2), 1);
    assert_string_equal(names[0], "logit_scale");
    assert_float_equal(values[0], expf(4.0f), 0.0f);
    cfg = loss_default_config(LOSS_SIGLIP);
    assert_int_equal(loss_log_scalars(&cfg, sc, names, values, 2), 2);
    assert_string_equal(names[1], "logit_bias");
    assert_float_equal(values[0], expf(4.0f), 0.0f);
    assert_float_equal(values[1], -3.0f, 0.0f);
    assert_int_equal(loss_log_scalars(&cfg, sc, names, values, 1), 1);
    cfg = loss_default_config(LOSS_ALIGN_UNIFORM);
    assert_int_equal(loss_log_scalars(&cfg, sc, names, values, 2), 0);
}

static void expect_invalid(LossConfig cfg, int N, int D, const char *needle) {
    char msg[256] = "";
    assert_int_equal(loss_validate(&cfg, N, D, msg, sizeof msg), -1);
    if (!strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    assert_null(strchr(msg, '\n'));
    assert_int_equal(loss_validate(&cfg, N, D, NULL, 0), -1);
}

static void test_validate_rejects_each_bad_input(void **state) {
    (void)state;
    LossConfig ok = loss_default_config(LOSS_INFONCE);
    assert_int_equal(loss_validate(&ok, 4, 2, NULL, 0), 0);
    LossConfig bad = ok;
    bad.kind = 77;
    expect_invalid(bad, 4, 2, "unknown kind 77 (valid: infonce, siglip, dcl, align_uniform");
    expect_invalid(ok, 0, 2, "batch size must be >= 1 (got 0)");
    expect_invalid(ok, 4, 0, "embedding dim must be >= 1 (got 0)");
    bad = ok;
    bad.tile = -3;
    expect_invalid(bad, 4, 2, "tile must be 0 (dense) or > 0 (got -3)");
    expect_invalid(loss_default_config(LOSS_DCL), 1, 2, "loss dcl needs a batch of at least 2 (got 1)");
    expect_invalid(loss_default_config(LOSS_ALIGN_UNIFORM), 1, 2,
                   "loss align_uniform needs a batch of at least 2 (got 1)");
    bad = loss_default_config(LOSS_SIGLIP);
    bad.one_sided = 1;
    expect_invalid(bad, 4, 2, "loss siglip has no one-sided variant");
    bad = loss_default_config(LOSS_ALIGN_UNIFORM);
    bad.lambda = -1.0f;
    expect_invalid(bad, 4, 2, "lambda must be finite and >= 0 (got -1)");
    bad.lambda = NAN;
    expect_invalid(bad, 4, 2, "lambda must be finite and >= 0");
    bad = ok;
    bad.init_temperature = 0.001f; /* scale 1000: outside the clamp of t */
    expect_invalid(bad, 4, 2, "loss infonce: init_temperature must be in [0.01, 1]");
    bad.kind = LOSS_DCL;
    bad.init_temperature = 2.0f;
    expect_invalid(bad, 4, 2, "loss dcl: init_temperature must be in [0.01, 1]");
    bad.kind = LOSS_SIGLIP; /* siglip keeps its paper init: the option does not apply */
    assert_int_equal(loss_validate(&bad, 4, 2, NULL, 0), 0);
    bad.init_logit_scale = -1.0f;
    expect_invalid(bad, 4, 2, "loss siglip: init_logit_scale must be finite and > 0 (got -1)");
    bad.init_logit_scale = INFINITY;
    expect_invalid(bad, 4, 2, "loss siglip: init_logit_scale must be finite and > 0 (got inf)");
    bad.init_logit_scale = 10.0f;
    bad.init_bias = NAN;
    expect_invalid(bad, 4, 2, "loss siglip: init_bias must be finite (got nan)");
    bad = ok;
    bad.group_size = -2;
    expect_invalid(bad, 8, 2, "group_size must be 0 (the whole batch) or > 0 (got -2)");
    bad.group_size = 3;
    expect_invalid(bad, 8, 2, "group_size 3 does not divide the batch size 8");
    bad = loss_default_config(LOSS_DCL);
    bad.group_size = 1;
    expect_invalid(bad, 8, 2, "loss dcl needs a group of at least 2 (got 1)");
    bad.group_size = 8; /* = N: the whole batch */
    assert_int_equal(loss_validate(&bad, 8, 2, NULL, 0), 0);
    /* the N = 1 rule is only for the losses with a repulsion term */
    assert_int_equal(loss_validate(&ok, 1, 2, NULL, 0), 0);
}

/* The public size functions return 0 for every invalid shape or configuration (never a wrapped
 * size_t, e.g. for N = -1 through ctypes). */
static void test_sizes_are_zero_when_invalid(void **state) {
    (void)state;
    LossConfig ok = loss_default_config(LOSS_INFONCE);
    assert_true(loss_workspace_floats(&ok, 8, 4) > 0);
    assert_true(loss_workspace_floats(&ok, -1, 4) == 0);
    assert_true(loss_workspace_floats(&ok, 0, 4) == 0);
    assert_true(loss_workspace_floats(&ok, 8, -1) == 0);
    assert_true(loss_workspace_floats(&ok, 8, 0) == 0);
    assert_true(loss_workspace_floats(NULL, 8, 4) == 0);
    LossConfig bad = ok;
    bad.kind = -1;
    assert_true(loss_workspace_floats(&bad, 8, 4) == 0);
    bad = ok;
    bad.tile = -5;
    assert_true(loss_workspace_floats(&bad, 8, 4) == 0);
    bad = ok;
    bad.group_size = 3;
    assert_true(loss_workspace_floats(&bad, 8, 4) == 0);
    bad = loss_default_config(LOSS_DCL);
    assert_true(loss_workspace_floats(&bad, 1, 4) == 0);
    /* local shares: the range must lie in [0, N]; partial only with a local split, ungrouped */
    assert_true(loss_local_workspace_floats(&ok, 8, 4, 2, 5) > 0);
    assert_true(loss_local_workspace_floats(&ok, -1, 4, 0, 0) == 0);
    assert_true(loss_local_workspace_floats(&ok, 8, 4, 5, 2) == 0);
    assert_true(loss_local_workspace_floats(&ok, 8, 4, -1, 2) == 0);
    assert_true(loss_local_workspace_floats(&ok, 8, 4, 2, 9) == 0);
    bad = loss_default_config(LOSS_ALIGN_UNIFORM);
    assert_true(loss_local_workspace_floats(&bad, 8, 4, 2, 5) == 0);
    assert_true(loss_local_workspace_floats(&bad, 8, 4, 0, 8) > 0);
    bad = ok;
    bad.group_size = 4;
    assert_true(loss_local_workspace_floats(&bad, 8, 4, 0, 4) == 0);
    assert_true(loss_local_workspace_floats(&bad, 8, 4, 0, 8) > 0);
    assert_int_equal(loss_n_scalars(-1), 0);
    assert_int_equal(loss_n_scalars(loss_count()), 0);
    assert_int_equal(loss_has_local(-1), 0);
    assert_int_equal(loss_has_local(loss_count()), 0);
}

/* Tiled workspace is O(N * tile): no N x N anywhere. */
static void test_tiled_workspace_is_linear_in_n(void **state) {
    (void)state;
    for (int kind = 0; kind < loss_count(); kind++) {
        LossConfig cfg = config(kind, 0, 1, 256);
        size_t small = loss_workspace_floats(&cfg, 4096, 256), big = loss_workspace_floats(&cfg, 65536, 256);
        /* block + a few (at most 8) N-vectors + a scratch independent of N */
        assert_true(big <= (size_t)65536 * (256 + 8) + 64 * 256);
        assert_true(big - small <= (size_t)(65536 - 4096) * (256 + 8));
        cfg.tile = 0;
        assert_true(loss_workspace_floats(&cfg, 4096, 256) >= (size_t)4096 * 4096);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infonce_hand_2x2),
        cmocka_unit_test(test_siglip_hand_2x2),
        cmocka_unit_test(test_dcl_is_infonce_without_positive),
        cmocka_unit_test(test_align_uniform_matches_direct_formula),
        cmocka_unit_test(test_infonce_gradients),
        cmocka_unit_test(test_dcl_gradients),
        cmocka_unit_test(test_siglip_gradients),
        cmocka_unit_test(test_align_uniform_gradients),
        cmocka_unit_test(test_tiled_equals_dense),
        cmocka_unit_test(test_tiled_threads_bitwise),
        cmocka_unit_test(test_grouped_gradients),
        cmocka_unit_test(test_grouped_whole_batch_is_dense),
        cmocka_unit_test(test_grouped_one_has_no_negatives),
        cmocka_unit_test(test_small_loss_identity_2x2),
        cmocka_unit_test(test_small_loss_large_logits),
        cmocka_unit_test(test_no_clamp_in_forward_clamp_on_parameter),
        cmocka_unit_test(test_t_reaches_bound_and_leaves_it),
        cmocka_unit_test(test_fixed_temperature_leaves_t_alone),
        cmocka_unit_test(test_accumulates_and_null_outputs),
        cmocka_unit_test(test_named_entry_points),
        cmocka_unit_test(test_extreme_logits_are_finite),
        cmocka_unit_test(test_batch_of_one),
        cmocka_unit_test(test_local_shares_sum_to_whole),
        cmocka_unit_test(test_multipos_hand_3x2),
        cmocka_unit_test(test_multipos_gradients),
        cmocka_unit_test(test_multipos_all_duplicates),
        cmocka_unit_test(test_multipos_without_duplicates_is_infonce),
        cmocka_unit_test(test_names_scalars_and_inits),
        cmocka_unit_test(test_log_scalars),
        cmocka_unit_test(test_validate_rejects_each_bad_input),
        cmocka_unit_test(test_tiled_workspace_is_linear_in_n),
        cmocka_unit_test(test_sizes_are_zero_when_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
