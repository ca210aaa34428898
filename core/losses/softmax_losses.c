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
 * Dense (tile 0 or >= N): one block, kept between forward and backward, with multithreaded BLAS.
 * Tiled: square blocks of side tile, the rows cut into SOFTMAX_TILE_PARTS fixed parts that run in
 * parallel with single-threaded BLAS, each block's row and column statistics folded in while it
 * is in cache (two sweeps: maxima, then both exp sums); the forward keeps only the statistics,
 * the backward recomputes each block, turns it into G and applies both products to it. Each part
 * keeps its own column statistics, merged in part order; dk is summed in part order (each column
 * tile's share staged, then added after the previous part's), so results do not depend on the
 * thread count. The MPI local share (rows [r0, r1) of image->text, columns [r0, r1) of
 * text->image) runs two row passes, the second with I and T swapped.
 * Deliberately left out: a clamp in the forward (it kills dL/dt beyond the bound, so t could never
 * come back: the parameter is clamped after each step instead, as CLIP and open_clip do).
 */
#pragma GCC optimize("no-trapping-math") /* lets the block loops vectorise: see loss_impl.h */

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "losses/loss_impl.h"

/* One softmax pass: the logits s q k^T of queries q [M, D] (global rows r0.. of their side; query
 * i's positive is key r0 + i) against all keys k [N, D], the row cross-entropy with weight w_r
 * and, when w_c > 0 (then r0 = 0, M = N), the column one with weight w_c. */
typedef struct {
    const float *q, *k;
    int M, N, D, r0, tile; /* tile: block side (N: dense) */
    float s, w_r, w_c;
    int exclude_diag;
} Pass;

/* The statistics the forward leaves for the backward: row max, excess (then log-sum) and the
 * positives' logits [M]; column max and log-sum [N] (w_c > 0). */
typedef struct {
    float *row_m, *row_l, *diag, *col_m, *col_l;
} Stats;

static Stats stats_at(float *ws, int M, int N) {
    Stats st = {ws, ws + M, ws + 2 * (size_t)M, ws + 3 * (size_t)M, ws + 3 * (size_t)M + N};
    for (int i = 0; i < M; i++) st.row_m[i] = -INFINITY, st.row_l[i] = 0.0f;
    return st;
}

/* Log-sum-exps as (max m, log of the sum of exp(v - m)): the LSE is m + logl, never rounded to one
 * float, so exp(v - lse) = exp((v - m) - logl) and lse - L_ii = (m - L_ii) + logl keep tiny
 * differences. */
typedef struct {
    const float *m, *logl;
} Lse;

/* A logit block [R, C] on its way to G: its rows' and columns' LSEs, the positives' logits of its
 * rows (diag) and of its columns (col_diag, read only when w_c > 0), and row i's positive at block
 * column pos0 + i. */
typedef struct {
    Lse row, col;
    const float *diag, *col_diag;
    int C, pos0, exclude_diag;
    float w_r, w_c, inv_n;
} GradBlock;

/* Turns row i of the block, x [C], into G in place; returns its part of sum G_ij L_ij. */
static float softmax_grad_row(float *x, const GradBlock *b, int i) {
    int C = b->C, dj = b->pos0 + i;
    /* dcl: the positive is outside both softmaxes (and may exceed their LSE by far) */
    int skip = b->exclude_diag ? dj : -1;
    float rm = b->row.m[i], rl = b->row.logl[i], l_ii = b->diag[i], acc = 0.0f;
    float w_r = b->w_r, w_c = b->w_c, inv_n = b->inv_n;
    const float *cm = b->col.m, *cl = b->col.logl, *l_jj = b->col_diag;
    if (w_c > 0.0f) {
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < C; j++) {
            float v = j == skip ? -INFINITY : x[j];
            float p = w_r * ops_expf((v - rm) - rl), q = w_c * ops_expf((v - cm[j]) - cl[j]);
            acc += p * (x[j] - l_ii) + q * (x[j] - l_jj[j]);
            x[j] = (p + q) * inv_n;
        }
    } else {
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < C; j++) {
            float v = j == skip ? -INFINITY : x[j];
            float p = w_r * ops_expf((v - rm) - rl);
            acc += p * (x[j] - l_ii);
            x[j] = p * inv_n;
        }
    }
    if (dj >= 0 && dj < C) {
        /* the label term: P_ii - 1 = expm1(log P_ii), exact when P_ii is within 1e-8 of 1
         * (dcl: P_ii = 0) */
        float g = b->exclude_diag ? -w_r : w_r * expm1f((l_ii - rm) - rl);
        if (w_c > 0.0f) g += b->exclude_diag ? -w_c : w_c * expm1f((l_ii - cm[dj]) - cl[dj]);
        x[dj] = g * inv_n;
    }
    return acc;
}

