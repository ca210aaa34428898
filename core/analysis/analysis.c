/* analysis.c — ablation answers from finished runs (see analysis.h). */
#include "analysis/analysis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/curve.h"
#include "analysis/stats.h"
#include "log/runtable.h"

int swept_get(const char *swept, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = swept; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            size_t vl = len - kl - 1 < n - 1 ? len - kl - 1 : n - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = 0;
            return 0;
        }
        p = end ? end + 1 : NULL;
    }
    return -1;
}

static int key_in_list(const char *entry, size_t klen, const char *list) {
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == klen && !strncmp(p, entry, klen)) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

void swept_without(const char *swept, const char *drop, char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (const char *p = swept; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (!key_in_list(p, klen, drop) && o + len + 2 < n) {
            if (o) out[o++] = ',';
            memcpy(out + o, p, len);
            o += len;
            out[o] = 0;
        }
        p = end ? end + 1 : NULL;
    }
}

/* Appends v to list (rows of `width` chars, *n used, at most max) unless it is there already;
 * returns 1 if v was new and added. Keeps first-appearance order, which is the runs' order. */
static int add_unique(char *list, size_t width, int *n, int max, const char *v) {
    for (int j = 0; j < *n; j++)
        if (!strcmp(list + (size_t)j * width, v)) return 0;
    if (*n >= max) return 0;
    snprintf(list + (size_t)(*n)++ * width, width, "%s", v);
    return 1;
}

/* The distinct values of `axis` in order of first appearance, the baseline first; returns the
 * count (the list is malloc'd rows of AXIS_VALUE_MAX chars). */
#define AXIS_VALUE_MAX 128
static int axis_values(const RunInfo *runs, int n, const char *axis, const char *baseline, char (**out)[AXIS_VALUE_MAX]) {
    char(*values)[AXIS_VALUE_MAX] = mallocCheck((size_t)(n + 1) * sizeof *values);
    int nv = 0;
    if (baseline && baseline[0]) snprintf(values[nv++], AXIS_VALUE_MAX, "%s", baseline);
    for (int i = 0; i < n; i++) {
        char v[AXIS_VALUE_MAX];
        if (!swept_get(runs[i].swept, axis, v, sizeof v)) add_unique(values[0], AXIS_VALUE_MAX, &nv, n + 1, v);
    }
    *out = values;
    return nv;
}

/* Configuration with `other`'s swept values and axis = value: the first configuration whose key
 * minus the axis equals other and whose axis value matches; -1 if none. */
static int config_with(const RunTable *t, const char *axis, const char *other, const char *value) {
    for (int c = 0; c < t->n_configs; c++) {
        char rest[512], v[AXIS_VALUE_MAX];
        swept_without(t->configs[c].key, axis, rest, sizeof rest);
        if (!strcmp(rest, other) && !swept_get(t->configs[c].key, axis, v, sizeof v) && !strcmp(v, value)) return c;
    }
    return -1;
}

/* One paired comparison: configuration cb (axis = value) minus ca (axis = baseline). */
typedef struct {
    int value, ca, cb;
    Paired d;
    double mean_a, mean_b, effect, p_holm;
    int at_chance;
} Comparison;

/* Seeds of configuration c's completed runs, in run order (malloc'd); returns the count. */
static int config_seeds(const RunTable *t, int c, long **out) {
    const RunConfig *rc = &t->configs[c];
    long *seeds = mallocCheck((size_t)(rc->n_runs ? rc->n_runs : 1) * sizeof *seeds);
    int k = 0;
    for (int j = 0; j < rc->n_runs; j++)
        if (runtable_completed(&t->runs[rc->runs[j]])) seeds[k++] = t->runs[rc->runs[j]].seed;
    *out = seeds;
    return k;
}

static double mean_finite(const double *x, int n) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) s += x[i], k++;
    return k ? s / k : NAN;
}

