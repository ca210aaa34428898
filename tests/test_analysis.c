/* test_analysis.c — the ablations' answers on hand-made run files: swept-string helpers, the
 * axis comparison's verdicts, and CLIP Fig. 2's efficiency ratios against hand-computed values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "analysis/analysis.h"
#include "analysis/efficiency.h"
#include "analysis/stats.h"
#include "common/rng.h"
#include "log/runlog.h"

static char g_dir[64];

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/cliplab_analysis_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd);
}

/* A finished run file with the given swept values, seed, a zero-shot curve and summary metric. */
static void write_run(const char *id, const char *swept, long seed, const double *images, const double *acc, int n,
                      const char *metric, double summary) {
    Err err;
    RunLog *l = runlog_create(g_dir, id, &err);
    assert_non_null(l);
    runlog_attr_str(l, "swept", swept);
    runlog_attr_int(l, "seed", seed);
    for (int i = 0; i < n; i++) {
        runlog_append(l, "eval", "images", images[i]);
        runlog_append(l, "eval", metric, acc[i]);
    }
    runlog_summary(l, metric, summary);
    assert_int_equal(runlog_finish(l, "completed", &err), 0);
}

static void test_swept_helpers(void **state) {
    (void)state;
    char v[64];
    assert_int_equal(swept_get("a.b=1,c=xy,seed=3", "c", v, sizeof v), 0);
    assert_string_equal(v, "xy");
    assert_int_equal(swept_get("a.b=1,c=xy", "a", v, sizeof v), -1); /* a key, not a prefix */
    swept_without("a.b=1,c=xy,seed=3", "seed", v, sizeof v);
    assert_string_equal(v, "a.b=1,c=xy");
    swept_without("a.b=1,c=xy,seed=3", "seed,a.b", v, sizeof v);
    assert_string_equal(v, "c=xy");
}

/* Two values of an axis, two seeds each, paired by seed. bs=32: mlp is 0.20 above linear on both
 * seeds (up to round-off: a vanishing spread, p ~ 0) -> higher. bs=64: differences +0.05 and -0.05 ->
 * mean 0, sd 0.0707, 95% interval ±12.706 * 0.05 = ±0.635, far wider than the 0.02 effect of
 * interest -> underpowered. */
static void test_compare_axis_verdicts(void **state) {
    (void)state;
    double x[] = {0, 1};
    struct { const char *id, *swept; long seed; double v; } runs[] = {
        {"a1", "head=linear,bs=32,seed=1", 1, 0.40}, {"a2", "head=linear,bs=32,seed=2", 2, 0.42},
        {"b1", "head=mlp,bs=32,seed=1", 1, 0.60},    {"b2", "head=mlp,bs=32,seed=2", 2, 0.62},
        {"c1", "head=linear,bs=64,seed=1", 1, 0.30}, {"c2", "head=linear,bs=64,seed=2", 2, 0.50},
        {"d1", "head=mlp,bs=64,seed=1", 1, 0.35},    {"d2", "head=mlp,bs=64,seed=2", 2, 0.45},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double y[] = {0, runs[i].v};
        write_run(runs[i].id, runs[i].swept, runs[i].seed, x, y, 2, "zs.top1", runs[i].v);
    }
    RunInfo *ri;
    int n;
    Err err;
    assert_int_equal(report_scan(g_dir, &ri, &n, &err), 0);
    assert_int_equal(n, 8);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *metrics[] = {"zs.top1"};
    AxisTally tally;
    assert_int_equal(analysis_compare_axis(f, ri, n, "head", "linear", metrics, 1, &tally), 2);
    fclose(f);
    assert_non_null(strstr(buf, "diff  +0.2000"));
    assert_non_null(strstr(buf, "[-0.6353, +0.6353]"));
    assert_non_null(strstr(buf, "higher"));
    assert_non_null(strstr(buf, "underpowered"));
    assert_int_equal(tally.comparisons, 2);
    assert_int_equal(tally.higher, 1);
    assert_int_equal(tally.underpowered, 1);
    assert_int_equal(tally.lower + tally.same + tally.undecidable + tally.at_chance, 0);
    /* answer row: mean diff (+0.20 + 0)/2 = +0.1000 over 2 comparisons */
    const char *ans = strstr(buf, "\nanswer:");
    assert_non_null(ans);
    ans = strstr(ans, "\n  zs.top1");
    assert_non_null(ans);
    char metric[32], value[32];
    double mean;
    int c[7];
    assert_int_equal(sscanf(ans, "%31s %31s %lf %d %d %d %d %d %d %d", metric, value, &mean, &c[0], &c[1], &c[2], &c[3],
                            &c[4], &c[5], &c[6]), 10);
    assert_string_equal(value, "mlp");
    assert_true(fabs(mean - 0.1) < 1e-9);
    assert_int_equal(c[0], 2);
    assert_int_equal(c[1], 1);
    assert_int_equal(c[4], 1);
    free(buf);
    report_free(ri, n);
}