/* The loss from the finished statistics: (1/N) sum [w_r (lse_r(i) - L_ii) + w_c (lse_c(i) - L_ii)],
 * each term as (max - L_ii) + log-sum, summed in double in index order. */
static float softmax_loss_value(const Pass *ps, const Stats *st) {
    double row_sum = 0.0, col_sum = 0.0;
    for (int i = 0; i < ps->M; i++) row_sum += (double)(st->row_m[i] - st->diag[i]) + st->row_l[i];
    for (int j = 0; ps->w_c > 0.0f && j < ps->N; j++)
        col_sum += (double)(st->col_m[j] - st->diag[j]) + st->col_l[j];
    return (float)((ps->w_r * row_sum + ps->w_c * col_sum) / ps->N);
}

/* ---------- dense: one M x N block, kept between forward and backward ---------- */

/* Returns the pass's loss; accumulates dq [M, D], dk [N, D] (either may be NULL) and *dlogit
 * (sum G_ij L_ij / N, if want_dt). ws: Stats, then the block [M, N], then column scratch. */
static float dense_pass(const Pass *ps, float *dq, float *dk, double *dlogit, int want_dt, float *ws) {
    int M = ps->M, N = ps->N;
    Stats st = stats_at(ws, M, N);
    float *blk = st.col_l + N, *parts = blk + (size_t)M * N;
    loss_gram_block(blk, ps->q, ps->k, M, N, ps->D, ps->s);
    loss_lse_block(st.row_m, st.row_l, ps->w_c > 0.0f ? st.col_m : NULL, st.col_l, parts, blk, M, N,
                   -ps->r0, ps->exclude_diag);
    for (int i = 0; i < M; i++) {
        st.diag[i] = blk[(size_t)i * N + ps->r0 + i];
        st.row_l[i] = log1pf(st.row_l[i]); /* excess -> log-sum, in place */
    }
    float loss = softmax_loss_value(ps, &st);
    if (!dq && !dk && !want_dt) return loss;
    GradBlock gb = {{st.row_m, st.row_l}, {st.col_m, st.col_l}, st.diag, st.diag, N, ps->r0,
                    ps->exclude_diag, ps->w_r, ps->w_c, 1.0f / (float)N};
    double acc = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (int i = 0; i < M; i++) acc += softmax_grad_row(blk + (size_t)i * N, &gb, i);
    *dlogit += acc / N;
    loss_gram_block_backward(dq, dk, blk, ps->q, ps->k, M, N, ps->D, ps->s);
    return loss;
}

/* ---------- tiled: square blocks of side tile, parallel over fixed parts of the rows ---------- */

/* The parts: rows are cut into this many runs of whole row tiles (fewer when there are fewer row
 * tiles), fixed so that results do not depend on the thread count. */
#define SOFTMAX_TILE_PARTS 4

static int tile_parts(int M, int T) {
    int row_tiles = (M + T - 1) / T;
    return row_tiles < SOFTMAX_TILE_PARTS ? row_tiles : SOFTMAX_TILE_PARTS;
}

/* One part's scratch: its block [T, T], fold scratch [4 T], its rows' column statistics
 * cm, ce [N] (forward, w_c > 0) and its share of dk for one column tile, stage [T, D]. */