/* Pairs ca and cb by seed on metric and fills the comparison (all but p_holm). */
static void compare_pair(const RunTable *t, int ca, int cb, const char *metric, Comparison *cmp) {
    long *seeds;
    int ns = config_seeds(t, ca, &seeds);
    double *a = mallocCheck((size_t)(ns ? ns : 1) * sizeof *a), *b = mallocCheck((size_t)(ns ? ns : 1) * sizeof *b);
    long n_items = 0;
    double chance = NAN;
    for (int s = 0; s < ns; s++) {
        a[s] = runtable_value_described(t, ca, seeds[s], metric, &n_items, &chance);
        b[s] = runtable_value(t, cb, seeds[s], metric);
    }
    cmp->ca = ca;
    cmp->cb = cb;
    cmp->d = stats_paired(a, b, ns);
    cmp->mean_a = mean_finite(a, ns);
    cmp->mean_b = mean_finite(b, ns);
    cmp->effect = isnan(chance) ? EFFECT_OF_INTEREST_REL * fabs(cmp->mean_a) : EFFECT_OF_INTEREST_ACC;
    cmp->at_chance = t->configs[ca].at_chance || t->configs[cb].at_chance;
    cmp->p_holm = NAN;
    free(seeds);
    free(a);
    free(b);
}

/* The verdict of a tested difference d (k >= 2) with Holm-adjusted p and an effect of interest. */
static const char *verdict_rule(const Paired *d, double p_holm, double effect) {
    if (p_holm < STATS_ALPHA) return d->mean > 0 ? "higher" : "lower";
    /* "no difference" only when the whole interval lies within the effect of interest (an
     * equivalence reading): a narrow interval away from 0, e.g. [-0.065, -0.045], is an effect the
     * correction could not confirm, not the absence of one */
    return d->lo >= -effect && d->hi <= effect ? "no difference" : "underpowered";
}

static const char *verdict_of(const Comparison *c) {
    if (c->at_chance) return "at chance (excluded)";
    if (c->d.k < 2) return c->d.k ? "undecidable (1 seed)" : "undecidable (no pair)";
    return verdict_rule(&c->d, c->p_holm, c->effect);
}

/* The pooled comparison of one metric and value over configurations: each configuration's
 * seed-paired mean difference is one observation (at chance or undecidable: left out), so r is
 * the one-sample t test of their mean on k-1 degrees of freedom. */
typedef struct {
    double *d;         /* [configurations] the included mean differences */
    int k, neg, pos;   /* included, and how many of them are < 0 and > 0 */
    double effect_sum; /* of the included comparisons' effects of interest */
    Paired r;
    double p_holm;
} Pooled;

static void pooled_add(Pooled *p, const Comparison *c) {
    if (c->at_chance || c->d.k < 2 || !isfinite(c->d.mean)) return;
    p->d[p->k++] = c->d.mean;
    p->neg += c->d.mean < 0;
    p->pos += c->d.mean > 0;
    p->effect_sum += c->effect;
}

/* Tests every pooled row of pooled [rows] (against 0) and Holm-adjusts them together. */
static void pooled_test(Pooled *pooled, int rows) {
    double *p = mallocCheck((size_t)(rows ? rows : 1) * sizeof *p), *adj = mallocCheck((size_t)(rows ? rows : 1) * sizeof *adj);
    for (int i = 0; i < rows; i++) {
        Pooled *q = &pooled[i];
        double *zero = callocCheck((size_t)(q->k ? q->k : 1), sizeof *zero);
        q->r = stats_paired(zero, q->d, q->k);
        p[i] = q->k >= 2 ? q->r.p : NAN; /* fewer than 2 configurations: not a test */
        free(zero);
    }
    stats_holm(p, rows, adj);
    for (int i = 0; i < rows; i++) pooled[i].p_holm = adj[i];
    free(p);
    free(adj);
}

static const char *pooled_verdict(const Pooled *q) {
    if (q->k < 2) return q->k ? "undecidable (1 configuration)" : "undecidable (none)";
    return verdict_rule(&q->r, q->p_holm, q->effect_sum / q->k);
}