/* Student t against table values, Holm by hand, the paired interval by hand. */
static void test_stats_t_holm_paired(void **state) {
    (void)state;
    const struct { int df; double q975; } table[] = {{1, 12.7062}, {2, 4.3027}, {3, 3.1824}, {4, 2.7764}, {9, 2.2622},
                                                     {30, 2.0423}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        double q = stats_t_quantile(0.975, table[i].df);
        assert_true(fabs(q - table[i].q975) < 1e-4);
        assert_true(fabs(stats_t_cdf(q, table[i].df) - 0.975) < 1e-10);
        assert_true(fabs(stats_t_pvalue(q, table[i].df) - 0.05) < 1e-10);
        assert_true(fabs(stats_t_cdf(-q, table[i].df) - 0.025) < 1e-10);
    }
    assert_true(fabs(stats_t_cdf(1.0, 1) - 0.75) < 1e-12); /* Cauchy: 1/2 + atan(1)/pi */
    const double p[5] = {0.01, 0.04, 0.03, 0.005, NAN};
    double adj[5];
    stats_holm(p, 5, adj);
    /* sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> max(0.06, 0.04) */
    const double want[4] = {0.03, 0.06, 0.06, 0.02};
    for (int i = 0; i < 4; i++) assert_true(fabs(adj[i] - want[i]) < 1e-12);
    assert_true(isnan(adj[4]));
    const double a[4] = {1, 2, 3, NAN}, b[4] = {2, 2.5, 4.5, 9};
    Paired d = stats_paired(a, b, 4); /* diffs 1, 0.5, 1.5: mean 1, sd 0.5 */
    assert_int_equal(d.k, 3);
    assert_true(fabs(d.mean - 1) < 1e-12 && fabs(d.sd - 0.5) < 1e-12);
    double half = 4.302652729911275 * 0.5 / sqrt(3.0);
    assert_true(fabs(d.lo - (1 - half)) < 1e-9 && fabs(d.hi - (1 + half)) < 1e-9);
    assert_true(fabs(d.p - stats_t_pvalue(1 / (0.5 / sqrt(3.0)), 2)) < 1e-15);
    /* equal differences have no spread: untestable when non-zero (quantised accuracies do this),
     * certainly no difference when zero */
    const double same_a[2] = {0.25, 0.5}, same_b[2] = {0.5, 0.75};
    assert_true(isnan(stats_paired(same_a, same_b, 2).p));
    assert_true(stats_paired(same_a, same_a, 2).p == 1.0);
}

/* In-memory runs as report_scan returns them: one summary metric, an accuracy over 1000 images. */
static RunInfo synth_run(const char *swept, long seed, double v, int left) {
    RunInfo r;
    memset(&r, 0, sizeof r);
    snprintf(r.swept, sizeof r.swept, "%s,seed=%ld", swept, seed);
    snprintf(r.run_id, sizeof r.run_id, "%.100s", r.swept);
    snprintf(r.status, sizeof r.status, "completed");
    r.seed = seed;
    r.n_summary = 2;
    r.summary_names = calloc(2, sizeof *r.summary_names);
    r.summary_values = calloc(2, sizeof *r.summary_values);
    r.summary_counts = calloc(2, sizeof *r.summary_counts);
    r.summary_chance = calloc(2, sizeof *r.summary_chance);
    strcpy(r.summary_names[0], "acc");
    strcpy(r.summary_names[1], "left_chance");
    r.summary_values[0] = v;
    r.summary_values[1] = left;
    r.summary_counts[0] = 1000;
    r.summary_chance[0] = 0.1;
    r.summary_chance[1] = NAN;
    return r;
}

