/* stats.c — Student t, paired differences, Holm, resampling (see stats.h). */
#include "analysis/stats.h"

#include <math.h>
#include <stdlib.h>

#include "common/check.h"

#define BETACF_MAX_ITER 300
#define BETACF_EPS 1e-15
#define BETACF_TINY 1e-300

/* Continued fraction of the regularised incomplete beta function (modified Lentz). */
static double betacf(double a, double b, double x) {
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < BETACF_TINY) d = BETACF_TINY;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= BETACF_MAX_ITER; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        d = fabs(d) < BETACF_TINY ? 1 / BETACF_TINY : 1 / d;
        c = 1 + aa / c;
        if (fabs(c) < BETACF_TINY) c = BETACF_TINY;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        d = fabs(d) < BETACF_TINY ? 1 / BETACF_TINY : 1 / d;
        c = 1 + aa / c;
        if (fabs(c) < BETACF_TINY) c = BETACF_TINY;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < BETACF_EPS) break;
    }
    return h;
}

/* I_x(a, b), the regularised incomplete beta function. */
static double incbeta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(lbt) * betacf(a, b, x) / a;
    return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

double stats_t_cdf(double t, int df) {
    CHECK(df >= 1, "t distribution with %d degrees of freedom", df);
    if (isnan(t)) return NAN;
    double tail = 0.5 * incbeta(0.5 * df, 0.5, df / (df + t * t)); /* P(T > |t|) */
    return t >= 0 ? 1 - tail : tail;
}

double stats_t_pvalue(double t, int df) {
    CHECK(df >= 1, "t distribution with %d degrees of freedom", df);
    if (isnan(t)) return NAN;
    return incbeta(0.5 * df, 0.5, df / (df + t * t));
}

double stats_t_quantile(double q, int df) {
    CHECK(q > 0 && q < 1 && df >= 1, "t quantile q=%g df=%d", q, df);
    if (q < 0.5) return -stats_t_quantile(1 - q, df);
    double lo = 0, hi = 1;
    while (stats_t_cdf(hi, df) < q) hi *= 2; /* at most ~20 doublings for df = 1, q = 1 - 1e-6 */
    for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (stats_t_cdf(mid, df) < q) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

typedef struct {
    double p;
    int i;
} Ranked;

static int cmp_ranked(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p ? 1 : x->i - y->i;
}

void stats_holm(const double *p, int n, double *adjusted) {
    Ranked *r = mallocCheck((n ? (size_t)n : 1) * sizeof *r);
    int m = 0;
    for (int i = 0; i < n; i++) {
        adjusted[i] = NAN;
        if (!isnan(p[i])) r[m++] = (Ranked){p[i], i};
    }
    qsort(r, (size_t)m, sizeof *r, cmp_ranked);
    double running = 0;
    for (int j = 0; j < m; j++) {
        double a = fmin(1.0, (m - j) * r[j].p);
        running = fmax(running, a); /* adjusted p-values are monotone in the ranking */
        adjusted[r[j].i] = running;
    }
    free(r);
}

Paired stats_paired(const double *a, const double *b, int n) {
    Paired r = {0, NAN, NAN, NAN, NAN, NAN};
    double sum = 0;
    for (int s = 0; s < n; s++)
        if (isfinite(a[s]) && isfinite(b[s])) sum += b[s] - a[s], r.k++;
    if (r.k == 0) return r;
    r.mean = sum / r.k;
    if (r.k < 2) return r;
    double ss = 0;
    for (int s = 0; s < n; s++)
        if (isfinite(a[s]) && isfinite(b[s])) ss += (b[s] - a[s] - r.mean) * (b[s] - a[s] - r.mean);
    r.sd = sqrt(ss / (r.k - 1));
    double se = r.sd / sqrt(r.k), half = stats_t_quantile(0.975, r.k - 1) * se;
    r.lo = r.mean - half;
    r.hi = r.mean + half;
    if (se > 0) r.p = stats_t_pvalue(r.mean / se, r.k - 1);
    /* identical differences: no spread to test against. Equal non-zero differences are not
     * certainty but the evaluation's quantisation (one image of 640 in every seed): untestable */
    else r.p = r.mean == 0 ? 1.0 : NAN;
    return r;
}

double stats_resample_accuracy(Rng *rng, double p, long n) {
    if (n <= 0 || !isfinite(p)) return p;
    double v = p + sqrt(fmax(0.0, p * (1 - p)) / (double)n) * rng_normal(rng);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

double stats_geomean(const double *x, int n, int *k) {
    double s = 0;
    *k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && x[i] > 0) s += log(x[i]), (*k)++;
    return *k ? exp(s / *k) : NAN;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double stats_quantile(double *x, int n, double q) {
    if (n <= 0) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return x[n - 1];
    return x[i] + (pos - i) * (x[i + 1] - x[i]);
}
