/* analysis.h — the answers of the ablations, computed from finished run files:
 *  - a comparison along one swept axis (e.g. head = linear vs mlp) with everything else held
 *    equal, per metric: paired differences over seeds with t intervals and Holm-adjusted verdicts;
 *  - CLIP Fig. 2's efficiency ratios: analysis/efficiency.h;
 *  - a summary TSV (a row per configuration: swept values, then mean/min/max of each metric) that
 *    the gnuplot scripts read.
 * And the `report` / `export` subcommands on top of log/report.h.
 * Deliberately left out: unpaired tests and equivalence testing (the report says "underpowered"
 * rather than "no difference" when the interval is too wide to tell).
 */
#ifndef CLIPLAB_ANALYSIS_H
#define CLIPLAB_ANALYSIS_H

#include <stdio.h>

#include "log/report.h"

/* Value of key k in a swept string "a=1,b=2" into out; returns 0, or -1 if absent. */
int swept_get(const char *swept, const char *key, char *out, size_t n);
/* swept without the entries for `drop` (comma-separated keys), order kept. */
void swept_without(const char *swept, const char *drop, char *out, size_t n);

/* Significance level of every verdict, and the effects a reader would care about: a
 * non-significant interval reaching beyond ± these is reported as "underpowered", one within
 * them as "no difference". */
#define STATS_ALPHA 0.05
#define EFFECT_OF_INTEREST_ACC 0.02 /* accuracies: two points */
#define EFFECT_OF_INTEREST_REL 0.10 /* other metrics: 10% of the baseline's mean */

/* Verdict counts of the comparisons of one metric (summed over the axis values). */
typedef struct {
    int comparisons, higher, lower, same, underpowered, undecidable, at_chance;
    int n_diff;
    double sum_diff;
    int pooled_rows, pooled_higher, pooled_lower; /* the tested pooled rows (one per value) */
} AxisTally;

/* For `axis` (a swept key), compares every value against `baseline` (NULL or "": the first value
 * seen), holding the other swept values equal: per configuration pair the per-seed differences
 * (stats_paired), Holm-adjusted across the metric's table; prints the comparisons per metric and
 * an answer table of verdicts. Configurations that never left chance are marked and left out of
 * the tallies. Under the answer table, per metric and value, a pooled row: the mean over
 * configurations of their seed-paired mean differences, its t interval on (configurations - 1)
 * degrees of freedom, Holm-adjusted across the pooled rows. tallies [n_metrics] (may be NULL)
 * receives the counts. Returns the number of comparisons printed. */
int analysis_compare_axis(FILE *f, const RunInfo *runs, int n, const char *axis, const char *baseline,
                          const char *const *metrics, int n_metrics, AxisTally *tallies);

/* The summary TSV described above. */
int analysis_write_summary_tsv(const char *path, const RunInfo *runs, int n);

#endif
