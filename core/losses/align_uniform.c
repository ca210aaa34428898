/* align_uniform.c — alignment + uniformity (Wang & Isola 2020): an explicit attraction of the
 * positive pairs and an explicit repulsion of every other pair, on each side separately.
 *
 *   loss = (1/N) sum_i |I_i - T_i|^2 + lambda (U(I) + U(T)),
 *   U(X) = log( 1/(N(N-1)) sum_{i != j} exp(E_ij) ),  E_ij = -2 |x_i - x_j|^2
 *        = LSE_{i != j}(E_ij) - log(N(N-1)),
 * with E_ij = 4 x_i.x_j - 2|x_i|^2 - 2|x_j|^2 from one sgemm per block. For W_ij = exp(E_ij - LSE)
 * (W_ii = 0, W symmetric): dU/dx_k = 8 (W X)_k - 8 (sum_j W_kj) x_k.
 * The pair LSE is streamed like infonce's row LSE (per-row running max/sum over column blocks,
 * then one LSE over the rows); the backward recomputes each block (dense: one block, kept).
 * Deliberately left out: a learnable temperature (the paper fixes t = 2 and alpha = 2), other
 * alignment exponents.
 */
#pragma GCC optimize("no-trapping-math") /* lets the block loops vectorise: see loss_impl.h */

#include <math.h>

#include "losses/loss_impl.h"

static size_t align_uniform_workspace_floats(const LossConfig *cfg, int N, int D, int M) {
    (void)D;
    (void)M; /* no local split: always the whole batch */
    /* block [N, nb] + squared norms, row max, row sum, row sum of W */
    return (size_t)N * loss_block_width(cfg, N) + 4 * (size_t)N;
}

static int align_uniform_validate(const LossConfig *cfg, char *msg, size_t msg_size) {
    if (!(isfinite(cfg->lambda) && cfg->lambda >= 0.0f))
        return loss_fail(msg, msg_size, "loss align_uniform: lambda must be finite and >= 0 (got %g)",
                         (double)cfg->lambda);
    return 0;
}

/* blk [N, nb] = E_ij for global columns c0..c0+nb of x [N, D]; sq [N] = |x_i|^2. */
static void energy_block(float *blk, const float *x, const float *sq, int N, int nb, int c0, int D) {
    loss_gram_block(blk, x, x + (size_t)c0 * D, N, nb, D, 4.0f);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = blk + (size_t)i * nb;
        for (int j = 0; j < nb; j++) row[j] -= 2.0f * (sq[i] + sq[c0 + j]);
    }
}

/* Turns the energy block into W (diagonal zeroed) in place and adds its row sums into rowsum. */
static void weight_block(float *blk, float *rowsum, float lse, int N, int nb, int c0) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = blk + (size_t)i * nb;
        int dj = i - c0;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < nb; j++) {
            float w = j == dj ? 0.0f : ops_expf(row[j] - lse);
            acc += w;
            row[j] = w;
        }
        rowsum[i] += acc;
    }
}

/* lambda U(x) for x [N, D]; adds lambda dU/dx into dx [N, D] unless dx is NULL. */
static double uniformity(float *dx, const float *x, float lambda, int N, int D, int tb, float *ws) {
    float *blk = ws, *sq = ws + (size_t)N * tb, *row_m = sq + N, *row_e = row_m + N,
          *rowsum = row_e + N;
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * D;
        double acc = 0.0;
        for (int k = 0; k < D; k++) acc += (double)xi[k] * xi[k];
        sq[i] = (float)acc;
        row_m[i] = -INFINITY;
        row_e[i] = 0.0f;
        rowsum[i] = 0.0f;
    }
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        energy_block(blk, x, sq, N, nb, c0, D);
        loss_lse_block(row_m, row_e, NULL, NULL, NULL, blk, N, nb, c0, 1);
    }
    /* LSE over all pairs = LSE over rows of the row LSEs */
    double gmax = -INFINITY, gsum = 0.0;
    for (int i = 0; i < N; i++) {
        row_m[i] += log1pf(row_e[i]);
        gmax = row_m[i] > gmax ? row_m[i] : gmax;
    }
    for (int i = 0; i < N; i++) gsum += exp(row_m[i] - gmax);
    double lse = gmax + log(gsum);
    double u = lse - log((double)N * (N - 1));
    if (!dx || lambda == 0.0f) return lambda * u;

    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        if (tb != N) energy_block(blk, x, sq, N, nb, c0, D);
        weight_block(blk, rowsum, (float)lse, N, nb, c0);
        loss_gram_block_backward(dx, NULL, blk, x, x + (size_t)c0 * D, N, nb, D, 8.0f * lambda);
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) dx[(size_t)i * D + k] -= 8.0f * lambda * rowsum[i] * x[(size_t)i * D + k];
    return lambda * u;
}

static float align_uniform_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                            float *dscalars, const float *img, const float *txt,
                                            const float *scalars, int N, int D, int r0, int r1,
                                            float *ws) {
    (void)dscalars;
    (void)scalars;
    (void)r0;
    (void)r1;
    double align = 0.0;
    float c = 2.0f / (float)N;
#pragma omp parallel for schedule(static) reduction(+ : align)
    for (int i = 0; i < N; i++) {
        const float *a = img + (size_t)i * D, *t = txt + (size_t)i * D;
        float acc = 0.0f;
        for (int k = 0; k < D; k++) {
            float diff = a[k] - t[k];
            acc += diff * diff;
            if (dimg) dimg[(size_t)i * D + k] += c * diff;
            if (dtxt) dtxt[(size_t)i * D + k] -= c * diff;
        }
        align += acc;
    }
    int tb = loss_block_width(cfg, N);
    double loss = align / N;
    loss += uniformity(dimg, img, cfg->lambda, N, D, tb, ws);
    loss += uniformity(dtxt, txt, cfg->lambda, N, D, tb, ws);
    return (float)loss;
}

const LossOps loss_align_uniform_ops = {
    .name = "align_uniform",
    .n_scalars = 0,
    .min_batch = 2,
    .has_one_sided = 0,
    .has_local = 0, /* the uniformity LSE runs over all pairs: no per-row share without a reduction */
    .validate = align_uniform_validate,
    .workspace_floats = align_uniform_workspace_floats,
    .forward_backward = align_uniform_forward_backward,
};
