/* geometry.h — shape of an embedding cloud: alignment and uniformity (Wang & Isola 2020) and
 * effective rank (Roy & Vetterli 2007), the usual diagnostics of dimensional collapse.
 * All inputs are row-major float [N, D]; the sums are accumulated in double.
 */
#ifndef CLIPLAB_EVAL_GEOMETRY_H
#define CLIPLAB_EVAL_GEOMETRY_H

/* mean_i ‖x_i − y_i‖² over paired rows; x [N, D], y [N, D] (meant for L2-normalised rows). */
float geometry_alignment(const float *x, const float *y, int N, int D);

/* log mean_{i≠j} exp(−2‖x_i − x_j‖²); x [N, D], N >= 2. Computed from blocks of Gram rows with a
 * log-sum-exp, so it neither holds the N x N matrix nor underflows for far-apart rows.
 * In [−8, 0] for L2-normalised rows (−8: two antipodal points). */
float geometry_uniformity(const float *x, int N, int D);

/* exp(entropy of p), p_k = σ_k / Σσ, σ the singular values of the column-centred x [N, D].
 * Between 1 (rank one) and min(N−1, D); 0 when all rows are equal (no spread at all). */
float geometry_effective_rank(const float *x, int N, int D);

#endif
