/* softmax_losses.c — infonce (CLIP's symmetric cross-entropy) and dcl (decoupled contrastive
 * loss: the same without the positive pair in the softmax denominator), one forward/backward pair
 * shared by both since they differ only in that one excluded logit.
 *
 * With L = s I T^T (s = exp(t), not clamped here: see loss_clamp_scalars), weights w_r = w_c = 1/2 (one-sided: w_r = 1, w_c = 0):
 *   loss = (1/N) sum_i [w_r (lse_r(i) - L_ii) + w_c (lse_c(i) - L_ii)]
 *   dL/dL_ij = (1/N) [w_r P_ij + w_c Q_ij - (w_r + w_c) delta_ij]
 * with P, Q the row and column softmaxes (dcl: over j != i, so P_ii = Q_ii = 0). Then
 *   dI = s G T, dT = s G^T I, dt = sum_ij G_ij L_ij (= s dL/ds).
 * dt is summed as sum_ij [w_r P_ij (L_ij - L_ii) + w_c Q_ij (L_ij - L_jj)] / N, equal since the
 * softmaxes sum to 1, but free of the cancellation against the label term (dt is often ~1e-2
 * while the logits are ~10-100).
 * Small losses keep their digits (issue: a loss of 4e-8 at scale 100 was 10% off when each LSE
 * was rounded to one float): every LSE is carried as (max, log of the sum relative to the max),
 * the loss terms are (max - L_ii) + log-sum, and the label term P_ii - 1 is expm1(log P_ii).
 * Columns are streamed in blocks; the forward keeps only the row and column statistics, and the
 * backward recomputes each block (dense: one block, kept). The MPI local share (rows [r0, r1) of
 * image->text, columns [r0, r1) of text->image) runs two row passes, the second with I and T
 * swapped.
 * Deliberately left out: a clamp in the forward (it kills dL/dt beyond the bound, so t could never
 * come back: the parameter is clamped after each step instead, as CLIP and open_clip do).
 */
#pragma GCC optimize("no-trapping-math") /* lets the block loops vectorise: see loss_impl.h */

#include <math.h>

#include "losses/loss_impl.h"

static size_t softmax_workspace_floats(const LossConfig *cfg, int N, int D, int M) {
    (void)D;
    /* block [M, nb] + row max, excess (then log-sum), positives [M] + column max, log-sum [N] +
     * column scratch */
    int nb = loss_block_width(cfg, N);
    return (size_t)M * nb + 3 * (size_t)M + 2 * (size_t)N + (size_t)3 * LOSS_LSE_PARTS * nb;
}

/* Log-sum-exps as (max m, log of the sum of exp(v - m)): the LSE is m + logl, never rounded to one
 * float, so exp(v - lse) = exp((v - m) - logl) and lse - L_ii = (m - L_ii) + logl keep tiny
 * differences. */
typedef struct {
    const float *m, *logl;
} Lse;

/* Turns the logit block [M, nb] (global columns c0..; query row i's positive is global column
 * r0 + i, at block column dj = r0 + i - c0) into G in place; returns its part of sum G_ij L_ij.
 * col for the block's columns [nb] (read only when w_c > 0, which needs M = N, r0 = 0), row and
 * diag (the positives' logits) [M]; n the global batch size. */