typedef struct {
    float *blk, *scr, *cm, *ce, *stage;
} TilePart;

static size_t tile_part_floats(int N, int D, int T) {
    return (size_t)T * T + 4 * (size_t)T + 2 * (size_t)N + (size_t)T * D;
}

static TilePart tile_part_at(float *base, int N, int T) {
    TilePart tp;
    tp.blk = base;
    tp.scr = tp.blk + (size_t)T * T;
    tp.cm = tp.scr + 4 * (size_t)T;
    tp.ce = tp.cm + N;
    tp.stage = tp.ce + N;
    return tp;
}

/* Folds block blk [R, C] into the running row statistics (m, e) [R] of its rows and (cm, ce) [C]
 * of its columns (loss_lse_update's form) in two sweeps: maxima, then both exp sums; entry
 * (i, pos0 + i) is skipped when exclude_diag. cm NULL: rows only. scr [3 C + R]. */
static void tile_fold(float *m, float *e, float *cm, float *ce, const float *blk, int R, int C,
                      int pos0, int exclude_diag, float *scr) {
    if (!cm) {
        for (int i = 0; i < R; i++)
            loss_lse_fold_row(&m[i], &e[i], blk + (size_t)i * C, C, exclude_diag ? pos0 + i : -1);
        return;
    }
    float *bmax = scr, *below = scr + C, *ties = scr + 2 * (size_t)C, *rmax = scr + 3 * (size_t)C;
    for (int j = 0; j < C; j++) bmax[j] = -INFINITY, below[j] = 0.0f, ties[j] = 0.0f;
    for (int i = 0; i < R; i++) {
        const float *x = blk + (size_t)i * C;
        int skip = exclude_diag ? pos0 + i : -1;
        float rm = -INFINITY;
#pragma omp simd reduction(max : rm)
        for (int j = 0; j < C; j++) {
            float v = j == skip ? -INFINITY : x[j];
            rm = v > rm ? v : rm;
            bmax[j] = v > bmax[j] ? v : bmax[j];
        }
        rmax[i] = rm;
    }
    for (int i = 0; i < R; i++) {
        const float *x = blk + (size_t)i * C;
        int skip = exclude_diag ? pos0 + i : -1;
        float ref = rmax[i] > m[i] ? rmax[i] : m[i], rb = 0.0f, rt = 0.0f;
#pragma omp simd reduction(+ : rb, rt)
        for (int j = 0; j < C; j++) {
            int in = j != skip;
            float cref = bmax[j] > cm[j] ? bmax[j] : cm[j];
            float er = ops_expf(x[j] - ref), ec = ops_expf(x[j] - cref);
            rb += in && x[j] < ref ? er : 0.0f;
            rt += in && x[j] == ref ? 1.0f : 0.0f;
            below[j] += in && x[j] < cref ? ec : 0.0f;
            ties[j] += in && x[j] == cref ? 1.0f : 0.0f;
        }
        loss_lse_update(&m[i], &e[i], rmax[i], rb, rt);
    }
    for (int j = 0; j < C; j++) loss_lse_update(&cm[j], &ce[j], bmax[j], below[j], ties[j]);
}
/* Rows [a_lo, a_hi) (whole row tiles) against every column tile: their row statistics and
 * positives' logits, and the part's column statistics tp->cm, tp->ce [N] (w_c > 0). */
static void tile_forward_part(const Pass *ps, const Stats *st, const TilePart *tp, int a_lo, int a_hi) {
    int T = ps->tile, N = ps->N, D = ps->D;
    float *cm = ps->w_c > 0.0f ? tp->cm : NULL;
    for (int j = 0; cm && j < N; j++) cm[j] = -INFINITY, tp->ce[j] = 0.0f;
    for (int c0 = 0; c0 < N; c0 += T) {
        int C = N - c0 < T ? N - c0 : T;
        for (int a0 = a_lo; a0 < a_hi; a0 += T) {
            int R = a_hi - a0 < T ? a_hi - a0 : T, pos0 = ps->r0 + a0 - c0;
            loss_gram_block(tp->blk, ps->q + (size_t)a0 * D, ps->k + (size_t)c0 * D, R, C, D, ps->s);
            tile_fold(st->row_m + a0, st->row_l + a0, cm ? cm + c0 : NULL, tp->ce + c0, tp->blk, R, C,
                      pos0, ps->exclude_diag, tp->scr);
            for (int i = pos0 < 0 ? -pos0 : 0; i < R && pos0 + i < C; i++)
                st->diag[a0 + i] = tp->blk[(size_t)i * C + pos0 + i];
        }
    }
}

