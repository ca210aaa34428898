/* attention.c — the core of causal multi-head self-attention (softmax(q k^T / sqrt(hs)) v per
 * head), forward/backward, after llm.c: OpenMP over the independent (b, h) pairs, each head's
 * products as short vector loops inside, no BLAS (T and hs are small here, and BLAS must not run
 * inside an OpenMP region). An inference-only forward over a forest of token rows (shared
 * prefixes computed once) serves zero-shot scoring of many sentences.
 * Deliberately left out: flash-style tiling, dropout, non-causal and cross attention. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "ops.h"

/* The training kernels take one (b, h) pair at a time, key-major: scores, exponentials and
 * weights as rows st[j] over the queries t (padded to Tq, a multiple of ATT_VW), so a row of scores
 * is ATT_VW-wide products (k_j[i] broadcast against the queries transposed, [hs, Tq]) and each
 * query's max, sum and normalisation run down the rows, across vectors, where a query-major row
 * needed a horizontal reduction each (and the sums of products one per key). Queries t < j see no
 * key j: their scores are -inf, their weights 0. Forward + backward 1.5x faster than one (b, t, h)
 * row at a time on the text tower's shapes (B 256, T 24, C 128, 4 heads, one thread, cache-warm:
 * 7.7 -> 5.0 ms); in a training step the kernels wait on memory (q, k, v, att) as much as on this. */
#define ATT_VW 16
typedef float AttVec __attribute__((vector_size(ATT_VW * sizeof(float))));
#define ATT_PAD(T) (((T) + ATT_VW - 1) / ATT_VW * ATT_VW)
#define ATT_COL0(j) ((j) / ATT_VW * ATT_VW) /* the first query column key j's row needs */
/* GCC vectorises for 256-bit registers on AVX-512 machines unless told otherwise, and contracts
 * a*b+c into an FMA only when told (-std=c11 switches contraction off): both for the training
 * kernels only, down to the pop below, so the tree attention's rounding stays as it was. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#define ATT_WIDE __attribute__((target("prefer-vector-width=512")))
#else
#define ATT_WIDE
#endif

/* mt [hs, Tq] = the T rows m + t*ld [hs], transposed; columns T .. Tq-1 zero. */
ATT_WIDE static void att_transpose(float *restrict mt, const float *restrict m, int T, int Tq, int hs, int ld) {
    for (int i = 0; i < hs; i++) {
        for (int t = 0; t < T; t++) mt[(size_t)i * Tq + t] = m[(size_t)t * ld + i];
        for (int t = T; t < Tq; t++) mt[(size_t)i * Tq + t] = 0.0f;
    }
}

/* *out = sum over k < n of w[k * ws] * the vector at v + k * vs: four partial sums over k mod 4
 * (one register would wait on each add), added as (s0 + s1) + (s2 + s3). */
ATT_WIDE static inline __attribute__((always_inline)) void att_vec_sum(AttVec *out, const float *restrict w, size_t ws,
                                                                      const float *restrict v, size_t vs, int n) {
    AttVec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, r0, r1, r2, r3;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        __builtin_memcpy(&r0, v + k * vs, sizeof r0);
        __builtin_memcpy(&r1, v + (k + 1) * vs, sizeof r1);
        __builtin_memcpy(&r2, v + (k + 2) * vs, sizeof r2);
        __builtin_memcpy(&r3, v + (k + 3) * vs, sizeof r3);
        a0 += w[k * ws] * r0;
        a1 += w[(k + 1) * ws] * r1;
        a2 += w[(k + 2) * ws] * r2;
        a3 += w[(k + 3) * ws] * r3;
    }
    for (; k < n; k++) {
        __builtin_memcpy(&r0, v + k * vs, sizeof r0);
        a0 += w[k * ws] * r0;
    }
    *out = (a0 + a1) + (a2 + a3);
}

/* s [n] = x [hs] . column c of mt [hs, Tq] for c < n (a multiple of ATT_VW; s, mt already offset
 * to the first column): x[i] broadcast against row i, ATT_VW columns at a time. */
ATT_WIDE static void att_row_products(float *restrict s, const float *restrict x, const float *restrict mt, int hs,
                                      int Tq, int n) {
    for (int c = 0; c < n; c += ATT_VW) {
        AttVec sum;
        att_vec_sum(&sum, x, 1, mt + c, (size_t)Tq, hs);
        __builtin_memcpy(s + c, &sum, sizeof sum);
    }
}

