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

/* Two values of an axis, two seeds each: a clear gap is "higher", overlapping seeds are n.s. */
static void test_compare_axis_verdicts(void **state) {
    (void)state;
    double x[] = {0, 1};
    /* config bs=32: mlp clearly higher (0.60,0.62 vs 0.40,0.42); bs=64: within noise */
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
    assert_int_equal(analysis_compare_axis(f, ri, n, "head", "linear", metrics, 1), 2);
    fclose(f);
    /* bs=32: diff +0.20, SE = sqrt(2e-4/2 + 2e-4/2) = 0.01414 -> higher; bs=64: diff 0, n.s. */
    assert_non_null(strstr(buf, "diff  +0.2000"));
    assert_non_null(strstr(buf, "higher"));
    assert_non_null(strstr(buf, "no significant difference"));
    /* answer row: mean diff (+0.20 + 0)/2 = +0.1000 over 2 comparisons, 1 higher, 0 lower, 1 n.s. */
    const char *ans = strstr(buf, "\nanswer:");
    assert_non_null(ans);
    ans = strstr(ans, "\n  zs.top1");
    assert_non_null(ans);
    char metric[32], value[32];
    double mean;
    int comparisons, higher, lower, same, undecidable;
    assert_int_equal(sscanf(ans, "%31s %31s %lf %d %d %d %d %d", metric, value, &mean, &comparisons, &higher, &lower,
                            &same, &undecidable), 8);
    assert_string_equal(value, "mlp");
    assert_true(fabs(mean - 0.1) < 1e-9);
    assert_int_equal(comparisons, 2);
    assert_int_equal(higher, 1);
    assert_int_equal(lower, 0);
    assert_int_equal(same, 1);
    assert_int_equal(undecidable, 0);
    free(buf);
    report_free(ri, n);
}

/* Fig. 2 ratio by hand: caption LM best 0.30 reached at 8000 images; BoW reaches 0.30 between its
 * evaluations at 2000 (0.2) and 4000 (0.4): at 3000 -> 8000 / 3000 = 2.667x. BoW best 0.6 at 8000;
 * contrastive reaches 0.6 at 2000 -> 4.0x. */
static void test_efficiency_ratios_by_hand(void **state) {
    (void)state;
    double x[] = {0, 2000, 4000, 8000};
    double cap[] = {0.1, 0.15, 0.2, 0.3}, bow[] = {0.1, 0.2, 0.4, 0.6}, con[] = {0.1, 0.6, 0.7, 0.8};
    const char *m = "zs.shape.top1";
    write_run("cap", "objective.kind=caption,data.caption_noise=0.5,seed=1", 1, x, cap, 4, m, 0.3);
    write_run("bow", "objective.kind=bow,data.caption_noise=0.5,seed=1", 1, x, bow, 4, m, 0.6);
    write_run("con", "objective.kind=contrastive,data.caption_noise=0.5,seed=1", 1, x, con, 4, m, 0.8);
    RunInfo *ri;
    int n;
    Err err;
    assert_int_equal(report_scan(g_dir, &ri, &n, &err), 0);
    char *out = NULL, *tsv = NULL;
    size_t lo, lt;
    FILE *fo = open_memstream(&out, &lo), *ft = open_memstream(&tsv, &lt);
    analysis_efficiency(fo, ft, ri, n, m);
    fclose(fo);
    fclose(ft);
    assert_non_null(strstr(out, "2.67x"));
    assert_non_null(strstr(out, "4.00x"));
    assert_non_null(strstr(out, "not reached (0/1)")); /* no transformer arm */
    /* TSV row: noise, then per ratio mean, std, seeds, best, images_slow, images_fast */
    char *row = strchr(tsv, '\n') + 1;
    double v[19];
    int k = sscanf(row, "%lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12]);
    assert_int_equal(k, 13);
    assert_true(fabs(v[0] - 0.5) < 1e-12);
    assert_true(fabs(v[1] - 8000.0 / 3000.0) < 1e-9);
    assert_true(fabs(v[4] - 0.3) < 1e-12 && fabs(v[5] - 8000) < 1e-9 && fabs(v[6] - 3000) < 1e-9);
    assert_true(fabs(v[7] - 4.0) < 1e-9);
    assert_true(fabs(v[10] - 0.6) < 1e-12 && fabs(v[11] - 8000) < 1e-9 && fabs(v[12] - 2000) < 1e-9);
    free(out);
    free(tsv);
    report_free(ri, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swept_helpers),
        cmocka_unit_test_setup_teardown(test_compare_axis_verdicts, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_efficiency_ratios_by_hand, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("analysis", tests, NULL, NULL);
}
