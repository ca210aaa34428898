/* tuning.h — an ablation's tuning stage read back (<results>/tune/, spec/sweep.h): per tuned
 * configuration, every candidate's values and validation score, the candidate the reported runs
 * applied, and the reasons not to trust a choice. `cliplab report` prints it, and the sweep's
 * "tuned <id>: ..." line carries the same text, so a choice is never shown without its evidence.
 *
 * Two flags, besides the candidates without a score (diverged, failed, missing), counted by kind:
 *   - "every candidate at chance: the choice is noise": no completed candidate left chance, by the
 *     trainer's verdict each run file records (its left_chance summary, runtable_left_chance: the
 *     eval.task accuracy over its evaluations, which is the tune metric of every shipped ablation);
 *   - "chosen value at the edge of its grid": a tuned key's applied value is the smallest or largest
 *     of the values offered to the configuration (numeric grids of >= 3 values only), so the best
 *     value may lie outside the grid.
 * The candidate list is the sweep's plan (tune/ablation.txt: a `tune_metric:` line and one
 * `candidate: <run id>\t<swept>\t<tuned>` line per candidate), so a planned candidate without a
 * finished run file counts as missing; a folder written before the plan was recorded lists the run
 * files found, and says that missing candidates cannot be counted there.
 * Deliberately left out: choosing (sweep_tune_apply does it, on the scores this table holds).
 */
#ifndef CLIPLAB_LOG_TUNING_H
#define CLIPLAB_LOG_TUNING_H

#include <stdio.h>

#include "log/report.h"

#define TUNING_VALUES_MAX 256
#define TUNING_LINE_MAX 4096
/* The plan's two kinds of line (written by the sweep, read here): "tune_metric: <metric>" and
 * "candidate: <run id>\t<swept>\t<tuned>". */
#define TUNING_PLAN_METRIC "tune_metric: "
#define TUNING_PLAN_CANDIDATE "candidate: "
#define TUNING_PREFIX_LEN(prefix) (sizeof prefix - 1)

typedef struct {
    char values[TUNING_VALUES_MAX]; /* its tuned values, "train.lr=0.001; loss.init_bias=-5" */
    const RunInfo *run;             /* its finished run file (borrowed), NULL if there is none */
    double score;                   /* the tune metric of a completed run, NaN otherwise */
    long n;                         /* the metric's evaluation items (0 if not recorded) */
    double left;                    /* the run's left_chance (1, 0; NaN if not recorded or not completed) */
} TuneCandidate;

typedef struct {
    char key[512]; /* the configuration: the candidates' swept values minus seed and the tuned keys */
    int n_cand;
    TuneCandidate *cand; /* in plan order */
    int chosen;          /* the candidate whose values the reported runs applied, -1 if none */
} TuneConfig;

typedef struct {
    char metric[64]; /* the tune metric ("" if not recorded: no scores) */
    int planned;     /* 1: the candidates are the sweep's recorded plan; 0: the run files found */
    int unplanned;   /* run files in tune/ that are not in the plan (an earlier grid), ignored */
    int n_configs;
    TuneConfig *configs; /* in order of first appearance */
    RunInfo *runs;       /* the tune folder's run files when read by tuning_read (owned), else NULL */
    int n_runs;
} TuneTable;

/* Adds a candidate to its configuration (created on first use): swept is the candidate's swept
 * string in the run file's form ("k=v,...,seed=s"), values its tuned values, run its finished run
 * file or NULL; its score is run's t->metric if run completed. Returns the configuration's index. */
int tuning_add(TuneTable *t, const char *swept, const char *values, const RunInfo *run);
/* Sets c->chosen to the candidate whose values equal applied (-1 if none does). */
void tuning_set_applied(TuneConfig *c, const char *applied);
/* "train.lr=0.002 (validation 0.153 of 640 images; 0.001: 0.090, 0.002: 0.153*, 0.004: missing)":
 * the applied values, the chosen candidate's score and every candidate's, '*' marking the applied
 * one and '~' one that never left chance (multi-key candidates are "v1/v2", the keys named once). */
void tuning_line(const TuneConfig *c, char *buf, size_t n);
/* The flags of c, "; "-separated ("" if none). */
void tuning_flags(const TuneConfig *c, char *buf, size_t n);
/* Reads <dir>/tune (the plan in its ablation.txt, then its run files); an absent tune folder gives
 * an empty table. 0, or -1 + err if the folder exists but cannot be read. */
int tuning_read(const char *dir, TuneTable *t, Err *err);
/* The report's section: per configuration of the reported runs that was tuned (or whose
 * candidates all failed), its tuning_line and flags (setting each one's chosen from the runs'
 * `tuned`). Nothing if no run was tuned. */
void tuning_print(FILE *f, TuneTable *t, const RunInfo *runs, int n);
void tuning_free(TuneTable *t);

#endif