/* Pooled row by hand: 3 configurations x 2 seeds with seed-paired mean differences 0.10, 0.20,
 * 0.30 (each from two unequal per-seed differences), and a fourth configuration at chance whose
 * -0.5 is left out. k = 3: mean 0.2, sd 0.1, se 0.1/sqrt(3); t = 2 sqrt(3) on 2 df, whose
 * two-sided p is 1 - t/sqrt(t^2 + 2) = 1 - sqrt(12/14) = 0.07418; interval 0.2 ± 4.302653 x
 * 0.057735 = [-0.0484, +0.4484], wider than 0.02 -> underpowered; 0 negative, 3 positive. */
static void test_pooled_row_by_hand(void **state) {
    (void)state;
    const struct { const char *bs; double lin[2], mlp[2]; int left; } cfg[] = {
        {"32", {0.40, 0.42}, {0.48, 0.54}, 1}, /* diffs 0.08, 0.12 */
        {"64", {0.30, 0.50}, {0.55, 0.65}, 1}, /* 0.25, 0.15 */
        {"128", {0.50, 0.50}, {0.75, 0.85}, 1}, /* 0.25, 0.35 */
        {"256", {0.60, 0.60}, {0.10, 0.10}, 0}, /* at chance: excluded */
    };
    RunInfo runs[16];
    int n = 0;
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 2; s++) {
                char swept[64];
                snprintf(swept, sizeof swept, "head=%s,bs=%s", h ? "mlp" : "linear", cfg[c].bs);
                runs[n++] = synth_run(swept, s + 1, h ? cfg[c].mlp[s] : cfg[c].lin[s], cfg[c].left);
            }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *metrics[1] = {"acc"};
    AxisTally tally;
    analysis_compare_axis(f, runs, n, "head", "linear", metrics, 1, &tally);
    fclose(f);
    const char *row = strstr(buf, "\npooled over configurations");
    assert_non_null(row);
    row = strstr(row, "\n  acc ");
    assert_non_null(row);
    char metric[32], value[32], verdict[32];
    int k, neg, pos;
    double mean, lo, hi, p, holm;
    assert_int_equal(sscanf(row, "%31s %31s %d %lf [%lf, %lf] %lf %lf %d %d %31s", metric, value, &k, &mean, &lo, &hi, &p,
                            &holm, &neg, &pos, verdict), 11);
    assert_string_equal(value, "mlp");
    assert_int_equal(k, 3);
    assert_true(fabs(mean - 0.2) < 1e-4);
    double half = 4.302652729911275 * 0.1 / sqrt(3.0);
    assert_true(fabs(lo - (0.2 - half)) < 1e-4 && fabs(hi - (0.2 + half)) < 1e-4);
    assert_true(fabs(p - (1 - sqrt(12.0 / 14.0))) < 1e-3 && fabs(holm - p) < 1e-12);
    assert_int_equal(neg, 0);
    assert_int_equal(pos, 3);
    assert_string_equal(verdict, "underpowered");
    assert_int_equal(tally.pooled_rows, 1);
    assert_int_equal(tally.pooled_higher + tally.pooled_lower, 0);
    free(buf);
    for (int i = 0; i < n; i++)
        free(runs[i].summary_names), free(runs[i].summary_values), free(runs[i].summary_counts),
            free(runs[i].summary_chance);
}

