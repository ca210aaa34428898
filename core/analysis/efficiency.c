/* efficiency.c — the Fig. 2 efficiency ratio, its bootstrap interval, arms from the ablation
 * file (see efficiency.h). */
#include "analysis/efficiency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "analysis/stats.h"
#include "common/rng.h"
#include "log/runtable.h"

const double EFFICIENCY_TARGETS[EFFICIENCY_N_TARGETS] = {0.5, 0.75, 0.9, 1.0};
#define EFFICIENCY_BOOT_SEED 0xEFF1C1E7ULL
/* fewer defined bootstrap replicates than this share and the interval is not shown */
#define EFFICIENCY_MIN_DEFINED 0.5

int efficiency_add_arm(EfficiencySpec *s, const char *line, Err *err) {
    const char *sp = strchr(line, ' ');
    if (!sp || sp == line || !sp[1] || (size_t)(sp - line) >= EFFICIENCY_NAME_MAX || strlen(sp + 1) >= EFFICIENCY_SELECT_MAX)
        return err_set(err, "arm '%s': expected 'name key=value[,key=value...]'", line);
    if (s->n_arms == EFFICIENCY_MAX_ARMS) return err_set(err, "more than %d arms", EFFICIENCY_MAX_ARMS);
    snprintf(s->arm_names[s->n_arms], EFFICIENCY_NAME_MAX, "%.*s", (int)(sp - line), line);
    snprintf(s->arm_select[s->n_arms], EFFICIENCY_SELECT_MAX, "%s", sp + 1);
    s->n_arms++;
    return 0;
}

static int arm_index(const EfficiencySpec *s, const char *name, size_t len) {
    for (int a = 0; a < s->n_arms; a++)
        if (strlen(s->arm_names[a]) == len && !strncmp(s->arm_names[a], name, len)) return a;
    return -1;
}

int efficiency_add_ratio(EfficiencySpec *s, const char *text, Err *err) {
    const char *slash = strchr(text, '/');
    int fast = slash ? arm_index(s, text, (size_t)(slash - text)) : -1;
    int slow = slash ? arm_index(s, slash + 1, strlen(slash + 1)) : -1;
    if (fast < 0 || slow < 0 || fast == slow) return err_set(err, "ratio '%s': expected 'fast/slow' naming two arms", text);
    if (s->n_ratios == EFFICIENCY_MAX_RATIOS) return err_set(err, "more than %d ratios", EFFICIENCY_MAX_RATIOS);
    s->fast[s->n_ratios] = fast;
    s->slow[s->n_ratios++] = slow;
    return 0;
}

int efficiency_selects(const char *select, const char *swept) {
    char entry[EFFICIENCY_SELECT_MAX], key[EFFICIENCY_SELECT_MAX], have[EFFICIENCY_SELECT_MAX];
    for (const char *p = select; p && *p;) {
        const char *end = strchr(p, ',');
        snprintf(entry, sizeof entry, "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
        p = end ? end + 1 : NULL;
        char *eq = strchr(entry, '=');
        if (!eq) return 0;
        int negate = eq > entry && eq[-1] == '!';
        snprintf(key, sizeof key, "%.*s", (int)(eq - entry - negate), entry);
        int found = !swept_get(swept, key, have, sizeof have);
        int equal = found && !strcmp(have, eq + 1);
        if (negate ? equal : !equal) return 0;
    }
    return 1;
}

void efficiency_isotonic(double *fit, const double *y, int n) {
    /* pool adjacent violators over the finite entries: blocks of (sum, count) */
    double *sum = mallocCheck((size_t)(n ? n : 1) * sizeof *sum);
    int *cnt = mallocCheck((size_t)(n ? n : 1) * sizeof *cnt), *last = mallocCheck((size_t)(n ? n : 1) * sizeof *last);
    int nb = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        sum[nb] = y[i], cnt[nb] = 1, last[nb++] = i;
        while (nb > 1 && sum[nb - 2] / cnt[nb - 2] > sum[nb - 1] / cnt[nb - 1]) {
            sum[nb - 2] += sum[nb - 1], cnt[nb - 2] += cnt[nb - 1], last[nb - 2] = last[nb - 1];
            nb--;
        }
    }
    for (int i = n - 1, b = nb - 1; i >= 0; i--) {
        while (b > 0 && last[b - 1] >= i) b--;
        fit[i] = nb ? sum[b] / cnt[b] : NAN;
    }
    free(sum), free(cnt), free(last);
}