static void tally_add(AxisTally *t, const Comparison *c) {
    const char *v = verdict_of(c);
    t->comparisons++;
    if (c->at_chance) {
        t->at_chance++;
        return;
    }
    if (!strcmp(v, "higher")) t->higher++;
    else if (!strcmp(v, "lower")) t->lower++;
    else if (!strcmp(v, "underpowered")) t->underpowered++;
    else if (!strcmp(v, "no difference")) t->same++;
    else t->undecidable++;
    if (isfinite(c->d.mean)) t->sum_diff += c->d.mean, t->n_diff++;
}

/* All comparisons of one metric along the axis, Holm-adjusted together; returns the count. */
static int metric_comparisons(const RunTable *t, const char *axis, char (*values)[AXIS_VALUE_MAX], int nv,
                              const char *metric, Comparison **out) {
    Comparison *cmp = mallocCheck((size_t)(t->n_configs * nv + 1) * sizeof *cmp);
    int nc = 0;
    char(*others)[512] = mallocCheck((size_t)(t->n_configs + 1) * sizeof *others);
    int no = 0;
    for (int c = 0; c < t->n_configs; c++) {
        char other[512];
        swept_without(t->configs[c].key, axis, other, sizeof other);
        if (!add_unique(others[0], sizeof others[0], &no, t->n_configs, other)) continue;
        int ca = config_with(t, axis, other, values[0]);
        for (int vi = 1; vi < nv && ca >= 0; vi++) {
            int cb = config_with(t, axis, other, values[vi]);
            if (cb < 0) continue;
            compare_pair(t, ca, cb, metric, &cmp[nc]);
            cmp[nc++].value = vi;
        }
    }
    free(others);
    double *p = mallocCheck((size_t)(nc ? nc : 1) * sizeof *p), *adj = mallocCheck((size_t)(nc ? nc : 1) * sizeof *adj);
    for (int i = 0; i < nc; i++) p[i] = cmp[i].at_chance ? NAN : cmp[i].d.p; /* excluded: not a test */
    stats_holm(p, nc, adj);
    for (int i = 0; i < nc; i++) cmp[i].p_holm = adj[i];
    free(p);
    free(adj);
    *out = cmp;
    return nc;
}

static void print_comparison(FILE *f, const RunTable *t, const char *axis, char (*values)[AXIS_VALUE_MAX],
                             const Comparison *c) {
    char other[512], ci[64] = "-", p[48] = "";
    swept_without(t->configs[c->ca].key, axis, other, sizeof other);
    if (c->d.k >= 2) snprintf(ci, sizeof ci, "[%+.4f, %+.4f]", c->d.lo, c->d.hi);
    if (!isnan(c->p_holm)) snprintf(p, sizeof p, "p %.3f, Holm %.3f", c->d.p, c->p_holm);
    fprintf(f, "  %-56s %s=%-8s %8.4f  %s=%-8s %8.4f  diff %+8.4f %-22s (%d seeds%s%s)  %s\n", other[0] ? other : "(all)",
            axis, values[0], c->mean_a, axis, values[c->value], c->mean_b, c->d.mean, ci, c->d.k, p[0] ? ", " : "", p,
            verdict_of(c));
}