/* "no difference" needs the whole interval within the effect of interest. 12 configurations of
 * 2 seeds: bs=0 has differences -0.050 and -0.051 (interval about [-0.057, -0.044], p ~ 0.008,
 * Holm x12 ~ 0.1: not significant), the other 11 differences +-0.001 (within +-0.02). The narrow
 * interval away from 0 is "underpowered", not "no difference"; the 11 are "no difference". */
static void test_no_difference_needs_interval_within_effect(void **state) {
    (void)state;
    enum { CONFIGS = 12 };
    RunInfo runs[4 * CONFIGS];
    int n = 0;
    for (int c = 0; c < CONFIGS; c++)
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 2; s++) {
                char swept[64];
                snprintf(swept, sizeof swept, "head=%s,bs=%d", h ? "mlp" : "linear", c);
                double d = c == 0 ? (s ? -0.051 : -0.050) : (s ? 0.001 : -0.001);
                runs[n++] = synth_run(swept, s + 1, 0.5 + 0.01 * c + (h ? d : 0), 1);
            }
    FILE *devnull = fopen("/dev/null", "w");
    const char *metrics[1] = {"acc"};
    AxisTally tally;
    analysis_compare_axis(devnull, runs, n, "head", "linear", metrics, 1, &tally);
    fclose(devnull);
    assert_int_equal(tally.higher + tally.lower, 0);
    assert_int_equal(tally.underpowered, 1);
    assert_int_equal(tally.same, CONFIGS - 1);
    for (int i = 0; i < n; i++)
        free(runs[i].summary_names), free(runs[i].summary_values), free(runs[i].summary_counts),
            free(runs[i].summary_chance);
}

/* Simulated tables: axis head (linear, mlp) x 8 batch sizes x 3 seeds; value = config level +
 * seed effect + noise, plus `effect` for mlp. Returns the fraction of comparisons flagged;
 * *pooled the fraction of pooled rows (one per table) flagged. */
static double flag_rate(int tables, double effect, Rng *rng, int *at_chance, double *pooled) {
    enum { CONFIGS = 8, SEEDS = 3 };
    RunInfo runs[2 * CONFIGS * SEEDS];
    int flagged = 0, total = 0, pooled_flagged = 0, pooled_total = 0;
    *at_chance = 0;
    for (int t = 0; t < tables; t++) {
        int n = 0;
        for (int c = 0; c < CONFIGS; c++) {
            double level = 0.3 + 0.05 * c, seed_fx[SEEDS];
            for (int s = 0; s < SEEDS; s++) seed_fx[s] = 0.03 * rng_normal(rng);
            for (int h = 0; h < 2; h++)
                for (int s = 0; s < SEEDS; s++) {
                    char swept[64];
                    snprintf(swept, sizeof swept, "head=%s,bs=%d", h ? "mlp" : "linear", 32 << c);
                    double v = level + seed_fx[s] + 0.015 * rng_normal(rng) + (h ? effect : 0);
                    runs[n++] = synth_run(swept, s, v, !(c == 0 && t == 0)); /* one config at chance */
                }
        }
        const char *metrics[1] = {"acc"};
        AxisTally tally;
        FILE *devnull = fopen("/dev/null", "w");
        analysis_compare_axis(devnull, runs, n, "head", "linear", metrics, 1, &tally);
        fclose(devnull);
        flagged += tally.higher + tally.lower;
        total += tally.comparisons - tally.at_chance;
        pooled_flagged += tally.pooled_higher + tally.pooled_lower;
        pooled_total += tally.pooled_rows;
        *at_chance += tally.at_chance;
        for (int i = 0; i < n; i++)
            free(runs[i].summary_names), free(runs[i].summary_values), free(runs[i].summary_counts),
                free(runs[i].summary_chance);
    }
    *pooled = (double)pooled_flagged / pooled_total;
    return (double)flagged / total;
}

/* With no true difference the paired t + Holm rule flags at most 5% of comparisons (it controls
 * the family-wise rate, so per comparison it is far below), and the pooled row about 5% of tables; a real difference of 14x the noise of
 * a paired difference is flagged most of the time, so the rule is not merely silent (with 3 seeds,
 * df = 2, and 8 Holm-corrected comparisons a smaller effect is usually not resolved: the cost
 * of honesty at this number of seeds). Deterministic: a fixed seed. */