double efficiency_crossing(const double *x, const double *fit, int n, double target) {
    for (int i = 0; i < n; i++) {
        if (!(fit[i] >= target)) continue;
        if (i == 0 || fit[i] == fit[i - 1]) return x[i];
        return x[i - 1] + (target - fit[i - 1]) / (fit[i] - fit[i - 1]) * (x[i] - x[i - 1]);
    }
    return NAN;
}

/* One run's curve of the metric, cut where its schedule starts depending on the budget. */
typedef struct {
    double *x, *y;
    int n;
    long count; /* images per evaluation point (0: unknown, no resampling) */
} Curve;

static int read_curve(const RunInfo *r, const char *metric, Curve *c, int *budget_dependent) {
    memset(c, 0, sizeof *c);
    long nx = report_read_series(r->path, "eval", "images", &c->x);
    long ny = report_read_series(r->path, "eval", metric, &c->y);
    double chance;
    report_read_description(r->path, "eval", metric, &c->count, &chance);
    c->n = nx == ny && nx > 0 ? (int)nx : 0;
    if (!strcmp(r->schedule, "cosine") || !r->schedule[0]) *budget_dependent = 1;
    else
        while (c->n > 0 && c->x[c->n - 1] > r->budget_free_until) c->n--;
    return c->n;
}

static void curve_free(Curve *c) { free(c->x), free(c->y); }

/* Ratio of one seed at target fraction frac from the (possibly resampled) curves; scratch
 * [2 * (nf + ns)]. Sets *xs, *xf (crossings) and *target. */
static double seed_ratio(const Curve *fast, const double *yf, const Curve *slow, const double *ys, double frac,
                         double *scratch, double *xs, double *xf, double *target) {
    double *ff = scratch, *fs = scratch + fast->n;
    efficiency_isotonic(ff, yf, fast->n);
    efficiency_isotonic(fs, ys, slow->n);
    *target = *xs = *xf = NAN;
    if (fast->n == 0 || slow->n == 0 || isnan(fs[slow->n - 1])) return NAN;
    *target = frac * fs[slow->n - 1];
    *xs = efficiency_crossing(slow->x, fs, slow->n, *target);
    *xf = efficiency_crossing(fast->x, ff, fast->n, *target);
    return *xs > 0 && *xf > 0 ? *xs / *xf : NAN; /* a crossing at 0 images: reached before training */
}

/* The paired seeds of one group: curves[s * 2 + 0] fast, [s * 2 + 1] slow. */
typedef struct {
    int n;          /* seeds paired: curves [2 n], fast then slow */
    int at_chance;  /* seeds left out because the slow arm never left chance */
    Curve *curves;
} Pairs;

/* Geometric mean over the seeds listed in pick [k] of their ratios, with optional parametric
 * resampling of every point (rng != NULL). */
static double pick_geomean(const Pairs *p, const int *pick, int k, double frac, Rng *rng, double *scratch, int *defined,
                           double *gm_slow, double *gm_fast, double *mean_target) {
    double *ratio = mallocCheck((size_t)k * sizeof *ratio), *xs = mallocCheck((size_t)k * sizeof *xs);
    double *xf = mallocCheck((size_t)k * sizeof *xf), tsum = 0;
    int tn = 0;
    for (int j = 0; j < k; j++) {
        const Curve *f = &p->curves[2 * pick[j]], *s = &p->curves[2 * pick[j] + 1];
        double *yf = scratch, *ys = scratch + f->n, *work = scratch + f->n + s->n;
        for (int i = 0; i < f->n; i++) yf[i] = rng ? stats_resample_accuracy(rng, f->y[i], f->count) : f->y[i];
        for (int i = 0; i < s->n; i++) ys[i] = rng ? stats_resample_accuracy(rng, s->y[i], s->count) : s->y[i];
        double target;
        ratio[j] = seed_ratio(f, yf, s, ys, frac, work, &xs[j], &xf[j], &target);
        if (isfinite(target)) tsum += target, tn++;
        if (isnan(ratio[j])) xs[j] = xf[j] = NAN;
    }
    int ignored;
    double gm = stats_geomean(ratio, k, defined);
    if (gm_slow) *gm_slow = stats_geomean(xs, k, &ignored);
    if (gm_fast) *gm_fast = stats_geomean(xf, k, &ignored);
    if (mean_target) *mean_target = tn ? tsum / tn : NAN;
    free(ratio), free(xs), free(xf);
    return gm;
}

