/* losses.c — the loss registry, configuration checks, dispatch, and the block helpers every loss
 * shares (block geometry, the Gram block via sgemm, streamed row/column log-sum-exp).
 * Deliberately left out: the losses themselves (one file each: softmax_losses.c for infonce and
 * dcl, siglip.c, align_uniform.c).
 */
#pragma GCC optimize("no-trapping-math") /* lets the LSE loops vectorise: see loss_impl.h */

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "losses/loss_impl.h"

/* The registry: the only list of loss names. Each X(name) line stands for the LossOps
 * `loss_<name>_ops` defined in core/losses/<file>.c; the first four are the LossKind values in
 * order. To add a loss: write its file and add its one line at the end of this list (docs/DESIGN.md,
 * "A loss"). */
#define LOSS_REGISTRY_LIST(X) \
    X(infonce)                \
    X(siglip)                 \
    X(dcl)                    \
    X(align_uniform)          \
    X(multipos_infonce)       \
    /* (one line per loss, above this one) */

#define LOSS_DECLARE(n) extern const LossOps loss_##n##_ops;
LOSS_REGISTRY_LIST(LOSS_DECLARE)
#define LOSS_ENTRY(n) &loss_##n##_ops,
static const LossOps *const LOSS_REGISTRY[] = {LOSS_REGISTRY_LIST(LOSS_ENTRY)};
enum { LOSS_REGISTRY_COUNT = (int)(sizeof LOSS_REGISTRY / sizeof LOSS_REGISTRY[0]) };

static const LossOps *loss_ops(int kind) {
    CHECK(kind >= 0 && kind < LOSS_REGISTRY_COUNT, "unknown loss kind %d", kind);
    return LOSS_REGISTRY[kind];
}

int loss_count(void) { return LOSS_REGISTRY_COUNT; }

const char *loss_registry_name(int i) {
    return i >= 0 && i < LOSS_REGISTRY_COUNT ? LOSS_REGISTRY[i]->name : NULL;
}

int loss_find(const char *name) {
    for (int k = 0; name && k < LOSS_REGISTRY_COUNT; k++)
        if (strcmp(name, LOSS_REGISTRY[k]->name) == 0) return k;
    return -1;
}

void loss_list_names(char *buf, size_t size) {
    if (buf && size > 0) names_join(buf, size, loss_registry_name);
}

LossConfig loss_default_config(int kind) {
    LossConfig cfg = {.kind = kind, .one_sided = 0, .learn_temperature = 1, .lambda = 1.0f,
                      .tile = 0, .init_temperature = LOSS_DEFAULT_TEMPERATURE,
                      .init_logit_scale = LOSS_SIGLIP_INIT_SCALE, .init_bias = LOSS_SIGLIP_INIT_BIAS};
    return cfg;
}

int loss_n_scalars(int kind) {
    return kind >= 0 && kind < LOSS_REGISTRY_COUNT ? LOSS_REGISTRY[kind]->n_scalars : 0;
}

void loss_init_scalars(const LossConfig *cfg, float *scalars) {
    const LossOps *ops = loss_ops(cfg->kind);
    if (ops->init_scalars) ops->init_scalars(cfg, scalars);
}

void loss_clamp_scalars(const LossConfig *cfg, float *scalars) {
    const LossOps *ops = loss_ops(cfg->kind);
    if (ops->clamp_scalars) ops->clamp_scalars(scalars);
}

int loss_log_scalars(const LossConfig *cfg, const float *scalars, const char **names,
                     float *values, int cap) {
    const LossOps *ops = loss_ops(cfg->kind);
    float v[LOSS_MAX_SCALARS];
    if (ops->log_values) ops->log_values(scalars, v);
    int n = 0;
    for (; n < ops->n_scalars && n < cap; n++) {
        names[n] = ops->scalar_names[n];
        values[n] = ops->log_values ? v[n] : scalars[n];
    }
    return n;
}

/* Rows per group: cfg->group_size, or N for the whole batch (0, or >= N). */
static int loss_group_rows(const LossConfig *cfg, int N) {
    return cfg->group_size > 0 && cfg->group_size < N ? cfg->group_size : N;
}