/* o [hs] += sum over r < n of w[r * ws] * the row m + r*ld [hs], ATT_VW columns at a time. */
ATT_WIDE static void att_weighted_rows(float *restrict o, const float *restrict w, int ws, const float *restrict m,
                                       int ld, int n, int hs) {
    int i = 0;
    for (; i + ATT_VW <= hs; i += ATT_VW) {
        AttVec sum, r;
        att_vec_sum(&sum, w, (size_t)ws, m + i, (size_t)ld, n);
        __builtin_memcpy(&r, o + i, sizeof r);
        r += sum;
        __builtin_memcpy(o + i, &r, sizeof r);
    }
    for (; i < hs; i++) {
        float acc = 0.0f;
        for (int k = 0; k < n; k++) acc += w[(size_t)k * ws] * m[(size_t)k * ld + i];
        o[i] += acc;
    }
}

/* st [T, Tq] := scale * k_j . q_t for t >= j, -inf for t < j (from ATT_COL0(j) on; the columns
 * before it are never read); qt [hs, Tq] the queries transposed. */
ATT_WIDE static void att_scores(float *restrict st, const float *restrict qt, const float *restrict k, int T, int Tq,
                                int hs, int ld, float scale) {
    for (int j = 0; j < T; j++) {
        const int c0 = ATT_COL0(j);
        float *restrict row = st + (size_t)j * Tq;
        att_row_products(row + c0, k + (size_t)j * ld, qt + c0, hs, Tq, Tq - c0);
        for (int c = c0; c < Tq; c++) {
            const float v = row[c] * scale;
            row[c] = c >= j ? v : -INFINITY;
        }
    }
}

/* st [T, Tq] := softmax over each column (query) of the keys j <= t, in place. */
ATT_WIDE static void att_softmax_columns(float *restrict st, int T, int Tq) {
    float mx[Tq], sum[Tq];
    for (int c = 0; c < Tq; c++) mx[c] = -INFINITY, sum[c] = 0.0f;
    for (int j = 0; j < T; j++)
        for (int c = ATT_COL0(j); c < Tq; c++) {
            const float v = st[(size_t)j * Tq + c];
            mx[c] = v > mx[c] ? v : mx[c];
        }
    for (int j = 0; j < T; j++)
        for (int c = ATT_COL0(j); c < Tq; c++) {
            const float e = ops_expf(st[(size_t)j * Tq + c] - mx[c]);
            st[(size_t)j * Tq + c] = e;
            sum[c] += e;
        }
    for (int c = 0; c < Tq; c++) sum[c] = 1.0f / sum[c];
    for (int j = 0; j < T; j++)
        for (int c = ATT_COL0(j); c < Tq; c++) st[(size_t)j * Tq + c] *= sum[c];
}

/* dst [T, T] = st [T, Tq] where t >= j, 0 where t < j. */
ATT_WIDE static void att_store_keys(float *restrict dst, const float *restrict st, int T, int Tq) {
    for (int j = 0; j < T; j++) {
        const int c0 = ATT_COL0(j);
        float *restrict d = dst + (size_t)j * T;
        const float *restrict s = st + (size_t)j * Tq;
        for (int t = 0; t < c0; t++) d[t] = 0.0f;
        for (int t = c0; t < T; t++) d[t] = t >= j ? s[t] : 0.0f;
    }
}

/* A head's scratch, one per thread: a [hs, Tq] transpose and a [T, Tq] block of scores (on the
 * heap: with a 4096-wide head the transpose alone is 1.3 MB). */
static size_t att_scratch_floats(int T, int hs) { return (size_t)(hs + T) * ATT_PAD(T); }

/* One (b, h): rows q, k, v of stride 3C at qkv (+C, +2C), out rows of stride C; pre, att [T, T]
 * key-major. */
ATT_WIDE static void att_head_forward(float *out, float *restrict pre, float *restrict att, float *scratch,
                                      const float *qkv, int T, int C, int hs) {
    const int C3 = 3 * C, Tq = ATT_PAD(T);
    float *restrict qt = scratch, *restrict st = scratch + (size_t)hs * Tq;
    att_transpose(qt, qkv, T, Tq, hs, C3);
    att_scores(st, qt, qkv + C, T, Tq, hs, C3, 1.0f / sqrtf((float)hs));
    /* masked (earlier) queries are stored as 0 so the saved buffers are fully defined */
    att_store_keys(pre, st, T, Tq);
    att_softmax_columns(st, T, Tq);
    att_store_keys(att, st, T, Tq);
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * C;
        for (int i = 0; i < hs; i++) o[i] = 0.0f;
        att_weighted_rows(o, att + t, T, qkv + 2 * C, C3, t + 1, hs);
    }
}

