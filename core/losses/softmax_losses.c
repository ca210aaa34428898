/* softmax_losses.c — infonce (CLIP's symmetric cross-entropy) and dcl (decoupled contrastive
 * loss: the same without the positive pair in the softmax denominator), one forward/backward pair
 * shared by both since they differ only in that one excluded logit.
 *
 * With L = s I T^T (s = min(exp(t), 100)), weights w_r = w_c = 1/2 (one-sided: w_r = 1, w_c = 0):
 *   loss = (1/N) sum_i [w_r (lse_r(i) - L_ii) + w_c (lse_c(i) - L_ii)]
 *   dL/dL_ij = (1/N) [w_r P_ij + w_c Q_ij - (w_r + w_c) delta_ij]
 * with P, Q the row and column softmaxes (dcl: over j != i, so P_ii = Q_ii = 0). Then
 *   dI = s G T, dT = s G^T I, dt = sum_ij G_ij L_ij (s dL/ds; 0 when the clamp is active).
 * dt is summed as sum_ij [w_r P_ij (L_ij - L_ii) + w_c Q_ij (L_ij - L_jj)] / N, equal since the
 * softmaxes sum to 1, but free of the cancellation against the label term (dt is often ~1e-2
 * while the logits are ~10-100).
 * Columns are streamed in blocks; the forward keeps only the row (m, l) and column LSE, and the
 * backward recomputes each block (dense: one block, kept).
 * Deliberately left out: other clamps (CLIP clamps the parameter; here the clamp is on the scale
 * and t is left alone, the caller may clamp t itself).
 */
#pragma GCC optimize("no-trapping-math") /* lets the block loops vectorise: see loss_impl.h */

#include <math.h>

#include "losses/loss_impl.h"

#define LOGIT_SCALE_MAX 100.0f

static size_t softmax_workspace_floats(const LossConfig *cfg, int N, int D) {
    (void)D;
    /* block [N, nb] + row max, row sum (then row LSE), column LSE, diagonal + column scratch */
    int nb = loss_block_width(cfg, N);
    return (size_t)N * nb + 4 * (size_t)N + (size_t)2 * LOSS_LSE_PARTS * nb;
}

static void softmax_init_scalars(float *scalars) { scalars[0] = logf(1.0f / 0.07f); }

/* Turns the logit block [N, nb] (global columns c0..) into G in place; returns its part of
 * sum_ij G_ij L_ij. col_lse [nb] for the block's columns, row_lse and diag (L_ii) [N]. */
static double softmax_grad_block(float *blk, const float *row_lse, const float *col_lse,
                                 const float *diag, int N, int nb, int c0, float w_r, float w_c,
                                 int exclude_diag) {
    double dlogit = 0.0;
    float inv_n = 1.0f / (float)N;
#pragma omp parallel for schedule(static) reduction(+ : dlogit)
    for (int i = 0; i < N; i++) {
        float *row = blk + (size_t)i * nb;
        int dj = i - c0;
        /* dcl: the positive is outside both softmaxes (and may exceed their LSE by far) */
        int skip = exclude_diag ? dj : -1;
        float rl = row_lse[i], l_ii = diag[i], acc = 0.0f;
        const float *l_jj = diag + c0;
        if (w_c > 0.0f) {
            for (int j = 0; j < nb; j++) {
                float v = j == skip ? -INFINITY : row[j];
                float p = w_r * ops_expf(v - rl), q = w_c * ops_expf(v - col_lse[j]);
                acc += p * (row[j] - l_ii) + q * (row[j] - l_jj[j]);
                row[j] = (p + q) * inv_n;
            }
        } else {
            for (int j = 0; j < nb; j++) {
                float v = j == skip ? -INFINITY : row[j];
                float p = w_r * ops_expf(v - rl);
                acc += p * (row[j] - l_ii);
                row[j] = p * inv_n;
            }
        }
        if (dj >= 0 && dj < nb) row[dj] -= (w_r + w_c) * inv_n; /* the label term */
        dlogit += acc;
    }
    return dlogit / N;
}

static float softmax_forward_backward(const LossConfig *cfg, int exclude_diag, float *dimg,
                                      float *dtxt, float *dscalars, const float *img,
                                      const float *txt, const float *scalars, int N, int D,
                                      float *ws) {
    float e = expf(scalars[0]);
    int clamped = e > LOGIT_SCALE_MAX;
    float s = clamped ? LOGIT_SCALE_MAX : e;
    float w_r = cfg->one_sided ? 1.0f : 0.5f, w_c = cfg->one_sided ? 0.0f : 0.5f;
    int want_dt = dscalars && cfg->learn_temperature && !clamped;
    int want_grad = dimg || dtxt || want_dt;
    int tb = loss_block_width(cfg, N);
    int dense = tb == N;
    float *blk = ws, *row_m = ws + (size_t)N * tb, *row_l = row_m + N, *col_lse = row_l + N,
          *diag = col_lse + N, *parts = diag + N;

    for (int i = 0; i < N; i++) row_m[i] = -INFINITY, row_l[i] = 0.0f;
    double diag_sum = 0.0, col_sum = 0.0;
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        loss_gram_block(blk, img, txt + (size_t)c0 * D, N, nb, D, s);
        loss_lse_block(row_m, row_l, w_c > 0.0f ? col_lse + c0 : NULL, parts, blk, N, nb, c0,
                       exclude_diag);
        for (int j = 0; j < nb; j++) {
            diag[c0 + j] = blk[(size_t)(c0 + j) * nb + j];
            diag_sum += diag[c0 + j];
        }
        if (w_c > 0.0f)
            for (int j = 0; j < nb; j++) col_sum += col_lse[c0 + j];
    }
    float *row_lse = row_m; /* m + log l, in place */
    double row_sum = 0.0;
    for (int i = 0; i < N; i++) {
        row_lse[i] = row_m[i] + logf(row_l[i]);
        row_sum += row_lse[i];
    }
    float loss = (float)((w_r * row_sum + w_c * col_sum - (w_r + w_c) * diag_sum) / N);
    if (!want_grad) return loss;

    double dlogit = 0.0;
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        const float *tblk = txt + (size_t)c0 * D;
        if (!dense) loss_gram_block(blk, img, tblk, N, nb, D, s);
        dlogit += softmax_grad_block(blk, row_lse, col_lse + c0, diag, N, nb, c0, w_r, w_c,
                                     exclude_diag);
        loss_gram_block_backward(dimg, dtxt ? dtxt + (size_t)c0 * D : NULL, blk, img, tblk, N, nb,
                                 D, s);
    }
    if (want_dt) dscalars[0] += (float)dlogit;
    return loss;
}

static float infonce_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                      float *dscalars, const float *img, const float *txt,
                                      const float *scalars, int N, int D, float *ws) {
    return softmax_forward_backward(cfg, 0, dimg, dtxt, dscalars, img, txt, scalars, N, D, ws);
}

static float dcl_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                                  const float *img, const float *txt, const float *scalars, int N,
                                  int D, float *ws) {
    return softmax_forward_backward(cfg, 1, dimg, dtxt, dscalars, img, txt, scalars, N, D, ws);
}

const LossOps loss_infonce_ops = {
    .name = "infonce",
    .n_scalars = 1,
    .init_scalars = softmax_init_scalars,
    .workspace_floats = softmax_workspace_floats,
    .forward_backward = infonce_forward_backward,
};

const LossOps loss_dcl_ops = {
    .name = "dcl",
    .n_scalars = 1,
    .init_scalars = softmax_init_scalars,
    .workspace_floats = softmax_workspace_floats,
    .forward_backward = dcl_forward_backward,
};
