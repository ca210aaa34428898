/* analysis.c — ablation answers from finished runs (see analysis.h). */
#include "analysis/analysis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"

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

static double summary_value(const RunInfo *r, const char *metric) {
    for (int i = 0; i < r->n_summary; i++)
        if (!strcmp(r->summary_names[i], metric)) return r->summary_values[i];
    return NAN;
}

/* Mean, sample variance and count of a metric over the completed runs whose swept string minus
 * the seed equals config. */
static int config_stats(const RunInfo *runs, int n, const char *config, const char *metric, double *mean, double *var) {
    double s = 0, s2 = 0;
    int k = 0;
    char key[512];
    for (int i = 0; i < n; i++) {
        if (strcmp(runs[i].status, "completed")) continue;
        swept_without(runs[i].swept, "seed", key, sizeof key);
        double v = summary_value(&runs[i], metric);
        if (strcmp(key, config) || isnan(v)) continue;
        s += v;
        s2 += v * v;
        k++;
    }
    *mean = k ? s / k : NAN;
    *var = k > 1 ? (s2 - s * s / k) / (k - 1) : NAN;
    if (*var < 0) *var = 0;
    return k;
}

/* Rebuilds the swept string of `other` (the config without axis) with axis=value, in the order
 * the runs use, by finding a run that matches. Returns 0 if found. */
static int config_with(const RunInfo *runs, int n, const char *axis, const char *other, const char *value, char *out,
                       size_t len) {
    char rest[512], v[128];
    for (int i = 0; i < n; i++) {
        swept_without(runs[i].swept, "seed", out, len);
        char drop[160];
        snprintf(drop, sizeof drop, "seed,%s", axis);
        swept_without(runs[i].swept, drop, rest, sizeof rest);
        if (!strcmp(rest, other) && !swept_get(runs[i].swept, axis, v, sizeof v) && !strcmp(v, value)) return 0;
    }
    return -1;
}

/* Tally of one (metric, value) comparison against the baseline over the other configurations. */
typedef struct {
    int higher, lower, same, undecidable, n;
    double sum_diff;
} Tally;

int analysis_compare_axis(FILE *f, const RunInfo *runs, int n, const char *axis, const char *baseline,
                          const char *const *metrics, int n_metrics) {
    /* axis values in order of first appearance, the baseline first */
    char values[16][128];
    int nv = 0;
    if (baseline && baseline[0]) snprintf(values[nv++], sizeof values[0], "%s", baseline);
    for (int i = 0; i < n && nv < 16; i++) {
        char v[128];
        if (!swept_get(runs[i].swept, axis, v, sizeof v)) add_unique(values[0], sizeof values[0], &nv, 16, v);
    }
    if (nv < 2) return 0;
    char drop[160];
    snprintf(drop, sizeof drop, "seed,%s", axis);
    int printed = 0;
    Tally tally[32][16] = {{{0}}};
    for (int m = 0; m < n_metrics && m < 32; m++) {
        fprintf(f, "\n%s: each %s against %s=%s, other swept values held equal (mean over seeds; "
                   "'significant' = |diff| > 2 standard errors)\n",
                metrics[m], axis, axis, values[0]);
        /* one row per distinct "other" configuration and compared value */
        char done[256][512];
        int nd = 0;
        for (int i = 0; i < n && nd < 256; i++) {
            char other[512];
            swept_without(runs[i].swept, drop, other, sizeof other);
            if (!add_unique(done[0], sizeof done[0], &nd, 256, other)) continue;
            for (int vi = 1; vi < nv; vi++) {
                char ca[512], cb[512];
                if (config_with(runs, n, axis, other, values[0], ca, sizeof ca) ||
                    config_with(runs, n, axis, other, values[vi], cb, sizeof cb))
                    continue;
                double ma, va, mb, vb;
                int ka = config_stats(runs, n, ca, metrics[m], &ma, &va);
                int kb = config_stats(runs, n, cb, metrics[m], &mb, &vb);
                if (!ka || !kb) continue;
                Tally *t = &tally[m][vi];
                double diff = mb - ma;
                double se = (ka > 1 && kb > 1) ? sqrt(va / ka + vb / kb) : NAN;
                const char *verdict;
                if (isnan(se)) verdict = "n/a (1 seed)", t->undecidable++;
                else if (fabs(diff) > 2 * se) verdict = diff > 0 ? "higher" : "lower", diff > 0 ? t->higher++ : t->lower++;
                else verdict = "no significant difference", t->same++;
                t->sum_diff += diff;
                t->n++;
                fprintf(f, "  %-60s %s=%-8s %8.4f  %s=%-8s %8.4f  diff %+8.4f  (2SE %.4f, seeds %d/%d)  %s\n",
                        other[0] ? other : "(all)", axis, values[0], ma, axis, values[vi], mb, diff, 2 * se, ka, kb,
                        verdict);
                printed++;
            }
        }
    }
    fprintf(f, "\nanswer: each %s minus %s=%s, per metric (comparisons hold every other swept value equal; "
               "'n.s.' = within 2 standard errors):\n", axis, axis, values[0]);
    fprintf(f, "  %-32s %-14s %10s %11s %7s %7s %7s %12s\n", "metric", "value", "mean diff", "comparisons", "higher",
            "lower", "n.s.", "undecidable");
    for (int m = 0; m < n_metrics && m < 32; m++)
        for (int vi = 1; vi < nv; vi++) {
            const Tally *t = &tally[m][vi];
            if (t->n)
                fprintf(f, "  %-32s %-14s %+10.4f %11d %7d %7d %7d %12d\n", metrics[m], values[vi], t->sum_diff / t->n,
                        t->n, t->higher, t->lower, t->same, t->undecidable);
            else
                fprintf(f, "  %-32s %-14s %10s   (no configuration has it for both values, e.g. a target never "
                           "reached)\n", metrics[m], values[vi], "-");
        }
    return printed;
}

