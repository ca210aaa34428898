/* trainer.h — one run: build the model, train on a budget of images, evaluate periodically, log
 * to HDF5, checkpoint, and finish with a status. Used by `cliplab run` and by the sweep driver.
 * Deliberately left out: scheduling several runs (the sweep driver does that). */
#ifndef CLIPLAB_TRAINER_H
#define CLIPLAB_TRAINER_H

#include "eval/evaluate.h"
#include "spec/config.h"

typedef struct {
    const char *results_dir; /* e.g. "results/projection" */
    const char *run_id;
    const char *swept; /* "key=value,..." of the sweep axes, "" for a single run */
    const char *tuned; /* "key=value; ..." a sweep's tuning stage chose for this run, or NULL */
    int resume;        /* continue from <run_id>.ckpt.h5 if the run is unfinished */
    const char *progress_label; /* label of the progress bar ("train" if NULL) */
} RunOptions;

typedef struct {
    char status[16]; /* completed | diverged | failed */
    Metrics final;   /* the last evaluation */
    double images, wall_s, images_per_s;
    double images_to_target; /* NaN if never reached */
    int left_chance;         /* 0: eval.task's accuracy never left chance (metrics_left_chance) */
} RunOutcome;

/* Returns 0 when the run reached a final status (completed or diverged: both are results), -1 +
 * err when it could not run or its results could not be written (status "failed"). */
int train_run(const Config *cfg, const RunOptions *opt, RunOutcome *out, Err *err);

#endif