int loss_fail(char *msg, size_t msg_size, const char *fmt, ...) {
    if (msg && msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int loss_validate(const LossConfig *cfg, int N, int D, char *msg, size_t msg_size) {
    if (!cfg || cfg->kind < 0 || cfg->kind >= LOSS_REGISTRY_COUNT) {
        char valid[256];
        loss_list_names(valid, sizeof valid);
        return loss_fail(msg, msg_size, "loss: unknown kind %d (valid: %s)", cfg ? cfg->kind : -1, valid);
    }
    const LossOps *ops = LOSS_REGISTRY[cfg->kind];
    const char *name = ops->name;
    if (N < 1) return loss_fail(msg, msg_size, "loss %s: batch size must be >= 1 (got %d)", name, N);
    if (D < 1) return loss_fail(msg, msg_size, "loss %s: embedding dim must be >= 1 (got %d)", name, D);
    if (cfg->tile < 0)
        return loss_fail(msg, msg_size, "loss %s: tile must be 0 (dense) or > 0 (got %d)", name, cfg->tile);
    if (cfg->group_size < 0)
        return loss_fail(msg, msg_size, "loss %s: group_size must be 0 (the whole batch) or > 0 (got %d)",
                         name, cfg->group_size);
    int g = loss_group_rows(cfg, N);
    if (N % g)
        return loss_fail(msg, msg_size, "loss %s: group_size %d does not divide the batch size %d", name, g, N);
    if (g < ops->min_batch)
        return loss_fail(msg, msg_size,
                         "loss %s needs a %s of at least %d (got %d): with no negative pair its "
                         "repulsion term is undefined",
                         name, g < N ? "group" : "batch", ops->min_batch, g);
    if (cfg->one_sided && !ops->has_one_sided) {
        char sided[128] = "";
        for (int k = 0; k < LOSS_REGISTRY_COUNT; k++)
            if (LOSS_REGISTRY[k]->has_one_sided)
                snprintf(sided + strlen(sided), sizeof sided - strlen(sided), "%s%s",
                         sided[0] ? ", " : "", LOSS_REGISTRY[k]->name);
        return loss_fail(msg, msg_size, "loss %s has no one-sided variant (only %s)", name, sided);
    }
    return ops->validate ? ops->validate(cfg, msg, msg_size) : 0;
}

/* Workspace of the share [r0, r1): the loss's own for one group, plus, when grouped, the group's
 * gradients [2 g D] and scalars [LOSS_MAX_SCALARS] before they are weighted into the batch's. */
static size_t loss_share_floats(const LossConfig *cfg, int N, int D, int r0, int r1) {
    const LossOps *ops = LOSS_REGISTRY[cfg->kind];
    int g = loss_group_rows(cfg, N);
    if (g == N) return ops->workspace_floats(cfg, N, D, r1 - r0);
    return ops->workspace_floats(cfg, g, D, g) + 2 * (size_t)g * D + LOSS_MAX_SCALARS;
}

size_t loss_workspace_floats(const LossConfig *cfg, int N, int D) {
    if (loss_validate(cfg, N, D, NULL, 0)) return 0;
    return loss_share_floats(cfg, N, D, 0, N);
}

int loss_has_local(int kind) { return kind >= 0 && kind < LOSS_REGISTRY_COUNT && LOSS_REGISTRY[kind]->has_local; }

/* Why the share [r0, r1) cannot be computed under cfg (validated), or NULL. */
static const char *loss_share_problem(const LossConfig *cfg, int N, int r0, int r1) {
    int whole = r0 == 0 && r1 == N;
    if (!(0 <= r0 && r0 <= r1 && r1 <= N)) return "local rows outside the batch";
    if (!whole && !LOSS_REGISTRY[cfg->kind]->has_local) return "the loss has no local-loss split";
    if (!whole && loss_group_rows(cfg, N) < N) return "a grouped loss has no local-loss split";
    return NULL;
}

size_t loss_local_workspace_floats(const LossConfig *cfg, int N, int D, int r0, int r1) {
    if (loss_validate(cfg, N, D, NULL, 0) || loss_share_problem(cfg, N, r0, r1)) return 0;
    return loss_share_floats(cfg, N, D, r0, r1);
}

/* The loss within consecutive groups of g rows: the mean over the groups of each group's loss,
 * that is (1/N) sum over the rows of each row's terms with only its group's negatives. */
static float loss_grouped(const LossOps *ops, const LossConfig *cfg, float *dimg, float *dtxt,
                          float *dscalars, const float *img, const float *txt,
                          const float *scalars, int N, int D, int g, float *ws) {
    size_t own = ops->workspace_floats(cfg, g, D, g), gd = (size_t)g * D;
    float *gi = ws + own, *gt = gi + gd, *gs = gt + gd;
    float w = (float)g / (float)N;
    double total = 0.0;
    for (int g0 = 0; g0 < N; g0 += g) {
        size_t off = (size_t)g0 * D;
        memset(gi, 0, 2 * gd * sizeof(float));
        memset(gs, 0, LOSS_MAX_SCALARS * sizeof(float));
        total += ops->forward_backward(cfg, dimg ? gi : NULL, dtxt ? gt : NULL, dscalars ? gs : NULL,
                                       img + off, txt + off, scalars, g, D, 0, g, ws);
        for (size_t k = 0; dimg && k < gd; k++) dimg[off + k] += w * gi[k];
        for (size_t k = 0; dtxt && k < gd; k++) dtxt[off + k] += w * gt[k];
        for (int k = 0; dscalars && k < ops->n_scalars; k++) dscalars[k] += w * gs[k];
    }
    return (float)(total * w);
}

float loss_local_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                  float *dscalars, const float *img, const float *txt,
                                  const float *scalars, int N, int D, int r0, int r1,
                                  float *workspace) {
    char msg[256];
    CHECK(loss_validate(cfg, N, D, msg, sizeof msg) == 0, "%s", msg);
    const char *problem = loss_share_problem(cfg, N, r0, r1);
    CHECK(!problem, "loss %s, rows [%d, %d) of %d: %s", LOSS_REGISTRY[cfg->kind]->name, r0, r1, N, problem);
    if (r0 == r1) return 0.0f;
    const LossOps *ops = LOSS_REGISTRY[cfg->kind];
    float *ws = workspace;
    if (!ws) ws = mallocCheck(loss_share_floats(cfg, N, D, r0, r1) * sizeof(float));
    int g = loss_group_rows(cfg, N);
    float loss = g < N ? loss_grouped(ops, cfg, dimg, dtxt, dscalars, img, txt, scalars, N, D, g, ws)
                       : ops->forward_backward(cfg, dimg, dtxt, dscalars, img, txt, scalars, N, D, r0, r1, ws);
    if (!workspace) free(ws);
    return loss;
}

float loss_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                            const float *img, const float *txt, const float *scalars, int N, int D,
                            float *workspace) {
    return loss_local_forward_backward(cfg, dimg, dtxt, dscalars, img, txt, scalars, N, D, 0, N,
                                       workspace);
}