static void test_no_true_difference_flags_at_most_5_percent(void **state) {
    (void)state;
    Rng rng;
    rng_init(&rng, 2024);
    int at_chance;
    double pooled;
    double null_rate = flag_rate(200, 0.0, &rng, &at_chance, &pooled);
    print_message("flagged with no true difference: %.4f of 200 x 8 comparisons, %.4f of 200 pooled rows\n", null_rate,
                  pooled);
    assert_true(null_rate <= 0.05);
    /* The pooled row is one exact t test per table (Holm over one row is p itself), so its rate is
     * Binomial(200, 0.05) / 200 when the test holds its level: mean 0.05, sd 0.0154; 0.05 + 3 sd
     * still rejects a test whose real level is 10%. */
    assert_true(pooled <= 0.05 + 3 * sqrt(0.05 * 0.95 / 200));
    assert_int_equal(at_chance, 1); /* the configuration at chance is excluded, not tallied */
    double power = flag_rate(50, 0.3, &rng, &at_chance, &pooled);
    print_message("flagged with a true difference of 0.3: %.3f, pooled %.3f\n", power, pooled);
    assert_true(power >= 0.8);
    assert_true(pooled >= 0.8);
}

/* A finished run file for the efficiency tests: constant schedule, accuracy over 1000 images,
 * the trainer's left_chance verdict as given. */
static void write_curve_run_judged(const char *id, const char *swept, long seed, const double *x, const double *y,
                                   int n, int left_chance) {
    Err err;
    RunLog *l = runlog_create(g_dir, id, &err);
    assert_non_null(l);
    runlog_attr_str(l, "swept", swept);
    runlog_attr_int(l, "seed", seed);
    runlog_attr_str(l, "schedule", "constant");
    runlog_attr_double(l, "budget_free_until_images", x[n - 1]);
    for (int i = 0; i < n; i++) {
        runlog_append(l, "eval", "images", x[i]);
        runlog_append(l, "eval", "zs.top1", y[i]);
    }
    runlog_describe(l, "eval", "zs.top1", 1000, 0.1);
    runlog_summary(l, "zs.top1", y[n - 1]);
    runlog_summary(l, "left_chance", left_chance);
    assert_int_equal(runlog_finish(l, "completed", &err), 0);
}

static void write_curve_run(const char *id, const char *swept, long seed, const double *x, const double *y, int n) {
    write_curve_run_judged(id, swept, seed, x, y, n, 1);
}

static void test_isotonic_crossing_and_selectors(void **state) {
    (void)state;
    const double y[6] = {1, 3, 2, 4, 3, 5}, x[6] = {0, 10, 20, 30, 40, 50};
    double fit[6];
    efficiency_isotonic(fit, y, 6);
    const double want[6] = {1, 2.5, 2.5, 3.5, 3.5, 5};
    for (int i = 0; i < 6; i++) assert_true(fabs(fit[i] - want[i]) < 1e-12);
    assert_true(fabs(efficiency_crossing(x, fit, 6, 2.0) - (0 + 1.0 / 1.5 * 10)) < 1e-12);
    assert_true(efficiency_crossing(x, fit, 6, 3.5) == 30); /* reached exactly at a fitted point */
    assert_true(efficiency_crossing(x, fit, 6, 0.5) == 0);
    assert_true(isnan(efficiency_crossing(x, fit, 6, 5.5)));
    const char *cbow = "objective.kind=contrastive,data.caption_noise=0.5";
    const char *tf = "objective.kind=contrastive,model.text.kind=transformer,data.caption_noise=0.5";
    assert_true(efficiency_selects("objective.kind=contrastive,model.text.kind!=transformer", cbow));
    assert_false(efficiency_selects("objective.kind=contrastive,model.text.kind!=transformer", tf));
    assert_true(efficiency_selects("objective.kind=contrastive,model.text.kind=transformer", tf));
    assert_false(efficiency_selects("objective.kind=bow", cbow));
    EfficiencySpec spec = {0};
    Err err;
    assert_int_equal(efficiency_add_arm(&spec, "fast objective.kind=contrastive", &err), 0);
    assert_int_equal(efficiency_add_arm(&spec, "slow objective.kind=bow", &err), 0);
    assert_int_equal(efficiency_add_ratio(&spec, "fast/slow", &err), 0);
    assert_int_equal(efficiency_add_ratio(&spec, "fast/nope", &err), -1);
    assert_int_equal(efficiency_add_arm(&spec, "noselector", &err), -1);
}