/* The swept keys the arms select on, comma-separated (what a group key leaves out). */
static void selector_keys(const EfficiencySpec *s, char *out, size_t cap) {
    out[0] = 0;
    size_t o = 0;
    for (int a = 0; a < s->n_arms; a++)
        for (const char *p = s->arm_select[a]; p && *p;) {
            const char *eq = strchr(p, '='), *end = strchr(p, ',');
            if (!eq) break;
            int len = (int)(eq - p) - (eq > p && eq[-1] == '!');
            o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%.*s", o ? "," : "", len, p);
            if (o >= cap) o = cap - 1;
            p = end ? end + 1 : NULL;
        }
}

/* Group keys (config key minus the selector keys) in order of first appearance. */
static int group_keys(const RunTable *t, const char *drop, char (**out)[512]) {
    char(*keys)[512] = mallocCheck((size_t)(t->n_configs + 1) * sizeof *keys);
    int n = 0;
    for (int c = 0; c < t->n_configs; c++) {
        char g[512];
        swept_without(t->configs[c].key, drop, g, sizeof g);
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = !strcmp(keys[k], g);
        if (!seen) snprintf(keys[n++], sizeof keys[0], "%s", g);
    }
    *out = keys;
    return n;
}

/* The configuration of group g selected by arm a (the first match), or -1. */
static int arm_config(const RunTable *t, const char *drop, const char *group, const char *select) {
    for (int c = 0; c < t->n_configs; c++) {
        char g[512];
        swept_without(t->configs[c].key, drop, g, sizeof g);
        if (!strcmp(g, group) && efficiency_selects(select, t->configs[c].key)) return c;
    }
    return -1;
}

/* Seeds completed in both configurations, with their curves. */
static void load_pairs(const RunTable *t, int cf, int cs, const char *metric, Pairs *p, int *budget_dependent) {
    p->n = p->at_chance = 0;
    p->curves = NULL;
    if (cf < 0 || cs < 0) return;
    const RunConfig *rc = &t->configs[cf];
    p->curves = callocCheck((size_t)(2 * rc->n_runs + 2), sizeof *p->curves);
    for (int j = 0; j < rc->n_runs; j++) {
        const RunInfo *rf = &t->runs[rc->runs[j]], *rs = runtable_run(t, cs, rf->seed);
        if (!runtable_completed(rf) || !rs) continue;
        /* a target on a slow curve at chance is noise: such a seed has no ratio to report */
        if (runtable_left_chance(rs) == 0) {
            p->at_chance++;
            continue;
        }
        read_curve(rf, metric, &p->curves[2 * p->n], budget_dependent);
        read_curve(rs, metric, &p->curves[2 * p->n + 1], budget_dependent);
        p->n++;
    }
}

static void pairs_free(Pairs *p) {
    for (int i = 0; i < 2 * p->n; i++) curve_free(&p->curves[i]);
    free(p->curves);
}

/* A tab and the number, "NaN" for a missing one (as gnuplot's `set datafile missing` expects). */
static void tsv_num(FILE *f, double v) {
    if (isnan(v)) fputs("\tNaN", f);
    else fprintf(f, "\t%.10g", v);
}

/* One row: the ratio at one target fraction, with the bootstrap interval. */
static void ratio_row(FILE *f, FILE *tsv, const char *group, const char *name, const char *id, const Pairs *p,
                      double frac) {
    int max_n = 0;
    for (int i = 0; i < 2 * p->n; i++) max_n = p->curves[i].n > max_n ? p->curves[i].n : max_n;
    double *scratch = mallocCheck((size_t)(8 * max_n + 8) * sizeof *scratch);
    int *pick = mallocCheck((size_t)(p->n ? p->n : 1) * sizeof *pick), defined;
    for (int s = 0; s < p->n; s++) pick[s] = s;
    double slow, fast, target;
    double gm = pick_geomean(p, pick, p->n, frac, NULL, scratch, &defined, &slow, &fast, &target);
    double *boot = mallocCheck(EFFICIENCY_BOOTSTRAP * sizeof *boot), lo = NAN, hi = NAN;
    int nb = 0;
    Rng rng;
    rng_init(&rng, EFFICIENCY_BOOT_SEED + (uint64_t)(1000 * frac));
    for (int b = 0; b < EFFICIENCY_BOOTSTRAP && p->n > 0; b++) {
        for (int s = 0; s < p->n; s++) pick[s] = (int)rng_below(&rng, (uint32_t)p->n);
        int d;
        double v = pick_geomean(p, pick, p->n, frac, &rng, scratch, &d, NULL, NULL, NULL);
        if (d > 0) boot[nb++] = v;
    }
    if (nb >= EFFICIENCY_MIN_DEFINED * EFFICIENCY_BOOTSTRAP) {
        lo = stats_quantile(boot, nb, 0.025);
        hi = stats_quantile(boot, nb, 0.975);
    }
    char cell[64] = "not reached", ci[64] = "-", seeds[96];
    if (defined) snprintf(cell, sizeof cell, "%.2fx", gm);
    if (!isnan(lo)) snprintf(ci, sizeof ci, "[%.2f, %.2f]", lo, hi);
    int o = defined == p->n ? snprintf(seeds, sizeof seeds, "%d of %d seeds", defined, p->n)
                            : snprintf(seeds, sizeof seeds, "%d of %d seeds never reached", p->n - defined, p->n);
    if (p->at_chance) snprintf(seeds + o, sizeof seeds - (size_t)o, "; %d more: slow arm at chance", p->at_chance);
    fprintf(f, "  %-28s %-34s %5.0f%% %8.4f %12s %16s  %s\n", group[0] ? group : "(all)", name, 100 * frac, target, cell,
            ci, seeds);
    if (tsv) {
        fprintf(tsv, "%s\t%s\t%g", group[0] ? group : "all", id, frac);
        const double v[4] = {target, gm, lo, hi};
        for (int i = 0; i < 4; i++) tsv_num(tsv, v[i]);
        fprintf(tsv, "\t%d\t%d", defined, p->n);
        tsv_num(tsv, slow);
        tsv_num(tsv, fast);
        fputc('\n', tsv);
    }
    free(scratch), free(pick), free(boot);
}

