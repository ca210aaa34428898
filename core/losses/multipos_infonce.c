/* multipos_infonce.c — multi-positive InfoNCE: infonce for batches with duplicate captions, where a
 * duplicate is another positive instead of a (false) negative.
 *
 * Duplicates are read off the embeddings, since the loss sees nothing else: texts j and k carry
 * the same caption when their rows T_j and T_k are bitwise identical (the text tower is a
 * deterministic function of the tokens, so equal captions embed to equal rows; captions a
 * bag-of-words tower cannot tell apart count as equal too). Checked on shapes batches of 512 at
 * caption_noise 0, CBOW and transformer towers: the bitwise classes were exactly the token classes
 * (about 426 per batch, so 1 caption in 6 is a duplicate that infonce treats as a negative). M_ij = [T_i == T_j] (M_ii = 1) is the
 * positive mask of both directions: image i's positive texts, and text j's positive images.
 *
 * With L = s I T^T (s = exp(t), as infonce), P_i = {j : M_ij = 1}, every positive is
 * classified against the negatives only (the other positives are not in its denominator):
 *   row_i = (1/|P_i|) sum_{p in P_i} [log(e^{L_ip} + Z_i) - L_ip],  Z_i = sum_{n not in P_i} e^{L_in}
 *         = (1/|P_i|) sum_p softplus(lz_i - L_ip),  lz_i = log Z_i
 * col_j likewise over the column L_.j, and loss = (1/N) sum_i (w_r row_i + w_c col_i) with the
 * weights of infonce (1/2, 1/2; one-sided 1, 0). Without duplicates it is infonce. Gradients of
 * row i: G_ip = -sigmoid(lz_i - L_ip) / |P_i| for a positive, G_in = a_i exp(L_in - lz_i) for a
 * negative, a_i = -sum_p G_ip; row i's G sums to 0, so dt = sum G_ij (L_ij - L_ii) (no
 * cancellation against the label terms). A row without negatives contributes 0.
 * Each direction is one row pass (columns: I and T swapped): the negatives' LSE streamed over
 * column blocks, the positives' terms from their dot products, then G block by block (dense: one
 * block, kept).
 * Deliberately left out: the MPI local split, dcl's variant, near-duplicates (an exact match only).
 */
#pragma GCC optimize("no-trapping-math") /* lets the block loops vectorise: see loss_impl.h */

#include <math.h>
#include <string.h>

#include "losses/loss_impl.h"

/* The class bookkeeping is stored as int in the float workspace (allocated storage takes the type
 * of what is stored in it; the two types have one size). */
_Static_assert(sizeof(int) == sizeof(float), "int and float share workspace slots");

static size_t multipos_workspace_floats(const LossConfig *cfg, int N, int D, int M) {
    (void)D;
    (void)M; /* no local split: always the whole batch */
    /* block [N, nb] + row max, sum (then lz), a, diagonal + class first, next member, size */
    return (size_t)N * loss_block_width(cfg, N) + 7 * (size_t)N;
}

/* first [N]: the smallest index of each row's class; next [N]: the next member of its class, or
 * -1; size [N]: its class's size. Rows are compared bitwise, each against the classes seen. */
static void multipos_classes(int *first, int *next, int *size, const float *txt, int N, int D) {
    for (int i = 0; i < N; i++) {
        first[i] = i;
        next[i] = -1;
        size[i] = 0;
        for (int j = 0; j < i; j++) {
            if (first[j] != j || memcmp(txt + (size_t)i * D, txt + (size_t)j * D, sizeof(float) * D))
                continue;
            first[i] = j;
            int last = j;
            while (next[last] >= 0) last = next[last];
            next[last] = i;
            break;
        }
    }
    for (int i = 0; i < N; i++) size[first[i]]++;
    for (int i = 0; i < N; i++) size[i] = size[first[i]];
}

typedef struct {
    const int *first, *next, *size;
} Classes;

/* Folds the negatives of block blk [N, nb] (global columns c0..) into the row max m and sum l. */
static void multipos_lse_block(float *m, float *l, const float *blk, const Classes *cl, int N,
                               int nb, int c0) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *row = blk + (size_t)i * nb;
        const int *fj = cl->first + c0;
        int fi = cl->first[i];
        float bm = -INFINITY;
        for (int j = 0; j < nb; j++) bm = fj[j] != fi && row[j] > bm ? row[j] : bm;
        if (bm == -INFINITY) continue; /* no negative in this block */
        float ref = bm > m[i] ? bm : m[i], s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < nb; j++) s += fj[j] != fi ? ops_expf(row[j] - ref) : 0.0f;
        l[i] = l[i] * ops_expf(m[i] - ref) + s;
        m[i] = ref;
    }
}

