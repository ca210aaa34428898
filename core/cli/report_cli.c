/* report_cli.c — `cliplab report DIR` and `cliplab export DIR --out OUT`.
 *
 * A sweep leaves DIR/ablation.txt (name, question, report metrics, swept axes); report prints the
 * run table, the mean ± spread over seeds per configuration, the tuning stage's candidates and
 * choices (log/tuning.h), then the ablation's answer: a comparison along the first swept axis and,
 * for the Fig. 2 ablation, the efficiency ratios.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/analysis.h"
#include "analysis/efficiency.h"
#include "cli/cli.h"
#include "log/tuning.h"

typedef struct {
    char name[128], question[1024], report[1024], axes[1024], baseline[128];
    EfficiencySpec eff; /* arm: and ratio: lines (Fig. 2 ablations) */
} AblationInfo;

/* Reads DIR/ablation.txt if present ("key: value" lines); missing fields stay empty. */
static void read_ablation_info(const char *dir, AblationInfo *a) {
    memset(a, 0, sizeof *a);
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/ablation.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    Err err;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *v = strstr(line, ": ");
        if (!v) continue;
        *v = 0;
        v += 2;
        if (!strcmp(line, "name")) snprintf(a->name, sizeof a->name, "%s", v);
        else if (!strcmp(line, "question")) snprintf(a->question, sizeof a->question, "%s", v);
        else if (!strcmp(line, "report")) snprintf(a->report, sizeof a->report, "%s", v);
        else if (!strcmp(line, "axes")) snprintf(a->axes, sizeof a->axes, "%s", v);
        else if (!strcmp(line, "baseline")) snprintf(a->baseline, sizeof a->baseline, "%s", v);
        else if (!strcmp(line, "arm") && efficiency_add_arm(&a->eff, v, &err))
            fprintf(stderr, "warning: %s: %s\n", path, err.msg);
        else if (!strcmp(line, "ratio") && efficiency_add_ratio(&a->eff, v, &err))
            fprintf(stderr, "warning: %s: %s\n", path, err.msg);
    }
    fclose(f);
}

/* Splits a comma list in place into at most max pointers. */
static int split_list(char *s, const char **out, int max) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) out[n++] = tok;
    return n;
}

/* The zero-shot metric the Fig. 2 ratios are measured on: the ablation's first reported "zs."
 * metric (its eval.task), else seen colour x shape pairs. */
static void efficiency_metric(const AblationInfo *a, char *out, size_t n) {
    snprintf(out, n, "zs.colour_shape_seen.top1");
    char copy[1024];
    const char *m[64];
    snprintf(copy, sizeof copy, "%s", a->report);
    int k = split_list(copy, m, 64);
    for (int i = 0; i < k; i++)
        if (!strncmp(m[i], "zs.", 3)) {
            snprintf(out, n, "%s", m[i]);
            return;
        }
}

static const char REPORT_USAGE[] =
    "usage: cliplab report results/<ablation> [--metrics a,b,...]\n"
    "Prints a row per run, mean +- spread per configuration over seeds, and the ablation's answer.\n"
    "  --metrics a,b   the metric columns (default: the ablation's report list)\n";

static const char EXPORT_USAGE[] =
    "usage: cliplab export results/<ablation> --out DIR\n"
    "Writes the runs' series and a summary as TSV files into DIR, for gnuplot.\n";

int report_main(int argc, char **argv) {
    const char *metrics_arg = NULL, *pos[1];
    int n_pos;
    const CliOpt opts[] = {CLI_OPT_STRING("--metrics", &metrics_arg)};
    const CliSpec spec = {"report", REPORT_USAGE, opts, 1, 1, 1};
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    const char *dir = pos[0];
    AblationInfo a;
    read_ablation_info(dir, &a);
    char metrics_text[1024];
    snprintf(metrics_text, sizeof metrics_text, "%s", metrics_arg ? metrics_arg : a.report);
    const char *metrics[64];
    int nm = split_list(metrics_text, metrics, 64);
    RunInfo *runs;
    int n;
    Err err;
    if (report_scan(dir, &runs, &n, &err)) {
        fprintf(stderr, "cliplab report: %s\n", err.msg);
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "cliplab report: no finished runs in %s\n", dir);
        report_free(runs, n);
        return 1;
    }
    if (a.name[0]) printf("ablation: %s (%d runs)\n", a.name, n);
    report_print(stdout, runs, n, nm ? metrics : NULL, nm);
    TuneTable tune;
    if (tuning_read(dir, &tune, &err)) fprintf(stderr, "warning: %s\n", err.msg);
    tuning_print(stdout, &tune, runs, n);
    tuning_free(&tune);
    if (a.question[0]) printf("\nquestion: %s\n", a.question);
    if (a.eff.n_ratios) {
        char metric[128];
        efficiency_metric(&a, metric, sizeof metric);
        analysis_efficiency(stdout, NULL, runs, n, metric, &a.eff);
    } else if (a.axes[0]) {
        char copy[1024];
        const char *axes[32];
        snprintf(copy, sizeof copy, "%s", a.axes);
        split_list(copy, axes, 32);
        analysis_compare_axis(stdout, runs, n, axes[0], a.baseline, metrics, nm, NULL);
    }
    report_free(runs, n);
    return 0;
}

int export_main(int argc, char **argv) {
    const char *out = NULL, *pos[1];
    int n_pos;
    const CliOpt opts[] = {CLI_OPT_STRING("--out", &out)};
    const CliSpec spec = {"export", EXPORT_USAGE, opts, 1, 1, 1};
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    const char *dir = pos[0];
    if (!out) {
        fprintf(stderr, "cliplab export: --out DIR is required\n");
        return 1;
    }
    Err err;
    if (report_export(dir, out, &err)) {
        fprintf(stderr, "cliplab export: %s\n", err.msg);
        return 1;
    }
    RunInfo *runs;
    int n;
    if (report_scan(dir, &runs, &n, &err)) {
        fprintf(stderr, "cliplab export: %s\n", err.msg);
        return 1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/summary.tsv", out);
    rc = analysis_write_summary_tsv(path, runs, n);
    if (rc) fprintf(stderr, "cliplab export: cannot write %s\n", path);
    AblationInfo a;
    read_ablation_info(dir, &a);
    if (!rc && a.eff.n_ratios) {
        snprintf(path, sizeof path, "%s/efficiency.tsv", out);
        FILE *tsv = fopen(path, "w");
        FILE *devnull = fopen("/dev/null", "w");
        char metric[128];
        efficiency_metric(&a, metric, sizeof metric);
        if (tsv && devnull) analysis_efficiency(devnull, tsv, runs, n, metric, &a.eff);
        if (devnull) fclose(devnull);
        if (!tsv || fclose(tsv)) rc = -1, fprintf(stderr, "cliplab export: cannot write %s\n", path);
    }
    report_free(runs, n);
    return rc ? 1 : 0;
}