static double softmax_grad_block(float *blk, Lse row, Lse col, const float *diag, int M, int n,
                                 int nb, int c0_minus_r0, float w_r, float w_c, int exclude_diag) {
    double dlogit = 0.0;
    float inv_n = 1.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : dlogit)
    for (int i = 0; i < M; i++) {
        float *x = blk + (size_t)i * nb;
        int dj = i - c0_minus_r0;
        /* dcl: the positive is outside both softmaxes (and may exceed their LSE by far) */
        int skip = exclude_diag ? dj : -1;
        float rm = row.m[i], rl = row.logl[i], l_ii = diag[i], acc = 0.0f;
        const float *l_jj = diag + c0_minus_r0;
        if (w_c > 0.0f) {
#pragma omp simd reduction(+ : acc)
            for (int j = 0; j < nb; j++) {
                float v = j == skip ? -INFINITY : x[j];
                float p = w_r * ops_expf((v - rm) - rl), q = w_c * ops_expf((v - col.m[j]) - col.logl[j]);
                acc += p * (x[j] - l_ii) + q * (x[j] - l_jj[j]);
                x[j] = (p + q) * inv_n;
            }
        } else {
#pragma omp simd reduction(+ : acc)
            for (int j = 0; j < nb; j++) {
                float v = j == skip ? -INFINITY : x[j];
                float p = w_r * ops_expf((v - rm) - rl);
                acc += p * (x[j] - l_ii);
                x[j] = p * inv_n;
            }
        }
        if (dj >= 0 && dj < nb) {
            /* the label term: P_ii - 1 = expm1(log P_ii), exact when P_ii is within 1e-8 of 1
             * (dcl: P_ii = 0) */
            float g = exclude_diag ? -w_r : w_r * expm1f((l_ii - rm) - rl);
            if (w_c > 0.0f) g += exclude_diag ? -w_c : w_c * expm1f((l_ii - col.m[dj]) - col.logl[dj]);
            x[dj] = g * inv_n;
        }
        dlogit += acc;
    }
    return dlogit / n;
}

/* One softmax pass over the logits s q[r0:r1] k^T (queries q, keys k, both [N, D]): the row
 * (query -> key) cross-entropy with weight w_r and, when w_c > 0 (then r0 = 0, r1 = N, and the
 * block's columns are complete), the column one with weight w_c from the same blocks. Returns the
 * pass's share of the loss, accumulates dq, dk (may be NULL) and *dlogit (if want_dt). */
static float softmax_pass(float *dq, float *dk, double *dlogit, const float *q, const float *k,
                          int N, int D, int r0, int r1, float s, float w_r, float w_c,
                          int exclude_diag, int tile, int want_dt, float *ws) {
    int M = r1 - r0;
    int tb = tile > 0 && tile < N ? tile : N;
    int dense = tb == N;
    const float *qr = q + (size_t)r0 * D;
    float *blk = ws, *row_m = ws + (size_t)M * tb, *row_e = row_m + M, *diag = row_e + M,
          *col_m = diag + M, *col_logl = col_m + N, *parts = col_logl + N;

    for (int i = 0; i < M; i++) row_m[i] = -INFINITY, row_e[i] = 0.0f;
    double col_sum = 0.0; /* sum_j (lse_c(j) - L_jj), as (max - L_jj) + log-sum */
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        loss_gram_block(blk, qr, k + (size_t)c0 * D, M, nb, D, s);
        loss_lse_block(row_m, row_e, w_c > 0.0f ? col_m + c0 : NULL, col_logl + c0, parts, blk, M,
                       nb, c0 - r0, exclude_diag);
        /* the positives in this block: global columns c0 + j that are query rows r0 + i */
        int j0 = r0 > c0 ? r0 - c0 : 0, j1 = r1 - c0 < nb ? r1 - c0 : nb;
        for (int j = j0; j < j1; j++) {
            int i = c0 + j - r0;
            diag[i] = blk[(size_t)i * nb + j];
        }
        if (w_c > 0.0f) /* complete columns: r0 = 0, so column c0 + j's positive is diag[c0 + j] */
            for (int j = 0; j < nb; j++)
                col_sum += (double)(col_m[c0 + j] - diag[c0 + j]) + col_logl[c0 + j];
    }
    float *row_logl = row_e; /* log1p(excess), in place */
    double row_sum = 0.0;
    for (int i = 0; i < M; i++) {
        row_logl[i] = log1pf(row_e[i]);
        row_sum += (double)(row_m[i] - diag[i]) + row_logl[i];
    }
    float loss = (float)((w_r * row_sum + w_c * col_sum) / N);
    if (!dq && !dk && !want_dt) return loss;

    Lse row = {row_m, row_logl};
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        const float *kblk = k + (size_t)c0 * D;
        if (!dense) loss_gram_block(blk, qr, kblk, M, nb, D, s);
        Lse col = {col_m + c0, col_logl + c0};
        *dlogit += softmax_grad_block(blk, row, col, diag, M, N, nb, c0 - r0, w_r, w_c, exclude_diag);
        loss_gram_block_backward(dq ? dq + (size_t)r0 * D : NULL, dk ? dk + (size_t)c0 * D : NULL,
                                 blk, qr, kblk, M, nb, D, s);
    }
    return loss;
}

