/* attention.c — the core of causal multi-head self-attention (softmax(q k^T / sqrt(hs)) v per
 * head), forward/backward, after llm.c: OpenMP over the independent (b, t, h) / (b, h) loops,
 * plain vectorisable loops over the head dim inside, no BLAS (T and hs are small here, and BLAS
 * must not run inside an OpenMP region). An inference-only forward over a forest of token rows
 * (shared prefixes computed once) serves zero-shot scoring of many sentences.
 * Deliberately left out: flash-style tiling, dropout, non-causal and cross attention. */
#include <math.h>
#include <string.h>

#include "common/check.h"
#include "ops.h"

void ops_attention_forward(float *out, float *preatt, float *att, const float *qkv, int B, int T, int C, int NH) {
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(3) if ((size_t)B * T * T * C > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const float *restrict q = qkv + ((size_t)b * T + t) * C3 + h * hs;
                float *restrict pre = preatt + (((size_t)b * NH + h) * T + t) * T;
                float *restrict a = att + (((size_t)b * NH + h) * T + t) * T;
                float mx = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *restrict k = qkv + ((size_t)b * T + t2) * C3 + h * hs + C;
                    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (int i = 0; i < hs; i++) dot += q[i] * k[i];
                    pre[t2] = dot * scale;
                    mx = pre[t2] > mx ? pre[t2] : mx;
                }
                float sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    a[t2] = ops_expf(pre[t2] - mx);
                    sum += a[t2];
                }
                float inv = 1.0f / sum;
                for (int t2 = 0; t2 <= t; t2++) a[t2] *= inv;
                /* masked (future) entries are stored as 0 so the saved buffers are fully defined */
                for (int t2 = t + 1; t2 < T; t2++) pre[t2] = a[t2] = 0.0f;
                float *restrict o = out + ((size_t)b * T + t) * C + h * hs;
                memset(o, 0, (size_t)hs * sizeof *o);
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *restrict v = qkv + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    for (int i = 0; i < hs; i++) o[i] += a[t2] * v[i];
                }
            }
}

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

/* Per (b, h) the gradients touch only that head's slice of batch b's rows of dqkv, so the (b, h)
 * loop is race-free; t runs serially inside because dk, dv of position t2 collect from every t >= t2.
 * The softmax backward uses dpre = a * (datt - sum(a * datt)): O(T) per row instead of llm.c's O(T^2). */
void ops_attention_backward(float *dqkv, float *dpreatt, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int NH) {
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) if ((size_t)B * T * T * C > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *restrict a = att + (((size_t)b * NH + h) * T + t) * T;
                float *restrict da = datt + (((size_t)b * NH + h) * T + t) * T;
                float *restrict dpre = dpreatt + (((size_t)b * NH + h) * T + t) * T;
                const float *restrict q = qkv + ((size_t)b * T + t) * C3 + h * hs;
                float *restrict dq = dqkv + ((size_t)b * T + t) * C3 + h * hs;
                const float *restrict dy = dout + ((size_t)b * T + t) * C + h * hs;
                /* through out = sum_t2 a[t2] v[t2] */
                float a_da = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *restrict v = qkv + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    float *restrict dv = dqkv + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    float d = 0.0f;
#pragma omp simd reduction(+ : d)
                    for (int i = 0; i < hs; i++) {
                        d += v[i] * dy[i];
                        dv[i] += a[t2] * dy[i];
                    }
                    da[t2] = d;
                    a_da += a[t2] * d;
                }
                /* through the softmax, then pre = scale * q . k */
                for (int t2 = 0; t2 <= t; t2++) {
                    dpre[t2] = a[t2] * (da[t2] - a_da);
                    const float *restrict k = qkv + ((size_t)b * T + t2) * C3 + h * hs + C;
                    float *restrict dk = dqkv + ((size_t)b * T + t2) * C3 + h * hs + C;
                    float g = dpre[t2] * scale;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += g * k[i];
                        dk[i] += g * q[i];
                    }
                }
                for (int t2 = t + 1; t2 < T; t2++) da[t2] = dpre[t2] = 0.0f;
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
