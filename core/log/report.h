/* report.h — reading finished run files back: the run table with aggregates over seeds
 * (`cliplab report`) and TSV export for gnuplot (`cliplab export`).
 *
 * Only finished runs (<run_id>.h5) are read; .h5.tmp (running or crashed) and .ckpt.h5 are skipped.
 * A corrupt (report_verify fails) or foreign .h5 is skipped with one warning line on stderr naming
 * it, so one bad file never hides the good runs next to it and never counts as a finished run. Runs are returned sorted by run id.
 * Configurations: runs whose `swept` attribute is equal once its "seed=..." entry is removed.
 * Aggregates use only runs with status "completed" and ignore NaN values.
 * Deliberately left out: plotting (the gnuplot scripts in plots/ do it) and the ablation-specific answers (ratios,
 * images-to-target), which the callers compute from these series.
 */
#ifndef CLIPLAB_LOG_REPORT_H
#define CLIPLAB_LOG_REPORT_H

#include <stdio.h>

#include "common/check.h"

typedef struct {
    char run_id[128];  /* the file name without ".h5" */
    char path[512];    /* the run file, for report_read_series */
    char status[16];   /* "completed" | "diverged" | "failed" ("unknown" if absent) */
    char swept[512];   /* "k=v,k=v" ("" if absent) */
    long seed;         /* -1 if absent */
    char schedule[16];        /* train.schedule of the run ("" if not recorded) */
    double budget_free_until; /* images up to which its rate ignores the budget (NaN if not recorded) */
    char warning[256]; /* the run's `warning` attribute, e.g. "never left chance" ("" if none) */
    char tuned[256];   /* what a sweep's tuning stage chose for it, "train.lr=0.001; ..." ("" if none) */
    int n_summary;
    char (*summary_names)[64];
    double *summary_values;
    long *summary_counts;   /* attribute n: evaluation items (0 if absent) */
    double *summary_chance; /* attribute chance (NaN if absent: not an accuracy) */
} RunInfo;

/* Checks a run file (.h5 or .h5.tmp) end to end before anyone trusts it: HDF5's metadata
 * checksums (on open), the format attributes, RUNLOG_ATTRS_CRC over the root attributes of a
 * finished file, and every /train, /eval (1-D float) and /summary (float scalar) dataset's type,
 * shape, size (bounded by the file's size, so no read allocates more than the file could hold)
 * and Fletcher-32 checksums. Returns 0, or -1 + one line "'<path>': corrupt: ..." (or "not a cliplab
 * run file", "corrupt or not an HDF5 file"). */
int report_verify(const char *path, Err *err);
/* The root string attribute `name` of a run file into buf [n] (cut to fit). 0, or -1 if the file
 * or the attribute cannot be read. */
int report_read_attr_str(const char *path, const char *name, char *buf, size_t n);
/* Scans <dir>/ *.h5. Returns 0 (n_runs may be 0), or -1 + err if the directory cannot be read.
 * Free the result with report_free. */
int report_scan(const char *dir, RunInfo **runs, int *n_runs, Err *err);
void report_free(RunInfo *runs, int n);
/* Reads /<group>/<name> of a run file fully: returns the count and a malloc'd *out, or -1 (and
 * *out = NULL) if the file or dataset is missing, unreadable, not a 1-D float series (a float scalar
 * in "summary"), larger than the file could hold, or fails its checksum. */
long report_read_series(const char *path, const char *group, const char *name, double **out);
/* The names of the series in /<group> of a run file, in creation order: returns the count and
 * *names, one malloc'd block of REPORT_NAME_MAX slots (NULL and 0 if the file or group is missing). */
#define REPORT_NAME_MAX 64
int report_list_series(const char *path, const char *group, char (**names)[REPORT_NAME_MAX]);
/* The description of /<group>/<name> (runlog_describe): *n (0 if absent) and *chance (NaN if
 * absent). Returns 0, or -1 if the file or dataset is missing. */
int report_read_description(const char *path, const char *group, const char *name, long *n, double *chance);
/* Evaluation-only standard error of an accuracy p over n items, sqrt(p (1 - p) / n): the bound
 * of eval/rank.h; NaN when n <= 0 or p is not in [0, 1]. */
double report_eval_se(double p, long n);
/* The configuration key of a swept string: its entries minus "seed=...", order kept. */
void report_config_key(const char *swept, char *out, size_t n);
/* Run table (run id, swept, seed, status, metrics as "value ±SE" where the metric is an accuracy
 * with a recorded n), then per configuration and metric "mean ± sample-std [min..max] (eval SE
 * s)" over its completed runs, s the evaluation-only standard error of the mean; then the runs
 * with a warning (e.g. never left chance). metrics: summary names to show
 * (NULL/0 = every name any run has, in order of first appearance). */
void report_print(FILE *f, const RunInfo *runs, int n, const char *const *metrics, int n_metrics);
/* Writes <out_dir>/<run_id>.<group>.tsv for every run and group with data (a header row of column
 * names, then one row per logged row; NaN where a column is shorter) and, per configuration,
 * <out_dir>/<config>.<group>.agg.tsv over its completed runs aligned by row index: columns step and
 * images as their mean, every other column as <name>_mean, <name>_min, <name>_max, and n (runs
 * having that row). <config> is the key with characters outside [A-Za-z0-9._=-] replaced by '_'
 * ("all" when empty). Returns 0 or -1 + err (unreadable dir, unwritable out_dir). */
int report_export(const char *dir, const char *out_dir, Err *err);

#endif
