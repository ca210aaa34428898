/* loss_impl.h — internals shared by the loss files (not part of the public API): the LossOps
 * vtable every loss fills in, the block geometry, the streamed log-sum-exp helpers and a
 * vectorisable log1p. exp is ops_expf (ops/ops.h, header-only), which vectorises.
 *
 * The loss .c files start with `#pragma GCC optimize("no-trapping-math")`: without it GCC will not
 * if-convert the float selects in the block loops (running max, diagonal masks), so those loops
 * stay scalar, and the element-wise work over N x tile blocks is the other half of the loss cost
 * next to sgemm.
 * It only lets the compiler assume FP exceptions are not trapped (cliplab never enables traps); it
 * does not reorder arithmetic or change NaN/Inf semantics. The row reductions are `omp simd`
 * reductions: an in-order float sum is latency-bound (one dependent add per element); the vector
 * order is fixed, so results stay deterministic and independent of the thread count.
 * Small losses keep their digits: the log-sum-exps are carried as (max, excess over the max's
 * own term), see loss_lse_block.
 * Deliberately left out: any log accuracy beyond ~2 ulp (fp32 round-off is the target).
 */
#ifndef CLIPLAB_LOSS_IMPL_H
#define CLIPLAB_LOSS_IMPL_H

#include <math.h>

#include "losses/losses.h"
#include "ops/ops.h"

/* One loss. Everything that differs between losses is here, so that nothing outside core/losses/
 * branches on a loss kind. */
typedef struct {
    const char *name;
    int n_scalars;
    /* the logged name of each scalar, e.g. "logit_scale", "logit_bias" */
    const char *scalar_names[LOSS_MAX_SCALARS];
    int min_batch;     /* smallest batch on which the loss is defined */
    int has_one_sided; /* has an image->text-only variant (cfg->one_sided) */
    int has_local;     /* can compute the MPI local share of rows [r0, r1) alone */
    /* Checks of the loss's own options beyond those above (NULL: none); 0, or -1 with one line
     * in msg (through loss_fail). */
    int (*validate)(const LossConfig *cfg, char *msg, size_t msg_size);
    void (*init_scalars)(const LossConfig *cfg, float *scalars); /* NULL when n_scalars = 0 */
    /* keeps scalars in their domain after an optimiser step (NULL: unconstrained) */
    void (*clamp_scalars)(float *scalars);
    /* values [n_scalars] to log for scalars, under scalar_names (NULL: the scalars themselves) */
    void (*log_values)(const float *scalars, float *values);
    /* M = r1 - r0 local rows (N for the whole loss) */
    size_t (*workspace_floats)(const LossConfig *cfg, int N, int D, int M);
    /* Same contract as loss_local_forward_backward; cfg is validated, the range is [0, N) unless
     * has_local, and workspace is non-NULL. */
    float (*forward_backward)(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                              const float *img, const float *txt, const float *scalars, int N,
                              int D, int r0, int r1, float *workspace);
} LossOps;

/* Writes one formatted line into msg [msg_size] (if msg is not NULL) and returns -1. */
int loss_fail(char *msg, size_t msg_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The learned temperature of the softmax losses (infonce, dcl and their variants), scalars[0] = t:
 * its initialisation t = ln(1 / cfg->init_temperature), its check (the initial scale within the
 * clamp), the clamp of t to [ln LOSS_LOGIT_SCALE_MIN, ln LOSS_LOGIT_SCALE_MAX], and the logged
 * scale exp(t). */
void loss_temperature_init(const LossConfig *cfg, float *scalars);
int loss_temperature_validate(const LossConfig *cfg, char *msg, size_t msg_size);
void loss_temperature_clamp(float *scalars);
void loss_temperature_log(const float *scalars, float *values);

/* Columns per block: cfg->tile, or N when dense (tile 0 or tile >= N). */
int loss_block_width(const LossConfig *cfg, int N);

/* out [N, nb] = alpha * a [N, D] * b [nb, D]^T, one cblas_sgemm (call outside OpenMP regions). */
void loss_gram_block(float *out, const float *a, const float *b, int N, int nb, int D, float alpha);

/* The backward of loss_gram_block for the gradient g [N, nb] of its output:
 * da [N, D] += alpha g b, db [nb, D] += alpha g^T a (either may be NULL). */
void loss_gram_block_backward(float *da, float *db, const float *g, const float *a, const float *b,
                              int N, int nb, int D, float alpha);

/* Rows are split into this many fixed parts (not one per thread) so that results do not depend
 * on the thread count and the workspace does not either. */
#define LOSS_LSE_PARTS 16

/* A running log-sum-exp in (max m, excess e) form: the sum of exp(v - m) over everything folded
 * is 1 + e, e kept apart from the max's own 1 so that it keeps its precision when tiny (a loss of
 * 1e-8 is an e of 1e-8; 1 + 1e-8 is 1 in float). Start from m = -inf, e = 0. This folds in values
 * whose maximum is bm (-inf: nothing to fold), given below = the sum of exp(v - ref) over v < ref
 * and ties = the count of v == ref, where ref = max(bm, m). */
static inline void loss_lse_update(float *m, float *e, float bm, float below, float ties) {
    if (bm == -INFINITY) return;
    float ref = bm > *m ? bm : *m;
    if (ref > *m) /* a new max: the old sum 1 + e scales down; one of the ties is the new 1 */
        *e = (1.0f + *e) * ops_expf(*m - ref) + below + (ties - 1.0f);
    else
        *e += below + ties;
    *m = ref;
}

/* Folds row [nb] into the running (m, e) of loss_lse_update, skipping entry skip (< 0 or >= nb:
 * none). */
void loss_lse_fold_row(float *m, float *e, const float *row, int nb, int skip);

/* Streams block blk [N, nb] (global columns c0..c0+nb) into each row's running max m [N] and
 * excess e [N] (start from m = -inf, e = 0): the row's sum of exp(v - m) is 1 + e, so its LSE is
 * m + log1p(e), and a row LSE that exceeds the max by 1e-8 keeps that 1e-8 (exp(v - lse) and the
 * loss lse - L_ii are formed from m and log1p(e), never from a rounded lse). If col_m is not NULL,
 * also writes each column's max col_m [nb] and col_logl [nb] = log(sum_i exp(v - col_m)) (its LSE
 * is their sum; complete within the block), using parts [3 * LOSS_LSE_PARTS * nb] as scratch:
 * each part of the rows keeps its own column statistics, so the block is read row by row, twice.
 * With exclude_diag the entry (i, i) is skipped. */
void loss_lse_block(float *m, float *e, float *col_m, float *col_logl, float *parts,
                    const float *blk, int N, int nb, int c0, int exclude_diag);

/* log(1 + x) for x in [0, 1] (siglip's softplus tail): 2 atanh(x / (2 + x)) as an odd series in
 * s = x / (2 + x) <= 1/3, truncated after s^15 (relative error < 1e-8), exact for tiny x. */
static inline float loss_log1p01(float x) {
    float s = x / (2.0f + x);
    float s2 = s * s;
    float q = 2.0f / 15.0f;
    q = q * s2 + 2.0f / 13.0f;
    q = q * s2 + 2.0f / 11.0f;
    q = q * s2 + 2.0f / 9.0f;
    q = q * s2 + 2.0f / 7.0f;
    q = q * s2 + 2.0f / 5.0f;
    q = q * s2 + 2.0f / 3.0f;
    q = q * s2 + 2.0f;
    return s * q;
}

#endif