/* Fig. 2 arms. */
enum { ARM_CAPTION, ARM_BOW, ARM_CONTRASTIVE_CBOW, ARM_CONTRASTIVE_TRANSFORMER, N_ARMS };
static const char *const ARM_NAMES[N_ARMS] = {"caption", "bow", "contrastive-cbow", "contrastive-transformer"};

static int run_arm(const RunInfo *r) {
    char kind[64] = "", text[64] = "cbow";
    if (swept_get(r->swept, "objective.kind", kind, sizeof kind)) return -1;
    swept_get(r->swept, "model.text.kind", text, sizeof text);
    if (!strcmp(kind, "caption")) return ARM_CAPTION;
    if (!strcmp(kind, "bow")) return ARM_BOW;
    if (!strcmp(kind, "contrastive")) return strcmp(text, "transformer") ? ARM_CONTRASTIVE_CBOW : ARM_CONTRASTIVE_TRANSFORMER;
    return -1;
}

typedef struct {
    long n;
    double *x, *y;
} Series;

/* One of Fig. 2's arrows: B's best accuracy, the images B needed for it and the images A needed
 * to reach it; ratio = images_b / images_a (A is that many times more efficient). The ratio is NaN
 * when B never improved on its first evaluation or A never gets there. */
typedef struct {
    double best, images_b, images_a, ratio;
} Arrow;

static Arrow efficiency_arrow(const Series *a, const Series *b) {
    Arrow r = {NAN, NAN, NAN, NAN};
    if (a->n <= 0 || b->n <= 0) return r;
    r.best = b->y[0];
    for (long i = 1; i < b->n; i++) r.best = b->y[i] > r.best ? b->y[i] : r.best;
    if (!(r.best > b->y[0])) return r;
    r.images_b = images_to_reach(b->x, b->y, (int)b->n, r.best);
    r.images_a = images_to_reach(a->x, a->y, (int)a->n, r.best);
    r.ratio = r.images_a > 0 ? r.images_b / r.images_a : NAN;
    return r;
}

static void mean_std(const double *v, int n, double *mean, double *std, int *k) {
    double s = 0, s2 = 0;
    *k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) s += v[i], s2 += v[i] * v[i], (*k)++;
    *mean = *k ? s / *k : NAN;
    *std = *k > 1 ? sqrt(fmax(0, (s2 - s * s / *k) / (*k - 1))) : NAN;
}

