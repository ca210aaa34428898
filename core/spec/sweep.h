/* sweep.h — ablation files: a base experiment, sweep axes, seeds, profiles, the question.
 *
 * An ablation file (YAML, as strict as experiment files, same error texts):
 *   base: ../experiments/contrastive.yaml   # experiment file, relative to this file (required)
 *   question: Does an MLP head beat a linear one?   # one line (required)
 *   name: projection          # results subfolder; default: the file name without extension
 *   sweep:                    # dotted key -> list of values; full grid in file order,
 *     model.head.kind: [linear, mlp]          #   the last axis varies fastest
 *     model.image.tap: [img.stage3, img.stage4]
 *   seeds: 3                  # seeds base+0 .. base+n-1 (base = the experiment's seed); fastest
 *   set: {train.lr: 2e-3}     # fixed overrides for every run
 *   profiles:                 # smoke | quick | long | full
 *     smoke: {train.images: 2000, seeds: 1, model.image.tap: [img.stage4]}
 *   report: [zeroshot_top1, probe_top1]
 *   tune:                     # optional per-configuration tuning stage, run before the sweep
 *     images: 10000           #   training images per candidate
 *     metric: zs.colour_shape_seen.top1   # maximised; a metric of the final evaluation
 *     grid: {train.lr: [5e-4, 1e-3, 2e-3, 4e-3]}   # candidates: the full grid of these keys
 *     when:                   #   optional: grids for the configurations a selector matches
 *       loss.kind=siglip: {loss.init_bias: [-10, -5]}  #   (key=value / key!=value, comma-joined,
 *                             #   over the configuration's values) join grid: there, a key of
 *                             #   grid: replaced; configurations no grid applies to are not tuned
 *   arms:                     # efficiency ratios (with ratios:): arm name -> selector over the
 *     bow: objective.kind=bow #   swept values; "k!=v" also matches runs that do not sweep k
 *   ratios: [contrastive/bow] # fast/slow arm pairs: `cliplab report` prints their ratios
 * Tuning never sees a reported number: each configuration (a grid point of `sweep:`) trains every
 * candidate on ONE seed that no reported run uses (the experiment's seed + seeds) and scores it on
 * the validation sets (eval.validation: a seed space disjoint from the test sets); the best
 * candidate's values then apply to all of the configuration's runs (SweepRun.tuned).
 * In a profile, a swept key with a list replaces that axis's values (a single value pins it); other
 * keys are applied to every run, after `set:`; `tune.images:` sets the tuning stage's budget. Sweeps over list-valued keys take a list of lists.
 * Deliberately left out: running anything (the CLI driver does), random or conditional sweeps.
 */
#ifndef CLIPLAB_SWEEP_H
#define CLIPLAB_SWEEP_H

#include <stdio.h>

#include "common/check.h"
#include "spec/config.h"

#define SWEEP_CONFIRM_RUNS 200 /* the driver refuses larger sweeps without --force */
#define SWEEP_MAX_RUNS 10000   /* hard limit: every run's Config is held in memory */
#define SWEEP_MAX_AXES 8
#define SWEEP_MAX_VALUES 64
#define SWEEP_MAX_SEEDS 100
#define SWEEP_ID_MAX 200
#define SWEEP_SWEPT_MAX 1024
#define SWEEP_REPORT_MAX 16
#define SWEEP_KEY_MAX 64
#define SWEEP_ARMS_MAX 8
#define SWEEP_TUNE_AXES (2 * SWEEP_MAX_AXES) /* tuned keys: grid: and tune.when's together */
#define SWEEP_TUNE_WHEN_MAX 8

typedef struct {
    /* e.g. "head=mlp_tap=img.stage3_bs=256_seed=1": short key names, file-system safe */
    char id[SWEEP_ID_MAX];
    /* e.g. "model.head.kind=mlp; model.image.tap=img.stage3; train.batch_size=256; seed=1": each
     * entry is a valid spec_override() assignment */
    char swept[SWEEP_SWEPT_MAX];
    int seed;
    Config config; /* fully resolved */
    /* the tuning stage's choice applied to this run, e.g. "train.lr=0.001" ("" if none); for a
     * tuning candidate, its candidate values */
    char tuned[SWEEP_SWEPT_MAX];
    int tune_config; /* tuning candidates: index of the configuration (its first run / seeds) */
} SweepRun;

typedef struct {
    char path[1024]; /* the ablation file */
    char base[1024]; /* the experiment file, resolved against the ablation's folder */
    char name[CONFIG_NAME_MAX];
    char question[256];
    char profile[16]; /* the applied profile; "" when the file defines none */
    int n_axes;
    char axes[SWEEP_MAX_AXES][SWEEP_KEY_MAX]; /* dotted keys, in grid order */
    int axis_len[SWEEP_MAX_AXES];
    int seeds;
    int n_report;
    char report[SWEEP_REPORT_MAX][64];
    int n_arms, n_ratios;
    char arms[SWEEP_ARMS_MAX][300];  /* "name selector" */
    char ratios[SWEEP_ARMS_MAX][96]; /* "fast/slow" */
    int n_runs;
    SweepRun *runs; /* n_runs, grid order (first axis slowest, seed fastest) */
    /* tuning stage: candidates configuration-major (tune_config ascending; a configuration no
     * grid applies to has none), 0 if none */
    int n_tune_runs;
    SweepRun *tune_runs;
    char tune_metric[64];
} Sweep;

/* Loads an ablation file with a profile (smoke | quick | long | full; NULL = quick) and expands its runs.
 * 0, or -1 with a one-line message in err (out is then empty). Free with sweep_free(). */
int sweep_load(const char *path, const char *profile, Sweep *out, Err *err);
void sweep_free(Sweep *s);
/* Applies the tuning stage's results: score[i] is tune_runs[i]'s tune_metric (NaN if it failed).
 * Per configuration with candidates, the best candidate (the first on ties; none if all are NaN) sets its values
 * in every run of the configuration and in run->tuned. */
void sweep_tune_apply(Sweep *s, const double *score);
/* The run list, then every run's resolved spec as a YAML document ("--- # <run id>"). */
void sweep_print_dry_run(FILE *f, const Sweep *s);

#endif
