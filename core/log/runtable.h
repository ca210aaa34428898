/* runtable.h — the runs of a results folder grouped ONCE into configurations (runs whose swept
 * string is equal once "seed=..." is removed), each holding its runs by seed. `cliplab report`,
 * the axis comparisons, the efficiency ratios and the summary TSV all read this one table.
 *
 * Dynamic arrays throughout: no limit on runs, configurations or seeds. A configuration is "at
 * chance" when it has completed runs and every one of them records left_chance = 0 (its target
 * accuracy never left chance, see results/README.md); such configurations are marked by the
 * report and left out of the tallies.
 * Deliberately left out: reading files (report_scan does it) and any statistics.
 */
#ifndef CLIPLAB_LOG_RUNTABLE_H
#define CLIPLAB_LOG_RUNTABLE_H

#include "log/report.h"

typedef struct {
    char key[512];  /* the swept string without seed ("" for a single run) */
    int n_runs;
    int *runs;      /* indices into RunTable.runs, in run order */
    int n_completed;
    int at_chance;  /* every completed run records left_chance = 0 */
} RunConfig;

typedef struct {
    const RunInfo *runs; /* borrowed */
    int n_runs;
    int n_configs;
    RunConfig *configs; /* in order of first appearance */
    int *config_of;     /* [n_runs]: configuration index of each run */
} RunTable;

void runtable_build(RunTable *t, const RunInfo *runs, int n);
void runtable_free(RunTable *t);
/* Index of the configuration with this key, or -1. */
int runtable_find(const RunTable *t, const char *key);
/* Summary value of metric for the COMPLETED run of configuration c with this seed; NaN if there
 * is none or it lacks the metric. */
double runtable_value(const RunTable *t, int c, long seed, const char *metric);
/* The same, with its evaluation count n and chance (0 / NaN when not recorded). */
double runtable_value_described(const RunTable *t, int c, long seed, const char *metric, long *n, double *chance);
/* The completed run of configuration c with this seed, or NULL. */
const RunInfo *runtable_run(const RunTable *t, int c, long seed);
/* Whether a run completed. */
int runtable_completed(const RunInfo *r);
/* The run's left_chance summary (1: its eval.task accuracy rose above chance, 0: it never did, by
 * the trainer's rule), NaN in run files that do not record it. */
double runtable_left_chance(const RunInfo *r);

#endif