/* One (b, h), as att_head_forward: dqkv rows of stride 3C, dout rows of stride C; dpre, datt
 * [T, T] key-major (overwritten), att [T, T] key-major. The softmax backward uses
 * dpre = a * (da - sum over keys of a * da): O(T) per query instead of llm.c's O(T^2). */
ATT_WIDE static void att_head_backward(float *dqkv, float *restrict dpre, float *restrict datt, float *scratch,
                                       const float *dout, const float *qkv, const float *restrict att, int T, int C,
                                       int hs) {
    const int C3 = 3 * C, Tq = ATT_PAD(T);
    const float scale = 1.0f / sqrtf((float)hs);
    float *restrict dyt = scratch, *restrict da = scratch + (size_t)hs * Tq, a_da[Tq];
    att_transpose(dyt, dout, T, Tq, hs, C);
    /* through out = sum_j a[j] v[j]: da[j][t] = dy_t . v_j */
    for (int j = 0; j < T; j++) {
        const int c0 = ATT_COL0(j);
        att_row_products(da + (size_t)j * Tq + c0, qkv + (size_t)j * C3 + 2 * C, dyt + c0, hs, Tq, Tq - c0);
    }
    for (int t = 0; t < T; t++) a_da[t] = 0.0f;
    for (int j = 0; j < T; j++)
        for (int t = j; t < T; t++) a_da[t] += att[(size_t)j * T + t] * da[(size_t)j * Tq + t];
    /* through the softmax, then pre = scale * q . k: da becomes d(pre) * scale */
    for (int j = 0; j < T; j++) {
        const int c0 = ATT_COL0(j);
        for (int t = 0; t < c0; t++) datt[(size_t)j * T + t] = dpre[(size_t)j * T + t] = 0.0f;
        for (int t = c0; t < T; t++) {
            const float a = att[(size_t)j * T + t], d = da[(size_t)j * Tq + t], dp = a * (d - a_da[t]);
            datt[(size_t)j * T + t] = t >= j ? d : 0.0f;
            dpre[(size_t)j * T + t] = t >= j ? dp : 0.0f;
            da[(size_t)j * Tq + t] = t >= j ? dp * scale : 0.0f;
        }
    }
    for (int t = 0; t < T; t++)
        att_weighted_rows(dqkv + (size_t)t * C3, da + t, Tq, qkv + C, C3, t + 1, hs);
    for (int j = 0; j < T; j++) {
        float *dk = dqkv + (size_t)j * C3 + C, *dv = dk + C;
        att_weighted_rows(dk, da + (size_t)j * Tq + j, 1, qkv + (size_t)j * C3, C3, T - j, hs);
        att_weighted_rows(dv, att + (size_t)j * T + j, 1, dout + (size_t)j * C, C, T - j, hs);
    }
}

/* Every (b, h) pair through att_head_backward (backward) or att_head_forward: OpenMP over the
 * pairs, each thread with its own scratch. y, s1, s2: dqkv, dpreatt, datt or out, preatt, att. Per
 * (b, h) the backward touches only that head's slice of batch b's rows of dqkv: race-free. */
static void att_heads(int backward, float *y, float *s1, float *s2, const float *dout, const float *qkv,
                      const float *att, int B, int T, int C, int NH) {
    const int hs = C / NH;
#pragma omp parallel if ((size_t)B * T * T * C > OPS_PAR_MIN)
    {
        float *scratch = mallocCheck(att_scratch_floats(T, hs) * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                size_t head = ((size_t)b * NH + h) * T * T, rows = (size_t)b * T * 3 * C + h * hs;
                size_t outs = (size_t)b * T * C + h * hs;
                if (backward)
                    att_head_backward(y + rows, s1 + head, s2 + head, scratch, dout + outs, qkv + rows, att + head, T,
                                      C, hs);
                else
                    att_head_forward(y + outs, s1 + head, s2 + head, scratch, qkv + rows, T, C, hs);
            }
        free(scratch);
    }
}

void ops_attention_forward(float *out, float *preatt, float *att, const float *qkv, int B, int T, int C, int NH) {
    att_heads(0, out, preatt, att, NULL, qkv, NULL, B, T, C, NH);
}