void analysis_efficiency(FILE *f, FILE *tsv, const RunInfo *runs, int n, const char *metric) {
    char noises[16][32];
    int nn = 0;
    for (int i = 0; i < n && nn < 16; i++) {
        char v[32] = "-";
        swept_get(runs[i].swept, "data.caption_noise", v, sizeof v);
        add_unique(noises[0], sizeof noises[0], &nn, 16, v);
    }
    fprintf(f, "\nCLIP Fig. 2 efficiency ratios on %s (images B needs to reach its best / images A needs to reach "
               "it; paper: BoW vs caption LM ~3x, contrastive vs BoW ~4x):\n", metric);
    fprintf(f, "  %-14s %-26s %-26s %-26s\n", "caption_noise", "bow vs caption", "contrastive(cbow) vs bow",
            "contrastive(transf.) vs bow");
    static const char *const RATIO_NAMES[3] = {"bow_vs_caption", "con_cbow_vs_bow", "con_tf_vs_bow"};
    if (tsv) {
        fprintf(tsv, "caption_noise");
        for (int k = 0; k < 3; k++)
            fprintf(tsv, "\t%s_mean\t%s_std\t%s_seeds\t%s_best\t%s_images_slow\t%s_images_fast", RATIO_NAMES[k],
                    RATIO_NAMES[k], RATIO_NAMES[k], RATIO_NAMES[k], RATIO_NAMES[k], RATIO_NAMES[k]);
        fputc('\n', tsv);
    }
    for (int ni = 0; ni < nn; ni++) {
        Arrow ar[3][64];
        int nr = 0;
        for (long seed = 0; seed < 1000 && nr < 64; seed++) {
            Series s[N_ARMS] = {{0}};
            int found = 0;
            for (int i = 0; i < n; i++) {
                char v[32] = "-";
                swept_get(runs[i].swept, "data.caption_noise", v, sizeof v);
                int arm = run_arm(&runs[i]);
                if (runs[i].seed != seed || strcmp(v, noises[ni]) || arm < 0 || strcmp(runs[i].status, "completed")) continue;
                s[arm].n = report_read_series(runs[i].path, "eval", "images", &s[arm].x);
                long ny = report_read_series(runs[i].path, "eval", metric, &s[arm].y);
                if (ny != s[arm].n) s[arm].n = -1;
                found = 1;
            }
            if (found) {
                ar[0][nr] = efficiency_arrow(&s[ARM_BOW], &s[ARM_CAPTION]);
                ar[1][nr] = efficiency_arrow(&s[ARM_CONTRASTIVE_CBOW], &s[ARM_BOW]);
                ar[2][nr] = efficiency_arrow(&s[ARM_CONTRASTIVE_TRANSFORMER], &s[ARM_BOW]);
                nr++;
            }
            for (int a = 0; a < N_ARMS; a++) free(s[a].x), free(s[a].y);
        }
        fprintf(f, "  %-14s", noises[ni]);
        if (tsv) fprintf(tsv, "%s", noises[ni]);
        for (int k = 0; k < 3; k++) {
            double ratio[64], best[64], slow[64], fast[64], mean, std, best_m, slow_m, fast_m, unused;
            int valid, ignored;
            for (int i = 0; i < nr; i++) {
                ratio[i] = ar[k][i].ratio;
                best[i] = ar[k][i].best;
                slow[i] = ar[k][i].images_b;
                fast[i] = ar[k][i].images_a;
            }
            mean_std(ratio, nr, &mean, &std, &valid);
            mean_std(best, nr, &best_m, &unused, &ignored);
            mean_std(slow, nr, &slow_m, &unused, &ignored);
            mean_std(fast, nr, &fast_m, &unused, &ignored);
            char cell[64];
            if (valid) snprintf(cell, sizeof cell, "%.2fx ± %.2f (%d/%d seeds)", mean, std, valid, nr);
            else snprintf(cell, sizeof cell, "not reached (0/%d)", nr);
            fprintf(f, " %-26s", cell);
            if (tsv) fprintf(tsv, "\t%.10g\t%.10g\t%d\t%.10g\t%.10g\t%.10g", mean, std, valid, best_m, slow_m, fast_m);
        }
        fputc('\n', f);
        if (tsv) fputc('\n', tsv);
    }
    fprintf(f, "  (arms: %s, %s, %s, %s; 'not reached' = A never reached B's best within the budget, or B never "
               "improved on its untrained accuracy)\n", ARM_NAMES[0], ARM_NAMES[1], ARM_NAMES[2], ARM_NAMES[3]);
}

int analysis_write_summary_tsv(const char *path, const RunInfo *runs, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    /* columns: swept keys of the first run (minus seed), then mean/min/max of every metric */
    char keys[512];
    swept_without(n ? runs[0].swept : "", "seed", keys, sizeof keys);
    char names[256][64];
    int nm = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i].n_summary; j++) add_unique(names[0], sizeof names[0], &nm, 256, runs[i].summary_names[j]);
    fprintf(f, "config");
    for (const char *p = keys; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        fprintf(f, "\t%.*s", (int)(eq - p), p);
        if (!end) break;
        p = end + 1;
    }
    for (int k = 0; k < nm; k++) fprintf(f, "\t%s_mean\t%s_min\t%s_max", names[k], names[k], names[k]);
    fprintf(f, "\tseeds\n");
    char done[512][512];
    int nd = 0;
    for (int i = 0; i < n && nd < 512; i++) {
        char cfg[512];
        swept_without(runs[i].swept, "seed", cfg, sizeof cfg);
        if (!add_unique(done[0], sizeof done[0], &nd, 512, cfg)) continue;
        fprintf(f, "%s", cfg[0] ? cfg : "all");
        for (const char *p = cfg; *p;) {
            const char *eq = strchr(p, '='), *end = strchr(p, ',');
            int len = end ? (int)(end - eq - 1) : (int)strlen(eq + 1);
            fprintf(f, "\t%.*s", len, eq + 1);
            if (!end) break;
            p = end + 1;
        }
        int seeds = 0;
        for (int k = 0; k < nm; k++) {
            double s = 0, lo = INFINITY, hi = -INFINITY;
            int c = 0;
            for (int r = 0; r < n; r++) {
                char rc[512];
                swept_without(runs[r].swept, "seed", rc, sizeof rc);
                double v = summary_value(&runs[r], names[k]);
                if (strcmp(rc, cfg) || strcmp(runs[r].status, "completed") || isnan(v)) continue;
                s += v, c++;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            seeds = c > seeds ? c : seeds;
            if (c) fprintf(f, "\t%g\t%g\t%g", s / c, lo, hi);
            else fprintf(f, "\tNaN\tNaN\tNaN");
        }
        fprintf(f, "\t%d\n", seeds);
    }
    return fclose(f) ? -1 : 0;
}