/* Ratio by hand. Slow arm (bow) 0.1 0.2 0.35 0.3 0.5 0.45 at 0..5000 images: isotonic fit 0.1 0.2
 * 0.325 0.325 0.475 0.475, best 0.475, reached at 4000. Fast arm (seed 1) 0.1 0.5 0.6 ...: 0.475
 * at 937.5 -> 4.267x; at 50% (0.2375) slow 1300, fast 343.75 -> 3.782x. Seed 2: the same slow
 * curve, a fast arm that tops out at 0.4: undefined at 100%, shown as "1 of 2 seeds never
 * reached"; at 50% it crosses at 1375/... (checked through the geometric mean). */
static void test_efficiency_ratios_by_hand(void **state) {
    (void)state;
    double x[] = {0, 1000, 2000, 3000, 4000, 5000};
    double slow[] = {0.1, 0.2, 0.35, 0.3, 0.5, 0.45}, fast1[] = {0.1, 0.5, 0.6, 0.7, 0.8, 0.9},
           fast2[] = {0.1, 0.3, 0.4, 0.4, 0.4, 0.4};
    write_curve_run("bow1", "objective.kind=bow,data.caption_noise=0.5,seed=1", 1, x, slow, 6);
    write_curve_run("bow2", "objective.kind=bow,data.caption_noise=0.5,seed=2", 2, x, slow, 6);
    write_curve_run("con1", "objective.kind=contrastive,data.caption_noise=0.5,seed=1", 1, x, fast1, 6);
    write_curve_run("con2", "objective.kind=contrastive,data.caption_noise=0.5,seed=2", 2, x, fast2, 6);
    /* caption_noise 1: seed 1's slow arm never left chance (left out), seed 2 repeats the noise-0.5
     * seed 1; caption_noise 2: every slow seed at chance */
    const double flat[] = {0.1, 0.11, 0.09, 0.12, 0.1, 0.11};
    write_curve_run_judged("bow1n1", "objective.kind=bow,data.caption_noise=1,seed=1", 1, x, flat, 6, 0);
    write_curve_run("bow2n1", "objective.kind=bow,data.caption_noise=1,seed=2", 2, x, slow, 6);
    write_curve_run("con1n1", "objective.kind=contrastive,data.caption_noise=1,seed=1", 1, x, fast1, 6);
    write_curve_run("con2n1", "objective.kind=contrastive,data.caption_noise=1,seed=2", 2, x, fast1, 6);
    write_curve_run_judged("bow1n2", "objective.kind=bow,data.caption_noise=2,seed=1", 1, x, flat, 6, 0);
    write_curve_run("con1n2", "objective.kind=contrastive,data.caption_noise=2,seed=1", 1, x, fast1, 6);
    RunInfo *ri;
    int n;
    Err err;
    assert_int_equal(report_scan(g_dir, &ri, &n, &err), 0);
    EfficiencySpec spec = {0};
    assert_int_equal(efficiency_add_arm(&spec, "bow objective.kind=bow", &err), 0);
    assert_int_equal(efficiency_add_arm(&spec, "contrastive objective.kind=contrastive", &err), 0);
    assert_int_equal(efficiency_add_ratio(&spec, "contrastive/bow", &err), 0);
    char *out = NULL, *tsv = NULL;
    size_t lo, lt;
    FILE *fo = open_memstream(&out, &lo), *ft = open_memstream(&tsv, &lt);
    analysis_efficiency(fo, ft, ri, n, "zs.top1", &spec);
    fclose(fo);
    fclose(ft);
    print_message("%s", out);
    assert_non_null(strstr(out, "1 of 2 seeds never reached"));
    assert_null(strstr(out, "warning: some runs used a cosine schedule"));
    /* TSV rows: group, ratio, frac, target, geomean, lo, hi, defined, seeds, images_slow, images_fast */
    double r50[9], r100[9];
    char g[64], name[64];
    const char *row50 = strstr(tsv, "\tcontrastive/bow\t0.5\t"), *row100 = strstr(tsv, "\tcontrastive/bow\t1\t");
    assert_non_null(row50);
    assert_non_null(row100);
    while (row50 > tsv && row50[-1] != '\n') row50--;
    while (row100 > tsv && row100[-1] != '\n') row100--;
    const char *fmt = "%63[^\t]\t%63[^\t]\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf";
    assert_int_equal(sscanf(row100, fmt, g, name, &r100[0], &r100[1], &r100[2], &r100[3], &r100[4], &r100[5], &r100[6],
                            &r100[7], &r100[8]), 11);
    assert_string_equal(g, "data.caption_noise=0.5");
    assert_true(fabs(r100[1] - 0.475) < 1e-12);
    assert_true(fabs(r100[2] - 4000 / 937.5) < 1e-9); /* only seed 1 is defined */
    assert_true(r100[5] == 1 && r100[6] == 2);
    assert_true(r100[3] <= r100[2] && r100[2] <= r100[4]); /* the interval holds the estimate */
    assert_int_equal(sscanf(row50, fmt, g, name, &r50[0], &r50[1], &r50[2], &r50[3], &r50[4], &r50[5], &r50[6], &r50[7],
                            &r50[8]), 11);
    /* seed 2 at 50%: fast fit 0.1 0.3 0.4 ... crosses 0.2375 at 1000 * 0.1375 / 0.2 = 687.5 */
    double want50 = sqrt((1300 / 343.75) * (1300 / 687.5));
    assert_true(fabs(r50[2] - want50) < 1e-9);
    assert_true(r50[5] == 2);
    /* noise 1: only seed 2 is paired, and its ratio is the noise-0.5 seed 1's */
    const char *row1 = strstr(tsv, "data.caption_noise=1\tcontrastive/bow\t1\t");
    assert_non_null(row1);
    double r1[9];
    assert_int_equal(sscanf(row1, fmt, g, name, &r1[0], &r1[1], &r1[2], &r1[3], &r1[4], &r1[5], &r1[6], &r1[7],
                            &r1[8]), 11);
    assert_true(fabs(r1[2] - 4000 / 937.5) < 1e-9);
    assert_true(r1[5] == 1 && r1[6] == 1);
    assert_non_null(strstr(out, "1 of 1 seeds; 1 more: slow arm at chance"));
    /* noise 2: no ratio at all, said once */
    assert_non_null(strstr(out, "(the slow arm never left chance in its 1 seeds: no ratio)"));
    assert_null(strstr(tsv, "data.caption_noise=2\t"));
    /* deterministic: the same bootstrap interval again */
    char *again = NULL;
    size_t la;
    FILE *fa = open_memstream(&again, &la);
    analysis_efficiency(fa, NULL, ri, n, "zs.top1", &spec);
    fclose(fa);
    assert_string_equal(out, again);
    free(out), free(tsv), free(again);
    report_free(ri, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swept_helpers),
        cmocka_unit_test_setup_teardown(test_compare_axis_verdicts, setup_dir, teardown_dir),
        cmocka_unit_test(test_pooled_row_by_hand),
        cmocka_unit_test(test_stats_t_holm_paired),
        cmocka_unit_test(test_no_true_difference_flags_at_most_5_percent),
        cmocka_unit_test(test_no_difference_needs_interval_within_effect),
        cmocka_unit_test(test_isotonic_crossing_and_selectors),
        cmocka_unit_test_setup_teardown(test_efficiency_ratios_by_hand, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("analysis", tests, NULL, NULL);
}
