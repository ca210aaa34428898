/* siglip.c — the sigmoid loss of SigLIP (Zhai et al. 2023): every pair (i, j) is an independent
 * binary classification, positive on the diagonal.
 *
 * With u_ij = s I_i.T_j + b, s = exp(t), z_ij = +1 if i == j else -1:
 *   loss = (1/N) sum_ij softplus(-z_ij u_ij)
 *   G_ij = dL/du_ij = -(1/N) z_ij sigmoid(-z_ij u_ij)
 *   dI = s G T, dT = s G^T I, dt = sum_ij G_ij s I_i.T_j, db = sum_ij G_ij.
 * No term couples different pairs, so forward and backward are fused in one pass over the column
 * blocks (no LSE statistics, no recompute); dense is the single N x N block. The MPI local share
 * is rows [r0, r1) against every column.
 * Deliberately left out: the chunked all-to-all text exchange of the paper's multi-device version,
 * a clamp on exp(t) (the paper has none).
 */
#pragma GCC optimize("no-trapping-math") /* lets the block loop vectorise: see loss_impl.h */

#include <float.h>
#include <math.h>

#include "losses/loss_impl.h"

static size_t siglip_workspace_floats(const LossConfig *cfg, int N, int D, int M) {
    (void)D;
    return (size_t)M * loss_block_width(cfg, N);
}

/* t = ln init_logit_scale, b = init_bias; by default the paper's (Zhai et al. 2023): t = ln 10,
 * b = -10. */
static void siglip_init_scalars(const LossConfig *cfg, float *scalars) {
    float scale = cfg->init_logit_scale > 0.0f ? cfg->init_logit_scale : LOSS_SIGLIP_INIT_SCALE;
    scalars[0] = logf(scale);
    scalars[1] = cfg->init_bias;
}

/* The initial scalars must be finite, the scale positive (0 = the paper's). */
static int siglip_validate(const LossConfig *cfg, char *msg, size_t msg_size) {
    float scale = cfg->init_logit_scale;
    if (!(scale >= 0.0f && scale <= FLT_MAX))
        return loss_fail(msg, msg_size, "loss siglip: init_logit_scale must be finite and > 0 (got %g)",
                         (double)scale);
    if (!isfinite(cfg->init_bias))
        return loss_fail(msg, msg_size, "loss siglip: init_bias must be finite (got %g)", (double)cfg->init_bias);
    return 0;
}

typedef struct {
    double loss, dlogit, dbias;
} SiglipSums;

/* Loss terms of block blk [M, nb] (holding s I[r0:r0+M] T^T for global columns c0..); G replaces
 * it in place; n is the global batch size. */
/* The scale the loss applies, and the bias. */
static void siglip_log_values(const float *scalars, float *values) {
    values[0] = expf(scalars[0]);
    values[1] = scalars[1];
}

static SiglipSums siglip_block(float *blk, float b, int M, int n, int nb, int c0_minus_r0) {
    double loss = 0.0, dlogit = 0.0, dbias = 0.0;
    float inv_n = 1.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : loss, dlogit, dbias)
    for (int i = 0; i < M; i++) {
        float *row = blk + (size_t)i * nb;
        int dj = i - c0_minus_r0;
        float acc_loss = 0.0f, acc_dlogit = 0.0f, acc_dbias = 0.0f;
#pragma omp simd reduction(+ : acc_loss, acc_dlogit, acc_dbias)
        for (int j = 0; j < nb; j++) {
            float z = j == dj ? 1.0f : -1.0f;
            float zu = z * (row[j] + b);
            float e = ops_expf(-fabsf(zu));
            /* softplus(-zu) = max(-zu, 0) + log(1 + exp(-|zu|)); sigmoid(-zu) from the same e */
            acc_loss += (zu < 0.0f ? -zu : 0.0f) + loss_log1p01(e);
            float sig = (zu >= 0.0f ? e : 1.0f) / (1.0f + e);
            float g = -z * sig * inv_n;
            acc_dlogit += g * row[j];
            acc_dbias += g;
            row[j] = g;
        }
        loss += acc_loss;
        dlogit += acc_dlogit;
        dbias += acc_dbias;
    }
    return (SiglipSums){loss, dlogit, dbias};
}

static float siglip_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                     float *dscalars, const float *img, const float *txt,
                                     const float *scalars, int N, int D, int r0, int r1,
                                     float *ws) {
    float s = expf(scalars[0]), b = scalars[1];
    int tb = loss_block_width(cfg, N), M = r1 - r0;
    const float *ir = img + (size_t)r0 * D;
    double loss = 0.0, dlogit = 0.0, dbias = 0.0;
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        const float *tblk = txt + (size_t)c0 * D;
        loss_gram_block(ws, ir, tblk, M, nb, D, s);
        SiglipSums sums = siglip_block(ws, b, M, N, nb, c0 - r0);
        loss += sums.loss;
        dlogit += sums.dlogit;
        dbias += sums.dbias;
        loss_gram_block_backward(dimg ? dimg + (size_t)r0 * D : NULL,
                                 dtxt ? dtxt + (size_t)c0 * D : NULL, ws, ir, tblk, M, nb, D, s);
    }
    if (dscalars) {
        if (cfg->learn_temperature) dscalars[0] += (float)dlogit;
        dscalars[1] += (float)dbias;
    }
    return (float)(loss / N);
}

const LossOps loss_siglip_ops = {
    .name = "siglip",
    .n_scalars = 2,
    .scalar_names = {"logit_scale", "logit_bias"},
    .min_batch = 1,
    .has_one_sided = 0,
    .has_local = 1,
    .validate = siglip_validate,
    .init_scalars = siglip_init_scalars,
    .log_values = siglip_log_values,
    .workspace_floats = siglip_workspace_floats,
    .forward_backward = siglip_forward_backward,
};
