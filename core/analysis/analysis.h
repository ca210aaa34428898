/* analysis.h — the answers of the ablations, computed from finished run files:
 *  - a comparison along one swept axis (e.g. head = linear vs mlp) with everything else held
 *    equal, per metric: difference of seed means and whether it exceeds the seed spread;
 *  - CLIP Fig. 2's efficiency ratios (images for arm A to reach arm B's best zero-shot accuracy vs
 *    B's own images), per caption_noise value and seed, then mean ± std over seeds;
 *  - a summary TSV (a row per configuration: swept values, then mean/min/max of each metric) that
 *    the gnuplot scripts read.
 * And the `report` / `export` subcommands on top of log/report.h.
 * Deliberately left out: statistical tests beyond a two-standard-error rule (2-3 seeds cannot
 * support more; the report says how many seeds each number rests on).
 */
#ifndef CLIPLAB_ANALYSIS_H
#define CLIPLAB_ANALYSIS_H

#include <stdio.h>

#include "log/report.h"

/* Value of key k in a swept string "a=1,b=2" into out; returns 0, or -1 if absent. */
int swept_get(const char *swept, const char *key, char *out, size_t n);
/* swept without the entries for `drop` (comma-separated keys), order kept. */
void swept_without(const char *swept, const char *drop, char *out, size_t n);

/* For `axis` (a swept key), compares every value against `baseline` (NULL or "": the first value
 * seen), holding the other swept values equal; prints the comparisons per metric, then an answer
 * table (mean difference, how often significantly higher / lower). Returns the number of
 * comparisons printed. */
int analysis_compare_axis(FILE *f, const RunInfo *runs, int n, const char *axis, const char *baseline,
                          const char *const *metrics, int n_metrics);

/* Fig. 2 ratios over the runs of an efficiency ablation (objective.kind and model.text.kind arms,
 * grouped by data.caption_noise and seed). metric: the zero-shot series (e.g.
 * "zs.colour_shape_seen.top1"). Prints them; if tsv != NULL also writes one row per noise value. */
void analysis_efficiency(FILE *f, FILE *tsv, const RunInfo *runs, int n, const char *metric);

/* The summary TSV described above. */
int analysis_write_summary_tsv(const char *path, const RunInfo *runs, int n);

int report_main(int argc, char **argv);
int export_main(int argc, char **argv);

#endif
