/* retrieval.c — R@1 / R@5 for image→text and text→image retrieval on paired embeddings.
 *
 * Each direction streams blocks of query rows: S_blk = Q_blk · Cᵀ by sgemm, then scores each
 * query row's true match by the tie rule of eval/rank.h. The true match's score is read from the
 * same sgemm output as its competitors, so equal vectors give exactly equal scores and ties are
 * seen as ties. Text→image is a second pass with the roles swapped rather than a column scan of
 * the first, for the same reason.
 *
 * Deliberately left out: R@k for other k, mean/median rank, multiple captions per image.
 */
#include "eval/retrieval.h"

#include <cblas.h>
#include <stdlib.h>

#include "common/check.h"
#include "eval/rank.h"
#include "ops/ops.h" /* OPS_PAR_MIN: the shared OpenMP fork threshold */

/* Floats of similarity held at once: 8 MiB. */
#define RETRIEVAL_BLOCK_FLOATS (1L << 21)

/* hits[0] += the top-1 credit of every query, hits[1] += its top-5 credit.
 * query [N, D] (row i matches cand row i), cand [N, D], sim scratch [block_rows, N],
 * credit scratch [2 * block_rows]. */
static void count_hits(double hits[2], float *sim, double *credit, const float *query, const float *cand, int N,
                       int D, int block_rows) {
    for (int r0 = 0; r0 < N; r0 += block_rows) {
        int B = N - r0 < block_rows ? N - r0 : block_rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, D, 1.0f, query + (long)r0 * D, D, cand, D, 0.0f,
                    sim, N);
        double *c1 = credit, *c5 = credit + B;
#pragma omp parallel for schedule(static) if ((long)B * N >= OPS_PAR_MIN)
        for (int r = 0; r < B; r++) rank_credits(sim + (long)r * N, N, r0 + r, RETRIEVAL_TOPK, &c1[r], &c5[r]);
        /* summed in row order after the parallel loop, so the result does not depend on threads */
        for (int r = 0; r < B; r++) hits[0] += c1[r], hits[1] += c5[r];
    }
}

RetrievalResult retrieval_eval_blocked(const float *img, const float *txt, int N, int D, int block_rows) {
    CHECK(N > 0 && D > 0 && block_rows > 0, "N=%d D=%d block_rows=%d", N, D, block_rows);
    if (block_rows > N) block_rows = N;
    float *sim = mallocCheck((size_t)block_rows * N * sizeof(float));
    double *credit = mallocCheck((size_t)2 * block_rows * sizeof(double));
    double i2t[2] = {0, 0}, t2i[2] = {0, 0};
    count_hits(i2t, sim, credit, img, txt, N, D, block_rows);
    count_hits(t2i, sim, credit, txt, img, N, D, block_rows);
    free(sim);
    free(credit);
    RetrievalResult r = {(float)(i2t[0] / N), (float)(i2t[1] / N), (float)(t2i[0] / N), (float)(t2i[1] / N)};
    return r;
}

RetrievalResult retrieval_eval(const float *img, const float *txt, int N, int D) {
    CHECK(N > 0, "N=%d", N);
    long rows = RETRIEVAL_BLOCK_FLOATS / N;
    return retrieval_eval_blocked(img, txt, N, D, rows < 1 ? 1 : (int)(rows < N ? rows : N));
}