/* The answer table: per metric and value the tally of the per-configuration verdicts. */
static void print_answer(FILE *f, const char *axis, char (*values)[AXIS_VALUE_MAX], int nv, const char *const *metrics,
                         int n_metrics, const AxisTally *per) {
    fprintf(f, "\nanswer: each %s minus %s=%s, per metric. 'higher'/'lower': Holm-adjusted p < %.2f; 'underpowered': "
               "not significant and the 95%% interval reaches beyond the effect of interest (±%.2f for accuracies, "
               "±%.0f%% of the baseline otherwise); 'no difference': not significant with the whole interval within it; "
               "configurations that never left chance are excluded:\n",
            axis, axis, values[0], STATS_ALPHA, EFFECT_OF_INTEREST_ACC, 100 * EFFECT_OF_INTEREST_REL);
    fprintf(f, "  %-32s %-14s %10s %11s %7s %7s %8s %13s %12s %10s\n", "metric", "value", "mean diff", "comparisons",
            "higher", "lower", "no diff", "underpowered", "undecidable", "at chance");
    for (int m = 0; m < n_metrics; m++)
        for (int vi = 1; vi < nv; vi++) {
            const AxisTally *a = &per[m * nv + vi];
            if (a->comparisons)
                fprintf(f, "  %-32s %-14s %+10.4f %11d %7d %7d %8d %13d %12d %10d\n", metrics[m], values[vi],
                        a->n_diff ? a->sum_diff / a->n_diff : NAN, a->comparisons, a->higher, a->lower, a->same,
                        a->underpowered, a->undecidable, a->at_chance);
            else
                fprintf(f, "  %-32s %-14s %10s   (no configuration has it for both values)\n", metrics[m], values[vi], "-");
        }
}

/* The pooled rows under the answer table (pooled [n_metrics * nv], tested), tallied per metric. */
static void print_pooled(FILE *f, char (*values)[AXIS_VALUE_MAX], int nv, const char *const *metrics,
                         int n_metrics, const Pooled *pooled, AxisTally *tallies) {
    fprintf(f, "\npooled over configurations: the average effect over this grid. Each configuration (other swept "
               "values held equal) is one observation, its seed-paired mean difference (at chance or undecidable: "
               "left out); configurations, not seeds, are the sample, so this answers 'on average over the grid', "
               "not 'in each configuration'. Mean of the k differences, 95%% t interval on k-1 degrees of freedom, "
               "Holm-adjusted p over these rows, verdicts by the rule above; negative/positive: configurations "
               "whose difference is < 0 / > 0:\n");
    fprintf(f, "  %-32s %-14s %3s %10s %-22s %7s %7s %8s %8s  %s\n", "metric", "value", "k", "mean diff",
            "95% interval", "p", "Holm", "negative", "positive", "verdict");
    for (int m = 0; m < n_metrics; m++)
        for (int vi = 1; vi < nv; vi++) {
            const Pooled *q = &pooled[m * nv + vi];
            char ci[64] = "-";
            if (q->k >= 2) snprintf(ci, sizeof ci, "[%+.4f, %+.4f]", q->r.lo, q->r.hi);
            fprintf(f, "  %-32s %-14s %3d %+10.4f %-22s %7.3f %7.3f %8d %8d  %s\n", metrics[m], values[vi], q->k,
                    q->r.mean, ci, q->r.p, q->p_holm, q->neg, q->pos, pooled_verdict(q));
            if (!tallies || q->k < 2) continue;
            const char *v = pooled_verdict(q);
            tallies[m].pooled_rows++;
            tallies[m].pooled_higher += !strcmp(v, "higher");
            tallies[m].pooled_lower += !strcmp(v, "lower");
        }
}

