/* stats.h — the statistics behind `cliplab report`: Student t (CDF, two-sided p, quantiles), paired
 * differences over seeds with their t interval, Holm–Bonferroni adjustment, and the
 * resampling pieces of the efficiency ratio's bootstrap (deterministic, seeded).
 *
 * Seeds pair runs: the same seed gives the same initialisation, data stream and evaluation sets,
 * so two configurations are compared by the per-seed differences d_s = B_s - A_s, which cancels
 * the seed-to-seed variation both share. With k pairs the interval is mean(d) ± t(0.975, k-1)·sd(d)/√k,
 * the exact t critical value for k-1 degrees of freedom (12.7 for k = 2, 4.30 for k = 3).
 * Deliberately left out: unpaired tests (every ablation runs every configuration on the same
 * seeds), non-parametric rank tests (with 2-5 seeds they cannot reach p < 0.05).
 */
#ifndef CLIPLAB_ANALYSIS_STATS_H
#define CLIPLAB_ANALYSIS_STATS_H

#include "common/rng.h"

/* P(T <= t) for Student's t with df >= 1 degrees of freedom. */
double stats_t_cdf(double t, int df);
/* Two-sided p-value of t: P(|T| >= |t|). */
double stats_t_pvalue(double t, int df);
/* The q-quantile of Student's t (0 < q < 1), e.g. q = 0.975 for a 95% two-sided interval. */
double stats_t_quantile(double q, int df);

/* Holm–Bonferroni: adjusted[i] for p[i] of n tests (NaN entries are not tests and stay NaN).
 * Rejecting adjusted < alpha keeps the family-wise error rate <= alpha. */
void stats_holm(const double *p, int n, double *adjusted);

typedef struct {
    int k;            /* pairs with both values finite */
    double mean, sd;  /* of the differences b - a */
    double lo, hi;    /* 95% t interval of the mean difference; NaN when k < 2 */
    double p;         /* two-sided p of mean = 0; NaN when k < 2 or when every difference is the
                       * same non-zero value (no spread to test against); 1 when every one is 0 */
} Paired;

/* Paired comparison of b [n] against a [n] (entry s of each from the same seed); pairs with a
 * NaN on either side are dropped. */
Paired stats_paired(const double *a, const double *b, int n);

/* One parametric resample of an accuracy p measured on n items: p + N(0, p(1-p)/n), clamped to
 * [0, 1] (the normal approximation of Binomial(n, p)/n, good for the n >= 625 of the quick
 * profiles); p itself when n <= 0 or p is not finite. */
double stats_resample_accuracy(Rng *rng, double p, long n);

/* Geometric mean of the finite positive entries of x [n]; *k their count (NaN when 0). */
double stats_geomean(const double *x, int n, int *k);

/* The q-quantile (0..1) of x [n] by linear interpolation between order statistics; sorts x. */
double stats_quantile(double *x, int n, double q);

#endif