/* The pass's column statistics col_m, col_l from the P parts' (cm, ce), merged in part order. */
static void tile_merge_columns(const Stats *st, const TilePart *tp, int P, int N) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < N; j++) {
        float m = -INFINITY, e = 0.0f;
        for (int p = 0; p < P; p++) {
            float pm = tp[p].cm[j], pe = tp[p].ce[j]; /* the part's sum is (1 + pe) exp(pm) */
            if (pm >= m) /* its max is the reference: a tie, plus pe below it */
                loss_lse_update(&m, &e, pm, pe, 1.0f);
            else
                loss_lse_update(&m, &e, pm, (1.0f + pe) * ops_expf(pm - m), 0.0f);
        }
        st->col_m[j] = m;
        st->col_l[j] = log1pf(e);
    }
}

/* The backward of rows [a_lo, a_hi), part p: each block recomputed and turned into G; s G k goes
 * into dq's rows and s G^T q into dk one column tile at a time: the part's share of a tile is
 * staged, then added once part p - 1 has added its own (done[p] counts the tiles part p has
 * added), so dk sums in part order whatever the threads. Returns the part's sum of G_ij L_ij. */
static double tile_backward_part(const Pass *ps, const Stats *st, const TilePart *tp, float *dq,
                                 float *dk, int p, int a_lo, int a_hi, atomic_int *done) {
    int T = ps->tile, N = ps->N, D = ps->D;
    double acc = 0.0;
    for (int c0 = 0, c = 0; c0 < N; c0 += T, c++) {
        int C = N - c0 < T ? N - c0 : T;
        const float *kc = ps->k + (size_t)c0 * D;
        if (dk) memset(tp->stage, 0, (size_t)C * D * sizeof(float));
        for (int a0 = a_lo; a0 < a_hi; a0 += T) {
            int R = a_hi - a0 < T ? a_hi - a0 : T;
            const float *qa = ps->q + (size_t)a0 * D;
            loss_gram_block(tp->blk, qa, kc, R, C, D, ps->s);
            GradBlock gb = {{st->row_m + a0, st->row_l + a0}, {st->col_m + c0, st->col_l + c0},
                            st->diag + a0, ps->w_c > 0.0f ? st->diag + c0 : NULL, C,
                            ps->r0 + a0 - c0, ps->exclude_diag, ps->w_r, ps->w_c, 1.0f / (float)N};
            for (int i = 0; i < R; i++) acc += softmax_grad_row(tp->blk + (size_t)i * C, &gb, i);
            loss_gram_block_backward(dq ? dq + (size_t)a0 * D : NULL, dk ? tp->stage : NULL, tp->blk,
                                     qa, kc, R, C, D, ps->s);
        }
        if (!dk) continue;
        while (p > 0 && atomic_load_explicit(&done[p - 1], memory_order_acquire) <= c) sched_yield();
        float *dkc = dk + (size_t)c0 * D;
        for (size_t x = 0; x < (size_t)C * D; x++) dkc[x] += tp->stage[x];
        atomic_store_explicit(&done[p], c + 1, memory_order_release);
    }
    return acc;
}

/* As dense_pass, in square blocks of side ps->tile: the forward keeps only the statistics, the
 * backward recomputes each block. Parts go to threads in order (a part waits only for the one
 * before it). BLAS inside the parallel regions runs on one thread (OpenMP OpenBLAS does so
 * within an active region). ws: Stats, then the parts' scratch. */
