/* geometry.c — alignment, uniformity and effective rank of embeddings.
 *
 * Uniformity streams blocks of rows of X·Xᵀ (sgemm) and turns them into squared distances
 * ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j; each row gets its own log-sum-exp, then the rows are combined in
 * order, so the result does not depend on the thread count.
 * Effective rank takes the eigenvalues σ² of the smaller of the two Gram matrices of the centred
 * data (XcᵀXc [D, D] or XcXcᵀ [N, N]) in double, from LAPACK's dsyev inside OpenBLAS: double because
 * in fp32 the null directions of a rank-1 cloud come out with σ ~ sqrt(eps)·σ_max, which reads as
 * a rank of 1.045 (N = 4000, D = 64, measured) instead of 1.0001.
 *
 * Deliberately left out: the per-pair (i, j) uniformity matrix, the singular vectors, subsampling
 * for very large N (callers pass their fixed eval set).
 */
#include "eval/geometry.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "ops/ops.h" /* OPS_PAR_MIN: the shared OpenMP fork threshold */

/* LAPACK symmetric eigenvalues. OpenBLAS exports it, but Debian ships no LAPACKE/lapack.h with
 * this stack, so it is declared here (gfortran ABI: trailing hidden lengths of the char args). */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

/* Floats of Gram rows held at once: 8 MiB. */
#define GEOMETRY_BLOCK_FLOATS (1L << 21)

float geometry_alignment(const float *x, const float *y, int N, int D) {
    CHECK(N > 0 && D > 0, "N=%d D=%d", N, D);
    double s = 0.0;
    for (long k = 0; k < (long)N * D; k++) {
        double diff = (double)x[k] - y[k];
        s += diff * diff;
    }
    return (float)(s / N);
}

float geometry_uniformity(const float *x, int N, int D) {
    CHECK(N >= 2 && D > 0, "N=%d D=%d (uniformity needs two rows)", N, D);
    long rows = GEOMETRY_BLOCK_FLOATS / N;
    int block_rows = rows < 1 ? 1 : (int)(rows < N ? rows : N);
    float *gram = mallocCheck((size_t)block_rows * N * sizeof(float));
    double *sq = mallocCheck((size_t)N * sizeof(double));
    double *row_lse = mallocCheck((size_t)N * sizeof(double));
    for (long i = 0; i < N; i++) {
        double s = 0.0;
        for (int k = 0; k < D; k++) s += (double)x[i * D + k] * x[i * D + k];
        sq[i] = s;
    }
    for (int r0 = 0; r0 < N; r0 += block_rows) {
        int B = N - r0 < block_rows ? N - r0 : block_rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, D, 1.0f, x + (long)r0 * D, D, x, D, 0.0f, gram, N);
#pragma omp parallel for schedule(static) if ((long)B * N >= OPS_PAR_MIN)
        for (int r = 0; r < B; r++) {
            const int i = r0 + r;
            const float *g = gram + (long)r * N;
            /* the largest term is the nearest neighbour's; d² clamped at 0 against cancellation */
            double vmax = -INFINITY;
            for (int j = 0; j < N; j++)
                if (j != i) vmax = fmax(vmax, -2.0 * fmax(sq[i] + sq[j] - 2.0 * g[j], 0.0));
            double s = 0.0;
            for (int j = 0; j < N; j++)
                if (j != i) s += exp(-2.0 * fmax(sq[i] + sq[j] - 2.0 * g[j], 0.0) - vmax);
            row_lse[i] = vmax + log(s);
        }
    }
    double vmax = -INFINITY, s = 0.0;
    for (int i = 0; i < N; i++) vmax = fmax(vmax, row_lse[i]);
    for (int i = 0; i < N; i++) s += exp(row_lse[i] - vmax);
    free(gram);
    free(sq);
    free(row_lse);
    return (float)(vmax + log(s) - log((double)N * (N - 1)));
}

float geometry_effective_rank(const float *x, int N, int D) {
    CHECK(N > 0 && D > 0, "N=%d D=%d", N, D);
    double *xc = mallocCheck((size_t)N * D * sizeof(double));
    double *mean = callocCheck((size_t)D, sizeof(double));
    for (long i = 0; i < N; i++)
        for (int k = 0; k < D; k++) mean[k] += x[i * D + k];
    for (int k = 0; k < D; k++) mean[k] /= N;
    for (long i = 0; i < N; i++)
        for (int k = 0; k < D; k++) xc[i * D + k] = x[i * D + k] - mean[k];

    /* the nonzero eigenvalues of XcᵀXc and XcXcᵀ are the same σ²; take the smaller matrix */
    const int m = N < D ? N : D;
    double *gram = mallocCheck((size_t)m * m * sizeof(double)), *ev = mallocCheck((size_t)m * sizeof(double));
    if (N < D)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, N, D, 1.0, xc, D, 0.0, gram, m);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, N, 1.0, xc, D, 0.0, gram, m);
    /* row-major upper = column-major lower */
    int info = 0, lwork = -1;
    double wq = 0.0;
    dsyev_("N", "L", &m, gram, &m, ev, &wq, &lwork, &info, 1, 1);
    CHECK(info == 0, "dsyev workspace query failed: info=%d", info);
    lwork = (int)wq;
    double *work = mallocCheck((size_t)lwork * sizeof(double));
    dsyev_("N", "L", &m, gram, &m, ev, work, &lwork, &info, 1, 1);
    CHECK(info == 0, "dsyev failed to converge: info=%d", info);

    double sum = 0.0;
    for (int k = 0; k < m; k++) {
        ev[k] = sqrt(fmax(ev[k], 0.0)); /* round-off can leave a null eigenvalue slightly negative */
        sum += ev[k];
    }
    double h = 0.0;
    if (sum > 0.0)
        for (int k = 0; k < m; k++)
            if (ev[k] > 0.0) h -= ev[k] / sum * log(ev[k] / sum);
    free(xc);
    free(mean);
    free(gram);
    free(ev);
    free(work);
    return sum > 0.0 ? (float)exp(h) : 0.0f;
}