void analysis_efficiency(FILE *f, FILE *tsv, const RunInfo *runs, int n, const char *metric, const EfficiencySpec *spec) {
    RunTable t;
    runtable_build(&t, runs, n);
    char drop[1024];
    selector_keys(spec, drop, sizeof drop);
    size_t dl = strlen(drop);
    snprintf(drop + dl, sizeof drop - dl, "%sseed", dl ? "," : "");
    char(*groups)[512];
    int ng = group_keys(&t, drop, &groups), budget_dependent = 0;
    fprintf(f, "\nCLIP Fig. 2 efficiency ratios on %s: images the slow arm needs to reach the target / images the "
               "fast arm needs (isotonic fits of the curves, interpolated crossings); geometric mean over paired "
               "seeds, 95%% bootstrap interval over seeds and evaluation images (%d replicates):\n",
            metric, EFFICIENCY_BOOTSTRAP);
    fprintf(f, "  %-28s %-34s %6s %8s %12s %16s  %s\n", "group", "fast vs slow", "target", "accuracy", "ratio",
            "95% interval", "seeds");
    if (tsv) fprintf(tsv, "group\tratio\ttarget_frac\ttarget\tratio_geomean\tlo\thi\tseeds_defined\tseeds\timages_slow\timages_fast\n");
    for (int g = 0; g < ng; g++)
        for (int r = 0; r < spec->n_ratios; r++) {
            int fa = spec->fast[r], sa = spec->slow[r];
            char name[2 * EFFICIENCY_NAME_MAX + 8], id[2 * EFFICIENCY_NAME_MAX + 2];
            snprintf(name, sizeof name, "%s vs %s", spec->arm_names[fa], spec->arm_names[sa]);
            snprintf(id, sizeof id, "%s/%s", spec->arm_names[fa], spec->arm_names[sa]);
            Pairs p;
            load_pairs(&t, arm_config(&t, drop, groups[g], spec->arm_select[fa]),
                       arm_config(&t, drop, groups[g], spec->arm_select[sa]), metric, &p, &budget_dependent);
            if (p.n == 0 && p.at_chance)
                fprintf(f, "  %-28s %-34s  (the slow arm never left chance in its %d seeds: no ratio)\n",
                        groups[g][0] ? groups[g] : "(all)", name, p.at_chance);
            else if (p.n == 0)
                fprintf(f, "  %-28s %-34s  (no seed has both arms)\n", groups[g][0] ? groups[g] : "(all)", name);
            for (int k = 0; k < EFFICIENCY_N_TARGETS && p.n > 0; k++) ratio_row(f, tsv, groups[g], name, id, &p, EFFICIENCY_TARGETS[k]);
            pairs_free(&p);
        }
    fprintf(f, "  (target: a fraction of the slow arm's best fitted accuracy; 'never reached': the fast arm never "
               "reached it within the budget, or a crossing was at 0 images; 'slow arm at chance': seeds whose slow "
               "arm never rose above chance are left out, since a target at chance is noise)\n");
    if (budget_dependent)
        fprintf(f, "  warning: some runs used a cosine schedule, whose curve at N images depends on the budget: "
                   "these ratios hold for this budget only (train.schedule: constant or wsd avoids it)\n");
    free(groups);
    runtable_free(&t);
}
