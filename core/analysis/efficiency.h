/* efficiency.h — CLIP Fig. 2's efficiency ratio with its uncertainty.
 *
 * The arms come from the ablation file (`arms:` and `ratios:`, recorded in ablation.txt): an arm
 * is a name and a selector over a run's swept string ("objective.kind=bow", several entries
 * joined by commas; "k!=v" excludes a value and also matches runs that do not sweep k). Runs are
 * grouped by the rest of their swept values (e.g. data.caption_noise) and paired by seed.
 *
 * The estimator, per group, ratio (fast arm A vs slow arm B), target fraction f and seed:
 *  1. each curve (zero-shot accuracy vs images) is read only up to where its learning rate does
 *     not depend on the budget (budget_free_until_images; a cosine run is used whole, with a
 *     warning), and replaced by its monotone (isotonic, non-decreasing) least-squares fit, so a
 *     single noisy evaluation sets neither the target nor a crossing;
 *  2. target = f x the slow arm's best fitted accuracy;
 *  3. each arm's crossing is interpolated linearly between the two fitted points around it;
 *  4. ratio = crossing(B) / crossing(A): A needs that many times fewer images. Undefined when A
 *     never reaches the target, or either crossing is at 0 images (reached before training).
 * Over seeds: the geometric mean of the defined ratios, and the number of seeds where it is
 * undefined (shown, never dropped). 95% interval: a bootstrap of EFFICIENCY_BOOTSTRAP replicates
 * that resamples seeds with replacement and, within each, every evaluation point parametrically
 * from its n images (stats_resample_accuracy), then takes the 2.5 and 97.5 percentiles of the
 * replicates' geometric means (replicates with no defined ratio are skipped and counted).
 * Deliberately left out: smoothing splines (the isotonic fit has no tuning knob), extrapolation
 * past the budget.
 */
#ifndef CLIPLAB_ANALYSIS_EFFICIENCY_H
#define CLIPLAB_ANALYSIS_EFFICIENCY_H

#include <stdio.h>

#include "log/report.h"

#define EFFICIENCY_MAX_ARMS 8
#define EFFICIENCY_MAX_RATIOS 8
#define EFFICIENCY_NAME_MAX 40
#define EFFICIENCY_SELECT_MAX 256
#define EFFICIENCY_BOOTSTRAP 1000
#define EFFICIENCY_N_TARGETS 4
extern const double EFFICIENCY_TARGETS[EFFICIENCY_N_TARGETS]; /* 0.5, 0.75, 0.9, 1.0 of the slow arm's best */

typedef struct {
    int n_arms;
    char arm_names[EFFICIENCY_MAX_ARMS][EFFICIENCY_NAME_MAX];
    char arm_select[EFFICIENCY_MAX_ARMS][EFFICIENCY_SELECT_MAX];
    int n_ratios;
    int fast[EFFICIENCY_MAX_RATIOS], slow[EFFICIENCY_MAX_RATIOS]; /* arm indices */
} EfficiencySpec;

/* Adds an arm from "name selector"; -1 + err on a malformed line or too many arms. */
int efficiency_add_arm(EfficiencySpec *s, const char *line, Err *err);
/* Adds a ratio from "fast/slow" (arm names already added); -1 + err otherwise. */
int efficiency_add_ratio(EfficiencySpec *s, const char *text, Err *err);
/* Whether a run's swept string satisfies every entry of select. */
int efficiency_selects(const char *select, const char *swept);

/* fit [n] = the non-decreasing least-squares fit of y [n] (pool adjacent violators); NaN
 * entries of y are skipped (their fit is the next finite block's value). */
void efficiency_isotonic(double *fit, const double *y, int n);
/* First x at which the piecewise-linear curve (x [n], fit [n] non-decreasing) reaches target;
 * NaN if it never does. */
double efficiency_crossing(const double *x, const double *fit, int n, double target);

/* Prints, per group and ratio, the ratio against the target fraction with its interval and the
 * count of seeds that never reached; a seed whose slow run never left chance (its left_chance
 * summary, runtable_left_chance) is left out and counted, since its target would be noise; tsv (may be NULL) gets one row per group, ratio and target:
 * group, ratio ("fast/slow"), target_frac, target, ratio_geomean, lo, hi, seeds_defined, seeds, images_slow,
 * images_fast (the last two: geometric means over the defined seeds). metric: the zero-shot
 * series, e.g. "zs.colour_shape_seen.top1". */
void analysis_efficiency(FILE *f, FILE *tsv, const RunInfo *runs, int n, const char *metric, const EfficiencySpec *spec);

#endif