int analysis_compare_axis(FILE *f, const RunInfo *runs, int n, const char *axis, const char *baseline,
                          const char *const *metrics, int n_metrics, AxisTally *tallies) {
    char(*values)[AXIS_VALUE_MAX];
    int nv = axis_values(runs, n, axis, baseline, &values);
    if (tallies) memset(tallies, 0, (size_t)n_metrics * sizeof *tallies);
    if (nv < 2) {
        free(values);
        return 0;
    }
    RunTable t;
    runtable_build(&t, runs, n);
    AxisTally *per = callocCheck((size_t)n_metrics * nv, sizeof *per);   /* [metric][value] */
    Pooled *pooled = callocCheck((size_t)n_metrics * nv, sizeof *pooled); /* [metric][value] */
    int printed = 0;
    for (int m = 0; m < n_metrics; m++) {
        fprintf(f, "\n%s: each %s against %s=%s, other swept values held equal; paired by seed: mean of the "
                   "per-seed differences, its 95%% t interval, Holm-adjusted p over this table\n",
                metrics[m], axis, axis, values[0]);
        Comparison *cmp;
        int nc = metric_comparisons(&t, axis, values, nv, metrics[m], &cmp);
        for (int vi = 0; vi < nv; vi++) pooled[m * nv + vi].d = mallocCheck((size_t)(nc ? nc : 1) * sizeof(double));
        for (int i = 0; i < nc; i++) {
            print_comparison(f, &t, axis, values, &cmp[i]);
            tally_add(&per[m * nv + cmp[i].value], &cmp[i]);
            pooled_add(&pooled[m * nv + cmp[i].value], &cmp[i]);
            if (tallies) tally_add(&tallies[m], &cmp[i]);
        }
        printed += nc;
        free(cmp);
    }
    print_answer(f, axis, values, nv, metrics, n_metrics, per);
    for (int m = 0; m < n_metrics; m++) pooled[m * nv].k = 0; /* the baseline is no row: not a test */
    pooled_test(pooled, n_metrics * nv);
    print_pooled(f, values, nv, metrics, n_metrics, pooled, tallies);
    for (int i = 0; i < n_metrics * nv; i++) free(pooled[i].d);
    free(pooled);
    free(per);
    free(values);
    runtable_free(&t);
    return printed;
}

/* The summary TSV's header: config, the swept keys of the first configuration, then
 * <metric>_mean/_min/_max per metric name. */
static void summary_header(FILE *f, const RunTable *t, const char **names, int nm) {
    fprintf(f, "config");
    const char *keys = t->n_configs ? t->configs[0].key : "";
    for (const char *p = keys; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        fprintf(f, "\t%.*s", (int)(eq - p), p);
        if (!end) break;
        p = end + 1;
    }
    for (int k = 0; k < nm; k++) fprintf(f, "\t%s_mean\t%s_min\t%s_max", names[k], names[k], names[k]);
    fprintf(f, "\tseeds\n");
}

/* One configuration's row: its key, its swept values, then mean/min/max over its completed runs. */
static void summary_row(FILE *f, const RunTable *t, int c, const char **names, int nm) {
    const RunConfig *rc = &t->configs[c];
    fprintf(f, "%s", rc->key[0] ? rc->key : "all");
    for (const char *p = rc->key; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        int len = end ? (int)(end - eq - 1) : (int)strlen(eq + 1);
        fprintf(f, "\t%.*s", len, eq + 1);
        if (!end) break;
        p = end + 1;
    }
    int seeds = 0;
    for (int k = 0; k < nm; k++) {
        double s = 0, lo = INFINITY, hi = -INFINITY;
        int cnt = 0;
        for (int j = 0; j < rc->n_runs; j++) {
            const RunInfo *r = &t->runs[rc->runs[j]];
            double v = runtable_value(t, c, r->seed, names[k]);
            if (!runtable_completed(r) || isnan(v)) continue;
            s += v, cnt++;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
        seeds = cnt > seeds ? cnt : seeds;
        if (cnt) fprintf(f, "\t%g\t%g\t%g", s / cnt, lo, hi);
        else fprintf(f, "\tNaN\tNaN\tNaN");
    }
    fprintf(f, "\t%d\n", seeds);
}

int analysis_write_summary_tsv(const char *path, const RunInfo *runs, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    RunTable t;
    runtable_build(&t, runs, n);
    /* metric names: the union of every run's summary names, in order of first appearance */
    int total = 0;
    for (int i = 0; i < n; i++) total += runs[i].n_summary;
    const char **names = mallocCheck((size_t)(total ? total : 1) * sizeof *names);
    int nm = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i].n_summary; j++) {
            int seen = 0;
            for (int k = 0; k < nm && !seen; k++) seen = !strcmp(names[k], runs[i].summary_names[j]);
            if (!seen) names[nm++] = runs[i].summary_names[j];
        }
    summary_header(f, &t, names, nm);
    for (int c = 0; c < t.n_configs; c++) summary_row(f, &t, c, names, nm);
    free(names);
    runtable_free(&t);
    return fclose(f) ? -1 : 0;
}
