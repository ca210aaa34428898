/* trainer.h — one run: build the model, train on a budget of images, evaluate periodically, log
 * to HDF5, checkpoint, and finish with a status. Used by `cliplab run` and by the sweep driver.
 * Deliberately left out: scheduling several runs (the sweep driver does that). */
#ifndef CLIPLAB_TRAINER_H
#define CLIPLAB_TRAINER_H

#include <signal.h>

#include "common/comm.h"
#include "eval/evaluate.h"
#include "model/model.h"
#include "optim/optim.h"
#include "spec/config.h"

typedef struct {
    const char *results_dir; /* e.g. "results/projection" */
    const char *run_id;
    const char *swept; /* "key=value,..." of the sweep axes, "" for a single run */
    const char *tuned; /* "key=value; ..." a sweep's tuning stage chose for this run, or NULL */
    int resume;        /* continue from <run_id>.ckpt.h5 if the run is unfinished */
    int overwrite;     /* replace a finished <run_id>.h5 (--force); otherwise a run finished by
                        * another process while the caller was not looking is left alone */
    const char *progress_label; /* label of the progress bar ("train" if NULL) */
    /* The ranks that train this run data-parallel, each on train.batch_size / size rows of every
     * batch (NULL: this process alone). Every rank computes its share of an evaluation's
     * features; rank 0 alone its metrics, the log and the checkpoints; every rank reads the
     * checkpoint on --resume. */
    const Comm *comm;
    /* Set (to the signal number) by a signal handler to stop the run at the next step boundary
     * with a checkpoint; NULL: the run cannot be stopped that way. Read between steps only. */
    const volatile sig_atomic_t *stop;
} RunOptions;

typedef struct {
    char status[16]; /* completed | diverged | failed | interrupted */
    int stop_signal; /* interrupted: the signal, one on every rank (SIGTERM if any rank got it, else SIGINT) */
    Metrics final;   /* the last evaluation */
    double images, wall_s, images_per_s;
    double images_to_target; /* NaN if never reached */
    int left_chance;         /* 0: eval.task's accuracy never left chance (metrics_left_chance) */
} RunOutcome;

/* One rank's share of a run's optimisation, without its log: the model built for this rank's rows
 * of every batch, the optimiser, and the position in the data stream. train_run drives one per
 * rank; the tests drive one to compare W ranks with one process. */
typedef struct {
    const Config *cfg;  /* the run's spec: train.batch_size is the global batch */
    const Comm *comm;   /* the ranks (comm_serial(): one process) */
    Model m;            /* built for train.batch_size / comm->size rows */
    AdamWConfig adam;
    Schedule sched;
    int row0;           /* this rank's first row of every global batch */
    long step, images;  /* steps taken, images of the global stream consumed */
    int built;
} TrainShare;

/* Builds this rank's model (initialised from cfg->seed, identical on every rank) and optimiser.
 * 0, or -1 + err for a batch that does not split over the ranks, an objective that cannot train
 * over them, or what model_build refuses; train_share_free either way. */
int train_share_build(TrainShare *s, const Config *cfg, const Comm *comm, Err *err);
/* One step: this rank fills rows [row0, row0 + B/W) of the global batch at `images`, computes its
 * share, the gradients are summed over the ranks in one all-reduce of the whole GRAD arena, then
 * clipping, AdamW and the objective's post_step (the logit-scale clamp) see on every rank what one
 * process would. *loss is the global batch's loss.
 * Returns 1, or 0 if the loss or the gradient norm was not finite (then the update is skipped). */
int train_share_step(TrainShare *s, float *loss, float *gnorm, float *lr);
void train_share_free(TrainShare *s);

/* Before touching any file of the run, train_run (rank 0) takes <results_dir>/<run_id>.lock
 * (flock, held until it returns), so two processes never write one run.
 * Returns 0 when the run reached a final status (completed or diverged: both are results) or was
 * stopped through opt->stop (status "interrupted": the current step finished, a checkpoint was
 * written and the unfinished run file left for --resume), -1 + err when it could not run or its
 * results could not be written (status "failed"), TRAIN_BUSY + err when another process holds the
 * run or finished it meanwhile (nothing of it was touched). Over ranks, every rank returns the
 * same (a failure on one is a failure of all; a stop on one stops all at the same step). A stop
 * request during the last step lets the run complete. */
#define TRAIN_BUSY 1
int train_run(const Config *cfg, const RunOptions *opt, RunOutcome *out, Err *err);

#endif