/* Turns block blk [N, nb] into w G in place; returns its part of w sum G_ij (L_ij - L_ii). */
static double multipos_grad_block(float *blk, const float *lz, const float *a, const float *diag,
                                  const Classes *cl, int N, int nb, int c0, float w) {
    double dlogit = 0.0;
    float scale = w / (float)N;
#pragma omp parallel for schedule(static) reduction(+ : dlogit)
    for (int i = 0; i < N; i++) {
        float *row = blk + (size_t)i * nb;
        const int *fj = cl->first + c0;
        int fi = cl->first[i];
        float inv_p = 1.0f / (float)cl->size[i], acc = 0.0f;
        for (int j = 0; j < nb; j++) {
            float v = row[j], g;
            if (fj[j] == fi) /* a positive: -sigmoid(lz - v) / |P| (0 when lz = -inf) */
                g = -inv_p / (1.0f + expf(v - lz[i]));
            else
                g = a[i] * expf(v - lz[i]);
            acc += g * (v - diag[i]);
            row[j] = g * scale;
        }
        dlogit += acc;
    }
    return dlogit * w / N;
}

/* One direction: queries q against keys k (both [N, D]), weight w. Returns w/N sum_i of the rows'
 * terms; accumulates dq, dk (may be NULL) and *dlogit. */
static float multipos_pass(float *dq, float *dk, double *dlogit, const float *q, const float *k,
                           const Classes *cl, int N, int D, float s, float w, int tile, int grads,
                           float *ws) {
    int tb = tile > 0 && tile < N ? tile : N;
    float *blk = ws, *m = ws + (size_t)N * tb, *l = m + N, *a = l + N, *diag = a + N;
    for (int i = 0; i < N; i++) m[i] = -INFINITY, l[i] = 0.0f;
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        loss_gram_block(blk, q, k + (size_t)c0 * D, N, nb, D, s);
        multipos_lse_block(m, l, blk, cl, N, nb, c0);
    }
    float *lz = m; /* log Z_i in place; -inf for a row without negatives */
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        lz[i] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
        const float *qi = q + (size_t)i * D;
        double row = 0.0, ai = 0.0;
        for (int p = cl->first[i]; p >= 0; p = cl->next[p]) {
            const float *kp = k + (size_t)p * D;
            float x = 0.0f;
            for (int d = 0; d < D; d++) x += qi[d] * kp[d];
            x *= s;
            if (p == i) diag[i] = x;
            double z = (double)lz[i] - x; /* softplus(z) and sigmoid(z), stable */
            row += z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
            ai += 1.0 / (1.0 + exp(-z));
        }
        total += row / cl->size[i];
        a[i] = (float)(ai / cl->size[i]);
    }
    if (!grads) return (float)(w * total / N);
    for (int c0 = 0; c0 < N; c0 += tb) {
        int nb = N - c0 < tb ? N - c0 : tb;
        const float *kb = k + (size_t)c0 * D;
        if (tb != N) loss_gram_block(blk, q, kb, N, nb, D, s);
        *dlogit += multipos_grad_block(blk, lz, a, diag, cl, N, nb, c0, w);
        loss_gram_block_backward(dq, dk ? dk + (size_t)c0 * D : NULL, blk, q, kb, N, nb, D, s);
    }
    return (float)(w * total / N);
}

static float multipos_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                       float *dscalars, const float *img, const float *txt,
                                       const float *scalars, int N, int D, int r0, int r1,
                                       float *ws) {
    (void)r0;
    (void)r1;
    float s = expf(scalars[0]);
    int want_dt = dscalars && cfg->learn_temperature;
    int grads = dimg || dtxt || want_dt;
    int tb = loss_block_width(cfg, N);
    int *first = (int *)(ws + (size_t)N * tb + 4 * (size_t)N), *next = first + N, *size = next + N;
    multipos_classes(first, next, size, txt, N, D);
    Classes cl = {first, next, size};
    double dlogit = 0.0;
    float w_r = cfg->one_sided ? 1.0f : 0.5f;
    float loss = multipos_pass(dimg, dtxt, &dlogit, img, txt, &cl, N, D, s, w_r, cfg->tile, grads, ws);
    if (!cfg->one_sided) /* text -> image: the columns, as rows of T I^T; M is symmetric */
        loss += multipos_pass(dtxt, dimg, &dlogit, txt, img, &cl, N, D, s, 0.5f, cfg->tile, grads, ws);
    if (want_dt) dscalars[0] += (float)dlogit;
    return loss;
}

const LossOps loss_multipos_infonce_ops = {
    .name = "multipos_infonce",
    .n_scalars = 1,
    .scalar_names = {"logit_scale"},
    .min_batch = 1,
    .has_one_sided = 1,
    .has_local = 0,
    .validate = loss_temperature_validate,
    .init_scalars = loss_temperature_init,
    .clamp_scalars = loss_temperature_clamp,
    .log_values = loss_temperature_log,
    .workspace_floats = multipos_workspace_floats,
    .forward_backward = multipos_forward_backward,
};