static float tiled_pass(const Pass *ps, float *dq, float *dk, double *dlogit, int want_dt, float *ws) {
    int M = ps->M, N = ps->N, D = ps->D, T = ps->tile, P = tile_parts(M, T);
    int row_tiles = (M + T - 1) / T, lo[SOFTMAX_TILE_PARTS + 1];
    Stats st = stats_at(ws, M, N);
    TilePart tp[SOFTMAX_TILE_PARTS];
    for (int p = 0; p < P; p++)
        tp[p] = tile_part_at(st.col_l + N + (size_t)p * tile_part_floats(N, D, T), N, T);
    for (int p = 0; p <= P; p++) {
        long a = (long)row_tiles * p / P * T; /* parts start at row tiles */
        lo[p] = a < M ? (int)a : M;
    }
    atomic_int next = 0;
#pragma omp parallel
    for (int p; (p = atomic_fetch_add(&next, 1)) < P;) tile_forward_part(ps, &st, &tp[p], lo[p], lo[p + 1]);
    if (ps->w_c > 0.0f) tile_merge_columns(&st, tp, P, N);
    for (int i = 0; i < M; i++) st.row_l[i] = log1pf(st.row_l[i]); /* excess -> log-sum */
    float loss = softmax_loss_value(ps, &st);
    if (!dq && !dk && !want_dt) return loss;
    atomic_int done[SOFTMAX_TILE_PARTS];
    double part_dt[SOFTMAX_TILE_PARTS];
    for (int p = 0; p < P; p++) atomic_init(&done[p], 0);
    atomic_store(&next, 0);
#pragma omp parallel
    for (int p; (p = atomic_fetch_add(&next, 1)) < P;)
        part_dt[p] = tile_backward_part(ps, &st, &tp[p], dq, dk, p, lo[p], lo[p + 1], done);
    double acc = 0.0;
    for (int p = 0; p < P; p++) acc += part_dt[p];
    *dlogit += acc / N;
    return loss;
}

static size_t softmax_workspace_floats(const LossConfig *cfg, int N, int D, int M) {
    int T = loss_block_width(cfg, N);
    size_t stats = 3 * (size_t)M + 2 * (size_t)N;
    if (T == N) return stats + (size_t)M * N + (size_t)3 * LOSS_LSE_PARTS * N;
    return stats + (size_t)tile_parts(M, T) * tile_part_floats(N, D, T);
}

/* The pass of queries q[r0:r1] against keys k (both [N, D]), dense or tiled by cfg->tile;
 * accumulates dq (rows r0..), dk, *dlogit. */
static float softmax_pass(const LossConfig *cfg, Pass ps, float *dq, float *dk, double *dlogit,
                          int want_dt, float *ws) {
    ps.tile = loss_block_width(cfg, ps.N);
    ps.q += (size_t)ps.r0 * ps.D;
    float *dqr = dq ? dq + (size_t)ps.r0 * ps.D : NULL;
    return ps.tile == ps.N ? dense_pass(&ps, dqr, dk, dlogit, want_dt, ws)
                           : tiled_pass(&ps, dqr, dk, dlogit, want_dt, ws);
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
        Pass ps = {img, txt, N, N, D, 0, 0, s, w_r, w_c, exclude_diag};
        loss = softmax_pass(cfg, ps, dimg, dtxt, &dlogit, want_dt, ws);
    } else {
        /* a column of I T^T is a row of T I^T: the text->image share is a row pass with the
         * roles of the two sides swapped */
        Pass ps = {img, txt, r1 - r0, N, D, r0, 0, s, w_r, 0.0f, exclude_diag};
        loss = softmax_pass(cfg, ps, dimg, dtxt, &dlogit, want_dt, ws);
        if (w_c > 0.0f) {
            Pass swapped = {txt, img, r1 - r0, N, D, r0, 0, s, w_c, 0.0f, exclude_diag};
            loss += softmax_pass(cfg, swapped, dtxt, dimg, &dlogit, want_dt, ws);
        }
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