/* Rows [r0, r1) of the image->text direction and columns [r0, r1) of text->image; the whole
 * loss for r0 = 0, r1 = N, which takes both directions from one set of blocks. */
static float softmax_forward_backward(const LossConfig *cfg, int exclude_diag, float *dimg,
                                      float *dtxt, float *dscalars, const float *img,
                                      const float *txt, const float *scalars, int N, int D,
                                      int r0, int r1, float *ws) {
    float s = expf(scalars[0]);
    float w_r = cfg->one_sided ? 1.0f : 0.5f, w_c = cfg->one_sided ? 0.0f : 0.5f;
    int want_dt = dscalars && cfg->learn_temperature;
    double dlogit = 0.0;
    float loss;
    if (r0 == 0 && r1 == N) {
        loss = softmax_pass(dimg, dtxt, &dlogit, img, txt, N, D, 0, N, s, w_r, w_c, exclude_diag,
                            cfg->tile, want_dt, ws);
    } else {
        /* a column of I T^T is a row of T I^T: the text->image share is a row pass with the
         * roles of the two sides swapped */
        loss = softmax_pass(dimg, dtxt, &dlogit, img, txt, N, D, r0, r1, s, w_r, 0.0f,
                            exclude_diag, cfg->tile, want_dt, ws);
        if (w_c > 0.0f)
            loss += softmax_pass(dtxt, dimg, &dlogit, txt, img, N, D, r0, r1, s, w_c, 0.0f,
                                 exclude_diag, cfg->tile, want_dt, ws);
    }
    if (want_dt) dscalars[0] += (float)dlogit;
    return loss;
}

static float infonce_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                      float *dscalars, const float *img, const float *txt,
                                      const float *scalars, int N, int D, int r0, int r1,
                                      float *ws) {
    return softmax_forward_backward(cfg, 0, dimg, dtxt, dscalars, img, txt, scalars, N, D, r0, r1,
                                    ws);
}

static float dcl_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                                  const float *img, const float *txt, const float *scalars, int N,
                                  int D, int r0, int r1, float *ws) {
    return softmax_forward_backward(cfg, 1, dimg, dtxt, dscalars, img, txt, scalars, N, D, r0, r1,
                                    ws);
}

const LossOps loss_infonce_ops = {
    .name = "infonce",
    .n_scalars = 1,
    .scalar_names = {"logit_scale"},
    .min_batch = 1,
    .has_one_sided = 1,
    .has_local = 1,
    .validate = loss_temperature_validate,
    .init_scalars = loss_temperature_init,
    .clamp_scalars = loss_temperature_clamp,
    .log_values = loss_temperature_log,
    .workspace_floats = softmax_workspace_floats,
    .forward_backward = infonce_forward_backward,
};

const LossOps loss_dcl_ops = {
    .name = "dcl",
    .n_scalars = 1,
    .scalar_names = {"logit_scale"},
    .min_batch = 2,
    .has_one_sided = 1,
    .has_local = 1,
    .validate = loss_temperature_validate,
    .init_scalars = loss_temperature_init,
    .clamp_scalars = loss_temperature_clamp,
    .log_values = loss_temperature_log,
    .workspace_floats = softmax_workspace_floats,
    .forward_backward = dcl_forward_backward,
};