void loss_temperature_init(const LossConfig *cfg, float *scalars) {
    float temp = cfg->init_temperature > 0.0f ? cfg->init_temperature : LOSS_DEFAULT_TEMPERATURE;
    scalars[0] = logf(1.0f / temp);
}

int loss_temperature_validate(const LossConfig *cfg, char *msg, size_t msg_size) {
    float temp = cfg->init_temperature;
    if (temp != 0.0f && !(temp >= 1.0f / LOSS_LOGIT_SCALE_MAX && temp <= 1.0f / LOSS_LOGIT_SCALE_MIN))
        return loss_fail(msg, msg_size,
                         "loss %s: init_temperature must be in [%g, %g], the logit scale's range "
                         "(got %g)",
                         LOSS_REGISTRY[cfg->kind]->name, 1.0 / LOSS_LOGIT_SCALE_MAX,
                         1.0 / LOSS_LOGIT_SCALE_MIN, (double)temp);
    return 0;
}

void loss_temperature_clamp(float *scalars) {
    const float lo = logf(LOSS_LOGIT_SCALE_MIN), hi = logf(LOSS_LOGIT_SCALE_MAX);
    scalars[0] = scalars[0] < lo ? lo : scalars[0] > hi ? hi : scalars[0];
}

void loss_temperature_log(const float *scalars, float *values) { values[0] = expf(scalars[0]); }

int loss_block_width(const LossConfig *cfg, int N) {
    return (cfg->tile > 0 && cfg->tile < N) ? cfg->tile : N;
}

void loss_gram_block(float *out, const float *a, const float *b, int N, int nb, int D, float alpha) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nb, D, alpha, a, D, b, D, 0.0f, out, nb);
}

void loss_gram_block_backward(float *da, float *db, const float *g, const float *a, const float *b,
                              int N, int nb, int D, float alpha) {
    if (da)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, nb, alpha, g, nb, b, D, 1.0f,
                    da, D);
    if (db)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, D, N, alpha, g, nb, a, D, 1.0f, db,
                    D);
}

/* Folds x [n] into one running (m, e) pair (see loss_lse_update). */
static void lse_fold(float *m, float *e, const float *x, int n) {
    if (n <= 0) return;
    float bm = -INFINITY;
#pragma omp simd reduction(max : bm)
    for (int j = 0; j < n; j++) bm = x[j] > bm ? x[j] : bm;
    if (bm == -INFINITY) return; /* nothing finite to fold */
    float ref = bm > *m ? bm : *m;
    float below = 0.0f, ties = 0.0f; /* sum of exp(x - ref) over x < ref; count of x == ref */
#pragma omp simd reduction(+ : below, ties)
    for (int j = 0; j < n; j++) {
        float ex = ops_expf(x[j] - ref); /* computed for every x: a select, not a branch */
        below += x[j] < ref ? ex : 0.0f;
        ties += x[j] == ref ? 1.0f : 0.0f;
    }
    loss_lse_update(m, e, bm, below, ties);
}