void ops_attention_backward(float *dqkv, float *dpreatt, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int NH) {
    att_heads(1, dqkv, dpreatt, datt, dout, qkv, att, B, T, C, NH);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* Reference: scores for every (t, t2), -inf above the diagonal, full-row softmax, weighted sum. */
void ops_attention_forward_naive(float *out, const float *qkv, int B, int T, int C, int NH) {
    const int hs = C / NH;
    float w[T];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                float mx = -INFINITY, sum = 0.0f;
                for (int t2 = 0; t2 < T; t2++) {
                    float dot = 0.0f;
                    for (int i = 0; i < hs; i++)
                        dot += qkv[((size_t)b * T + t) * 3 * C + h * hs + i] * qkv[((size_t)b * T + t2) * 3 * C + C + h * hs + i];
                    w[t2] = t2 > t ? -INFINITY : dot / sqrtf((float)hs);
                    if (w[t2] > mx) mx = w[t2];
                }
                for (int t2 = 0; t2 < T; t2++) sum += (w[t2] = expf(w[t2] - mx));
                for (int i = 0; i < hs; i++) {
                    float acc = 0.0f;
                    for (int t2 = 0; t2 < T; t2++) acc += w[t2] / sum * qkv[((size_t)b * T + t2) * 3 * C + 2 * C + h * hs + i];
                    out[((size_t)b * T + t) * C + h * hs + i] = acc;
                }
            }
}

/* Tree attention: the same arithmetic as ops_attention_forward, in the same order (scores, max,
 * exp, sum, normalise, weighted sum from the root down), over each row's ancestor chain instead
 * of positions 0..t of one sequence, so its outputs are unchanged bit for bit by how the loops
 * below are arranged. OpenMP over rows (independent). A row's chain is short (~11 keys in the
 * caption scorer), so loop overhead, not arithmetic, set the time: the exponentials of all
 * heads run as one vectorised loop over keys padded to TREE_PAD (the pads come out 0 and are
 * never summed), where one loop per head fused with its sum stayed scalar, and the weighted sum
 * runs key by key over all heads instead of re-reading each head's partial output per key.
 * 293 ns a row instead of 383 on the caption forest (C = 64, 4 heads, 1 thread). */
#define TREE_PAD 16
void ops_attention_tree_forward(float *out, const float *qkv, const int *parent, int N, int C, int NH) {
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for if ((size_t)N * C * 16 > OPS_PAR_MIN) schedule(static)
    for (int r = 0; r < N; r++) {
        int chain[OPS_TREE_MAX_DEPTH], n = 0;
        for (int a = r; a >= 0; a = parent[a]) {
            CHECK(n < OPS_TREE_MAX_DEPTH && parent[a] < a, "attention tree: row %d too deep or not topological", r);
            chain[n++] = a;
        }
        const int np = (n + TREE_PAD - 1) / TREE_PAD * TREE_PAD;
        float w[NH][np]; /* key t is chain[n - 1 - t]: root first */
        for (int h = 0; h < NH; h++) {
            const float *restrict q = qkv + (size_t)r * C3 + h * hs;
            float *restrict wh = w[h], mx = -INFINITY;
            for (int t = 0; t < n; t++) {
                const float *restrict k = qkv + (size_t)chain[n - 1 - t] * C3 + h * hs + C;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int i = 0; i < hs; i++) dot += q[i] * k[i];
                wh[t] = dot * scale;
                mx = wh[t] > mx ? wh[t] : mx;
            }
            for (int t = 0; t < n; t++) wh[t] -= mx;
            for (int t = n; t < np; t++) wh[t] = -INFINITY; /* defined pads: exp gives 0 */
        }
        float *restrict flat = &w[0][0];
        for (int e = 0; e < NH * np; e++) flat[e] = ops_expf(flat[e]);
        for (int h = 0; h < NH; h++) {
            float *restrict wh = w[h], sum = 0.0f;
            for (int t = 0; t < n; t++) sum += wh[t];
            const float inv = 1.0f / sum;
            for (int t = 0; t < np; t++) wh[t] *= inv;
        }
        float *restrict o = out + (size_t)r * C;
        memset(o, 0, (size_t)C * sizeof *o);
        for (int t = 0; t < n; t++) {
            const float *restrict v = qkv + (size_t)chain[n - 1 - t] * C3 + 2 * C;
            for (int h = 0; h < NH; h++) {
                const float a = w[h][t];
#pragma omp simd
                for (int i = 0; i < hs; i++) o[h * hs + i] += a * v[h * hs + i];
            }
        }
    }
}
