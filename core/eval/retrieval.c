/* retrieval.c — R@1 / R@5 for image→text and text→image retrieval on paired embeddings.
 *
 * Each direction streams blocks of query rows: S_blk = Q_blk · Cᵀ by sgemm, then counts, per
 * query row, the candidates that score at least as high as the true match (see retrieval.h for
 * the tie rule). The true match's score is read from the same sgemm output as its competitors, so
 * equal vectors give exactly equal scores and ties are seen as ties. Text→image is a second pass
 * with the roles swapped rather than a column scan of the first, for the same reason.
 *
 * Deliberately left out: R@k for other k, mean/median rank, multiple captions per image.
 */
#include "eval/retrieval.h"

#include <cblas.h>
#include <stdlib.h>

#include "common/check.h"
#include "ops/ops.h" /* OPS_PAR_MIN: the shared OpenMP fork threshold */

/* Floats of similarity held at once: 8 MiB. */
#define RETRIEVAL_BLOCK_FLOATS (1L << 21)

/* hits[0] += queries whose true match ranks first, hits[1] += those ranking in the top 5.
 * query [N, D] (row i matches cand row i), cand [N, D], sim scratch [block_rows, N]. */
static void count_hits(long hits[2], float *sim, const float *query, const float *cand, int N, int D, int block_rows) {
    long h1 = 0, h5 = 0;
    for (int r0 = 0; r0 < N; r0 += block_rows) {
        int B = N - r0 < block_rows ? N - r0 : block_rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, D, 1.0f, query + (long)r0 * D, D, cand, D, 0.0f,
                    sim, N);
#pragma omp parallel for schedule(static) reduction(+ : h1, h5) if ((long)B * N >= OPS_PAR_MIN)
        for (int r = 0; r < B; r++) {
            const float *s = sim + (long)r * N;
            const int i = r0 + r;
            const float s_true = s[i];
            int above = 0;
            /* !(a < b) rather than a >= b: a NaN on either side counts as beating the true match */
            for (int j = 0; j < N && above < 5; j++) above += j != i && !(s[j] < s_true);
            h1 += above == 0;
            h5 += above < 5;
        }
    }
    hits[0] += h1;
    hits[1] += h5;
}

RetrievalResult retrieval_eval_blocked(const float *img, const float *txt, int N, int D, int block_rows) {
    CHECK(N > 0 && D > 0 && block_rows > 0, "N=%d D=%d block_rows=%d", N, D, block_rows);
    if (block_rows > N) block_rows = N;
    float *sim = mallocCheck((size_t)block_rows * N * sizeof(float));
    long i2t[2] = {0, 0}, t2i[2] = {0, 0};
    count_hits(i2t, sim, img, txt, N, D, block_rows);
    count_hits(t2i, sim, txt, img, N, D, block_rows);
    free(sim);
    RetrievalResult r = {(float)((double)i2t[0] / N), (float)((double)i2t[1] / N), (float)((double)t2i[0] / N),
                         (float)((double)t2i[1] / N)};
    return r;
}

RetrievalResult retrieval_eval(const float *img, const float *txt, int N, int D) {
    CHECK(N > 0, "N=%d", N);
    long rows = RETRIEVAL_BLOCK_FLOATS / N;
    return retrieval_eval_blocked(img, txt, N, D, rows < 1 ? 1 : (int)(rows < N ? rows : N));
}