void loss_lse_fold_row(float *m, float *e, const float *row, int nb, int skip) {
    if (skip >= 0 && skip < nb) {
        lse_fold(m, e, row, skip);
        lse_fold(m, e, row + skip + 1, nb - skip - 1);
    } else {
        lse_fold(m, e, row, nb);
    }
}

/* The column statistics of one part of the rows: cm [nb] = max, cb [nb] = sum of exp(v - cm)
 * over v < cm, ct [nb] = count of v == cm, over rows [r0, r1) of blk (the diagonal skipped). */
static void lse_part_columns(float *cm, float *cb, float *ct, const float *blk, int r0, int r1,
                             int nb, int c0, int exclude_diag) {
    for (int j = 0; j < nb; j++) cm[j] = -INFINITY, cb[j] = 0.0f, ct[j] = 0.0f;
    for (int i = r0; i < r1; i++) {
        const float *row = blk + (size_t)i * nb;
        int skip = exclude_diag ? i - c0 : -1;
        for (int j = 0; j < nb; j++) {
            float v = j == skip ? -INFINITY : row[j];
            cm[j] = v > cm[j] ? v : cm[j];
        }
    }
    for (int i = r0; i < r1; i++) {
        const float *row = blk + (size_t)i * nb;
        int skip = exclude_diag ? i - c0 : -1;
        /* skipped by index, not through exp(-inf - cm): a part holding only row i has
         * cm = -inf in column i */
        for (int j = 0; j < nb; j++) {
            int in = j != skip;
            cb[j] += in && row[j] < cm[j] ? ops_expf(row[j] - cm[j]) : 0.0f;
            ct[j] += in && row[j] == cm[j] ? 1.0f : 0.0f;
        }
    }
}

void loss_lse_block(float *m, float *e, float *col_m, float *col_logl, float *parts,
                    const float *blk, int N, int nb, int c0, int exclude_diag) {
#pragma omp parallel for schedule(static)
    for (int p = 0; p < LOSS_LSE_PARTS; p++) {
        int r0 = (int)((long)N * p / LOSS_LSE_PARTS), r1 = (int)((long)N * (p + 1) / LOSS_LSE_PARTS);
        for (int i = r0; i < r1; i++) /* skip: this row's diagonal column in the block */
            loss_lse_fold_row(&m[i], &e[i], blk + (size_t)i * nb, nb, exclude_diag ? i - c0 : -1);
        if (col_m) {
            float *cm = parts + (size_t)3 * p * nb;
            lse_part_columns(cm, cm + nb, cm + 2 * nb, blk, r0, r1, nb, c0, exclude_diag);
        }
    }
    if (!col_m) return;
    /* merge the parts' (max, below, ties) per column, the ties at the max counted apart from the
     * sums so the excess over the max's own 1 keeps its precision; an empty part has max -inf */
#pragma omp parallel for schedule(static)
    for (int j = 0; j < nb; j++) {
        float mx = -INFINITY, ties = 0.0f, excess = 0.0f;
        for (int p = 0; p < LOSS_LSE_PARTS; p++) {
            float v = parts[(size_t)3 * p * nb + j];
            mx = v > mx ? v : mx;
        }
        for (int p = 0; p < LOSS_LSE_PARTS; p++) {
            const float *part = parts + (size_t)3 * p * nb;
            if (part[j] == -INFINITY) continue;
            if (part[j] == mx) {
                ties += part[2 * nb + j];
                excess += part[nb + j];
            } else {
                excess += (part[nb + j] + part[2 * nb + j]) * ops_expf(part[j] - mx);
            }
        }
        col_m[j] = mx;
        col_logl[j] = mx == -INFINITY ? 0.0f : log1pf(excess + (ties - 1.0f));
    }
}

/* The per-loss entry points of the public API: loss_forward_backward with the kind taken from
 * the name. */
#define LOSS_ENTRY_POINT(fn, KIND)                                                               \
    float fn(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars, const float *img,  \
             const float *txt, const float *scalars, int N, int D, float *workspace) {            \
        LossConfig c = *cfg;                                                                      \
        c.kind = KIND;                                                                            \
        return loss_forward_backward(&c, dimg, dtxt, dscalars, img, txt, scalars, N, D, workspace); \
    }

LOSS_ENTRY_POINT(loss_infonce, LOSS_INFONCE)
LOSS_ENTRY_POINT(loss_siglip, LOSS_SIGLIP)
LOSS_ENTRY_POINT(loss_dcl, LOSS_DCL)
LOSS_ENTRY_POINT(loss_align_uniform, LOSS_ALIGN_UNIFORM)
