/* trainer.c — the training loop (see trainer.h).
 *
 * A step: fill the batch (sample indices = images processed so far, so the data stream is a pure
 * function of the seed and the cursor), zero the gradients (one memset), forward+backward of the
 * objective, clip by global norm, AdamW with warm-up + cosine. A non-finite loss or gradient norm
 * stops the run as "diverged". Evaluation runs at 0 images, every eval.every_images and at the end;
 * the linear probes, retrieval and, with eval.all_tasks, the zero-shot tasks other than eval.task
 * only at the end (earlier rows log them as NaN: the curves need only eval.task).
 * Resume restores parameters, Adam moments, step and cursor from the checkpoint and truncates the
 * log to the checkpoint's rows, so a resumed run equals an uninterrupted one (wall_s, the one
 * measured series, continues from the checkpoint's value).
 * Data parallel (RunOptions.comm of W ranks): each rank fills and trains its B/W rows of the same
 * global batch, the objective exchanges what its loss couples (contrastive: the embeddings), the
 * parameter gradients are summed in one all-reduce over the whole GRAD arena, and every rank then
 * clips and steps identically (the all-reduce is bitwise equal on every rank). The ranks share
 * an evaluation's feature extraction (evaluate_model); rank 0 alone computes its metrics, writes
 * the run file and the checkpoints; failures are agreed on (Comm.any).
 * train_run is its steps in order: start or resume, then per step trainer_step,
 * trainer_maybe_evaluate and trainer_maybe_checkpoint, then finish; one Trainer holds the run's
 * state and one failure path frees it.
 * A stop request (RunOptions.stop, set by the CLI's SIGINT/SIGTERM handler) is read once per step,
 * after the step's evaluation and checkpoint; the ranks agree on it (Comm any), so all stop at the
 * same step, and the run ends "interrupted" with a checkpoint of that step and its .tmp kept.
 */
#include "train/trainer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/check.h"
#include "common/timer.h"
#include "log/checkpoint.h"
#include "log/h5io.h"
#include "log/report.h"
#include "log/runlog.h"
#include "spec/spec.h"
#include "analysis/curve.h"
#include "model/model.h"
#include "optim/optim.h"

void openblas_set_num_threads(int n);

static const char *const CKPT_BUFS[] = {"params", "adam_m", "adam_v"};

static int save_checkpoint(const char *path, Model *m, RunLog *log, long step, long images, Err *err) {
    if (runlog_flush(log)) return err_set(err, "%s", runlog_error(log));
    CheckpointMeta meta = {.step = step, .images = images, .rng_state = 0, .data_cursor = (uint64_t)images,
                           .n_train_rows = runlog_rows(log, "train"), .n_eval_rows = runlog_rows(log, "eval")};
    int nt = m->params.n;
    const char **names = mallocCheck((size_t)nt * sizeof *names);
    size_t *offs = mallocCheck((size_t)nt * sizeof *offs), *counts = mallocCheck((size_t)nt * sizeof *counts);
    for (int i = 0; i < nt; i++) {
        names[i] = m->params.info[i].name;
        offs[i] = m->params.info[i].offset;
        counts[i] = m->params.info[i].count;
    }
    float *const bufs[3] = {m->params.buf[TBUF_VALUE], m->params.buf[TBUF_ADAM_M], m->params.buf[TBUF_ADAM_V]};
    int rc = checkpoint_save(path, &meta, 3, CKPT_BUFS, bufs, m->params.total, nt, names, offs, counts, err);
    free(names);
    free(offs);
    free(counts);
    return rc;
}

/* The evaluations so far of the metric that defines "images to target" (eval.task's top-1). */
typedef struct {
    int n, cap;
    double *images, *value;
} Curve;

static void curve_push(Curve *c, double images, double value) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->images = reallocCheck(c->images, (size_t)c->cap * sizeof(double));
        c->value = reallocCheck(c->value, (size_t)c->cap * sizeof(double));
    }
    c->images[c->n] = images;
    c->value[c->n++] = value;
}

static void log_eval(RunLog *log, Curve *curve, const char *task_metric, double images, const Metrics *mt) {
    runlog_append(log, "eval", "images", images);
    for (int i = 0; i < mt->n; i++) {
        runlog_append(log, "eval", mt->names[i], mt->values[i]);
        runlog_describe(log, "eval", mt->names[i], mt->counts[i], mt->chance[i]);
    }
    curve_push(curve, images, metrics_get(mt, task_metric));
}

/* Resume: the last evaluation the checkpoint counts (row n_eval - 1 of every /eval series but
 * images), so a resumed run that diverges before its next evaluation reports the same final
 * metrics as an uninterrupted one. Empty if the log has none. */
static void restore_last_eval(const char *tmp_path, long n_eval, Metrics *mt) {
    mt->n = 0;
    char(*names)[REPORT_NAME_MAX] = NULL;
    int n = n_eval > 0 ? report_list_series(tmp_path, "eval", &names) : 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], "images")) continue;
        double *v;
        long count = 0;
        double chance = NAN;
        report_read_description(tmp_path, "eval", names[i], &count, &chance);
        if (report_read_series(tmp_path, "eval", names[i], &v) >= n_eval) metrics_set(mt, names[i], v[n_eval - 1], count, chance);
        free(v);
    }
    free(names);
}

/* Whether the curve of the target metric ever left chance (metrics_left_chance); if not, a
 * warning on stderr and in the run file's `warning` attribute, which `cliplab report` shows. */
static int check_left_chance(RunLog *log, const char *run_id, const Curve *curve, const Metrics *mt,
                             const char *task_metric) {
    int k = metrics_find(mt, task_metric);
    if (k < 0 || mt->counts[k] <= 0 || isnan(mt->chance[k])) return 1; /* nothing to judge by */
    if (metrics_left_chance(curve->value, curve->n, mt->counts[k], mt->chance[k])) return 1;
    double best = -INFINITY;
    for (int i = 0; i < curve->n; i++) best = fmax(best, curve->value[i]);
    char msg[256];
    snprintf(msg, sizeof msg, "%s never left chance: best %.4f vs chance %.4f over %ld images (collapsed or untrained)",
             task_metric, best, mt->chance[k], mt->counts[k]);
    fprintf(stderr, "%s: warning: %s\n", run_id, msg);
    runlog_attr_str(log, "warning", msg);
    return 0;
}

static void set_threads(int threads) {
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
}

static void print_eval_line(double images, const Metrics *mt, const char *task) {
    char name[METRIC_NAME_MAX];
    snprintf(name, sizeof name, "zs.%.38s.top1", task);
    double top1 = metrics_get(mt, name);
    fprintf(stderr, "eval @ %.0f images: %s top-1 %.3f", images, task, top1);
    double r1 = metrics_get(mt, "retrieval.i2t_r1");
    if (!isnan(r1)) fprintf(stderr, ", i2t R@1 %.3f", r1);
    fputc('\n', stderr);
}

/* The state of one run while it trains. */
typedef struct {
    const Config *cfg;
    const RunOptions *opt;
    TrainShare s; /* this rank's model, optimiser and position */
    int writer;   /* rank 0: evaluates, logs, checkpoints */
    RunLog *log;
    Curve curve;          /* eval.task's top-1 at every evaluation */
    Metrics mt;           /* the last evaluation */
    Progress prog;
    char ckpt_path[1024], lock_path[1024], task_metric[METRIC_NAME_MAX];
    int lock_fd;    /* h5io_lock of lock_path, -1 when not held */
    long n_clipped; /* steps whose gradient was clipped */
    long images_at_start;
    double t0, train_s; /* t0: wall clock of images 0 (earlier than now on a resume); seconds in steps */
    /* evaluation's share of the wall time (issue 15 wants < 10%), and of the CPU time */
    double session_t0, eval_s;       /* this session's start and its seconds in evaluations */
    double session_cpu0, eval_cpu_s; /* the same in CPU seconds (time_cpu) */
} Trainer;

/* Keys a resume may change: they cannot change what the run measures (the thread count changes
 * only the order of float additions, as on any machine; checkpoints only when work is saved). */
static const char *const RESUME_NEUTRAL_KEYS[] = {"train.threads", "train.checkpoint_every_images", NULL};
/* Room for the spec a run file records (config_to_yaml is a few KiB). */
#define SPEC_TEXT_MAX (1 << 16)

/* A resume finishes the experiment that was started: the spec recorded in the run file (its
 * `spec` attribute) must equal this one in every key but RESUME_NEUTRAL_KEYS. 0, or -1 + err
 * naming the keys that differ. */
static int trainer_check_same_spec(const Trainer *t, const char *tmp_path, Err *err) {
    char *text = mallocCheck(SPEC_TEXT_MAX);
    Config started;
    Err load_err;
    int unreadable = report_read_attr_str(tmp_path, "spec", text, SPEC_TEXT_MAX) ||
                     strlen(text) + 1 >= SPEC_TEXT_MAX ||
                     spec_load_string(tmp_path, text, strlen(text), &started, &load_err);
    free(text);
    if (unreadable)
        return err_set(err, "cannot resume run '%s': the spec it started with cannot be read from %s", t->opt->run_id,
                       tmp_path);
    char keys[ERR_MSG_MAX / 2];
    int n = config_diff(&started, t->cfg, RESUME_NEUTRAL_KEYS, keys, sizeof keys);
    if (n == 0) return 0;
    return err_set(err, "cannot resume run '%s' under a different spec: %s differ%s from the spec it started with "
                        "(resume with the same spec and overrides, or --force to start it again)",
                   t->opt->run_id, keys, n == 1 ? "s" : "");
}

/* Resume: parameters and Adam moments from the checkpoint, the curve, wall_s and clipped counts
 * from the log's rows the checkpoint counts, then the log truncated to those rows. */
static int trainer_resume(Trainer *t, double *wall_offset, Err *err) {
    CheckpointMeta meta;
    float *const bufs[3] = {t->s.m.params.buf[TBUF_VALUE], t->s.m.params.buf[TBUF_ADAM_M], t->s.m.params.buf[TBUF_ADAM_V]};
    if (checkpoint_load(t->ckpt_path, &meta, 3, CKPT_BUFS, bufs, t->s.m.params.total, err)) return -1;
    t->s.step = meta.step;
    t->s.images = meta.images;
    if (!t->writer) return 0; /* the log is rank 0's */
    char tmp_path[1024];
    snprintf(tmp_path, sizeof tmp_path, "%s/%s.h5.tmp", t->opt->results_dir, t->opt->run_id);
    if (trainer_check_same_spec(t, tmp_path, err)) return -1;
    double *ex = NULL, *ey = NULL, *wall = NULL, *clip = NULL;
    long ne = report_read_series(tmp_path, "eval", "images", &ex);
    long ny = report_read_series(tmp_path, "eval", t->task_metric, &ey);
    for (long i = 0; i < meta.n_eval_rows && i < ne && i < ny; i++) curve_push(&t->curve, ex[i], ey[i]);
    /* wall_s continues from the checkpoint's row, so the series stays the run's elapsed time */
    long nw = report_read_series(tmp_path, "train", "wall_s", &wall);
    if (meta.n_train_rows > 0 && nw >= meta.n_train_rows) *wall_offset = wall[meta.n_train_rows - 1];
    long nc = report_read_series(tmp_path, "train", "clipped", &clip);
    for (long i = 0; i < meta.n_train_rows && i < nc; i++) t->n_clipped += clip[i] > 0;
    free(clip);
    free(ex);
    free(ey);
    free(wall);
    restore_last_eval(tmp_path, meta.n_eval_rows, &t->mt);
    t->log = runlog_resume(t->opt->results_dir, t->opt->run_id, meta.n_train_rows, meta.n_eval_rows, err);
    if (!t->log) return -1;
    fprintf(stderr, "%s: resuming at %ld images (step %ld)\n", t->opt->run_id, t->s.images, t->s.step);
    return 0;
}

/* A new run file with the run's provenance and resolved spec. */
static int trainer_create_log(Trainer *t, Err *err) {
    if (!t->writer) return 0;
    t->log = runlog_create(t->opt->results_dir, t->opt->run_id, err);
    if (!t->log) return -1;
    runlog_provenance(t->log);
    char *yaml = config_to_yaml(t->cfg);
    runlog_attr_str(t->log, "spec", yaml);
    free(yaml);
    runlog_attr_str(t->log, "swept", t->opt->swept ? t->opt->swept : "");
    runlog_attr_str(t->log, "tuned", t->opt->tuned ? t->opt->tuned : "");
    runlog_attr_int(t->log, "seed", t->cfg->seed);
    runlog_attr_str(t->log, "name", t->cfg->name);
    runlog_attr_int(t->log, "n_params", (long)t->s.m.params.total);
    return 0;
}

int train_share_build(TrainShare *s, const Config *cfg, const Comm *comm, Err *err) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->comm = comm;
    int W = comm->size, B = cfg->train.batch_size;
    if (B % W) return err_set(err, "train.batch_size %d does not split evenly over %d ranks", B, W);
    Config share = *cfg;
    share.train.batch_size = B / W;
    s->row0 = comm->rank * (B / W);
    if (model_build(&s->m, &share, err)) return -1;
    s->built = 1;
    s->adam = (AdamWConfig){.lr = (float)cfg->train.lr, .beta1 = (float)cfg->train.beta1, .beta2 = (float)cfg->train.beta2,
                            .eps = (float)cfg->train.eps, .weight_decay = (float)cfg->train.weight_decay};
    s->sched = (Schedule){.kind = (ScheduleKind)schedule_kind_find(cfg->train.schedule),
                          .warmup_images = (double)cfg->train.warmup_images, .total_images = (double)cfg->train.images,
                          .decay_fraction = cfg->train.decay_fraction, .peak_lr = s->adam.lr};
    const ObjectiveOps *ops = s->m.obj->ops;
    return ops->check_ranks ? ops->check_ranks(s->m.obj, W, err) : 0;
}

int train_share_step(TrainShare *s, float *loss, float *gnorm, float *lr) {
    Model *m = &s->m;
    dataset_fill_batch(m->ds, &m->batch, (uint64_t)(s->images + s->row0), m->cfg.train.batch_size);
    tensors_zero(&m->params, TBUF_GRAD);
    double share = m->obj->ops->forward_backward(m->obj, &m->batch, s->comm);
    s->comm->ops->allreduce_f64(s->comm, &share, 1);
    s->comm->ops->allreduce(s->comm, m->params.buf[TBUF_GRAD], m->params.total);
    *loss = (float)share;
    *gnorm = grad_clip_global_norm(&m->params, (float)s->cfg->train.grad_clip);
    *lr = schedule_at(&s->sched, (double)s->images);
    s->step++;
    s->images += s->cfg->train.batch_size;
    int finite = isfinite(*loss) && isfinite(*gnorm);
    if (finite) {
        adamw_step(&m->params, &s->adam, *lr, s->step);
        if (m->obj->ops->post_step) m->obj->ops->post_step(m->obj); /* e.g. the loss's clamp of t */
    }
    return finite;
}

void train_share_free(TrainShare *s) {
    if (s->built) model_free(&s->m);
    s->built = 0;
}

/* Takes the run's lock, then re-checks under it that the run is not finished: a caller's earlier
 * look may predate another process finishing it. 0, TRAIN_BUSY or -1 (+ err). */
static int trainer_lock(Trainer *t, const RunOptions *opt, Err *err) {
    char final_path[1100], what[300];
    snprintf(t->lock_path, sizeof t->lock_path, "%s/%s.lock", opt->results_dir, opt->run_id);
    snprintf(final_path, sizeof final_path, "%s/%s.h5", opt->results_dir, opt->run_id);
    snprintf(what, sizeof what, "run '%s'", opt->run_id);
    if (h5io_mkdirs(opt->results_dir, err)) return -1;
    t->lock_fd = h5io_lock(t->lock_path, what, err);
    if (t->lock_fd == H5IO_LOCK_BUSY) return TRAIN_BUSY;
    if (t->lock_fd < 0) return -1;
    if (!opt->overwrite && access(final_path, F_OK) == 0) {
        h5io_unlock(t->lock_path, t->lock_fd);
        t->lock_fd = -1;
        err_set(err, "run '%s' was finished by another process meanwhile ('%s')", opt->run_id, final_path);
        return TRAIN_BUSY;
    }
    return 0;
}

/* One evaluation, every rank computing its share of the images' features (evaluate_model); rank 0
 * logs and prints it. */
static void trainer_evaluate(Trainer *t, int parts) {
    double te = time_now(), ce = time_cpu();
    evaluate_model(&t->s.m, parts, t->s.comm, &t->mt);
    t->eval_s += time_now() - te;
    t->eval_cpu_s += time_cpu() - ce;
    if (!t->writer) return;
    log_eval(t->log, &t->curve, t->task_metric, (double)t->s.images, &t->mt);
    if (t->prog.line_open) fputc('\n', stderr);
    print_eval_line((double)t->s.images, &t->mt, t->cfg->eval.task);
}

/* Builds the model and the optimiser, takes the run's lock (rank 0, which writes), then resumes
 * from the checkpoint or starts a new log (and evaluates at 0 images). Returns 0, TRAIN_BUSY or
 * -1; on failure the caller frees what was built (trainer_free). */
static int trainer_start_or_resume(Trainer *t, const Config *cfg, const RunOptions *opt, Err *err) {
    t->cfg = cfg;
    t->opt = opt;
    const Comm *comm = opt->comm ? opt->comm : comm_serial();
    t->writer = comm->rank == 0;
    set_threads(cfg->train.threads);
    snprintf(t->task_metric, sizeof t->task_metric, "zs.%.38s.top1", cfg->eval.task);
    snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s/%s.ckpt.h5", opt->results_dir, opt->run_id);
    double wall_offset = 0; /* seconds the run had already taken before a resume */
    int rc = train_share_build(&t->s, cfg, comm, err);
    /* after the checks the build makes (bad input creates no folder), before any file of the run */
    if (!rc && t->writer) rc = trainer_lock(t, opt, err);
    if (!rc) rc = opt->resume && access(t->ckpt_path, F_OK) == 0 ? trainer_resume(t, &wall_offset, err)
                                                                 : trainer_create_log(t, err);
    if (comm->ops->any(comm, rc != 0)) /* every rank starts, or none */
        return rc ? rc : err_set(err, "another rank of this run could not start (its message is above)");
    t->session_t0 = time_now();
    t->session_cpu0 = time_cpu();
    if (t->writer) {
        /* curves are comparable across budgets only up to here (the efficiency ratios read it) */
        runlog_attr_str(t->log, "schedule", cfg->train.schedule);
        runlog_attr_double(t->log, "budget_free_until_images", schedule_budget_free_until(&t->s.sched));
    }
    if (t->s.images == 0) trainer_evaluate(t, 0);
    if (t->writer)
        progress_start(&t->prog, opt->progress_label ? opt->progress_label : "train", "img", (double)cfg->train.images);
    t->t0 = time_now() - wall_offset;
    t->images_at_start = t->s.images;
    return 0;
}

/* One optimisation step and (rank 0) its row of /train. Returns 0, or -1 if the loss or the
 * gradient is not finite (the update is skipped and the run has diverged). */
static int trainer_step(Trainer *t) {
    Model *m = &t->s.m;
    double ts = time_now();
    float loss, gnorm, lr;
    int finite = train_share_step(&t->s, &loss, &gnorm, &lr);
    t->train_s += time_now() - ts;
    if (!t->writer) return finite ? 0 : -1;
    runlog_append(t->log, "train", "step", (double)t->s.step);
    runlog_append(t->log, "train", "images", (double)t->s.images);
    runlog_append(t->log, "train", "loss", loss);
    runlog_append(t->log, "train", "lr", lr);
    runlog_append(t->log, "train", "grad_norm", gnorm);
    int clipped = grad_clip_applies(gnorm, (float)t->cfg->train.grad_clip);
    t->n_clipped += clipped;
    runlog_append(t->log, "train", "clipped", clipped);
    runlog_append(t->log, "train", "wall_s", time_now() - t->t0);
    const char *snames[OBJECTIVE_MAX_LOG_SCALARS];
    float svals[OBJECTIVE_MAX_LOG_SCALARS];
    int ns = m->obj->ops->log_scalars ? m->obj->ops->log_scalars(m->obj, snames, svals, OBJECTIVE_MAX_LOG_SCALARS) : 0;
    for (int i = 0; i < ns; i++) runlog_append(t->log, "train", snames[i], svals[i]);
    if (!finite) {
        fprintf(stderr, "%s: non-finite %s at step %ld: run diverged\n", t->opt->run_id,
                isfinite(loss) ? "gradient" : "loss", t->s.step);
        return -1;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "loss %.4f", loss);
    progress_update(&t->prog, (double)t->s.images, extra);
    return 0;
}

/* Whether the last step crossed a multiple of period images. */
static int trainer_crossed(const Trainer *t, long period) {
    long B = t->cfg->train.batch_size;
    return period > 0 && t->s.images / period != (t->s.images - B) / period;
}

/* Evaluates every eval.every_images and at the end of the budget. */
static void trainer_maybe_evaluate(Trainer *t, int at_end) {
    if (!at_end && !trainer_crossed(t, (long)t->cfg->eval.every_images)) return;
    /* the curves (efficiency ratios, plots) read only eval.task's series and the reports the final
     * values, so the rest only at the end: the probe (thousands of images, five fits per feature
     * set), retrieval and, with eval.all_tasks, the other tasks; evaluating less often keeps the
     * evaluation sets' sizes */
    int final = (t->cfg->eval.probe ? EVAL_PROBE : 0) | (t->cfg->eval.all_tasks ? EVAL_ALL_TASKS : 0) | EVAL_RETRIEVAL;
    trainer_evaluate(t, at_end ? final : 0);
}

/* Checkpoints every train.checkpoint_every_images, except at the end (the run file follows). */
static int trainer_maybe_checkpoint(Trainer *t, int at_end, Err *err) {
    if (at_end || !trainer_crossed(t, (long)t->cfg->train.checkpoint_every_images)) return 0;
    int rc = t->writer ? save_checkpoint(t->ckpt_path, &t->s.m, t->log, t->s.step, t->s.images, err) : 0;
    if (!t->s.comm->ops->any(t->s.comm, rc != 0)) return 0;
    return rc ? -1 : err_set(err, "rank 0 could not write the checkpoint (its message is above)");
}

/* The summary (last evaluation, throughput, images to reach the target accuracy, which a run that
 * never left chance has not reached whatever the target), the status, and the run file renamed
 * into place; the checkpoint is then deleted. The log is consumed either way. */
static int trainer_finish(Trainer *t, const char *status, RunOutcome *out, Err *err) {
    if (!t->writer) {
        snprintf(out->status, sizeof out->status, "%s", status);
        out->images = (double)t->s.images;
        return 0;
    }
    progress_finish(&t->prog, (double)t->s.images, NULL);
    out->images = (double)t->s.images;
    out->wall_s = time_now() - t->t0;
    out->images_per_s = t->train_s > 0 ? (double)(t->s.images - t->images_at_start) / t->train_s : 0;
    const double session_s = time_now() - t->session_t0, session_cpu_s = time_cpu() - t->session_cpu0;
    runlog_attr_double(t->log, "eval_s", t->eval_s);
    runlog_attr_double(t->log, "session_wall_s", session_s);
    runlog_attr_double(t->log, "eval_cpu_s", t->eval_cpu_s);
    runlog_attr_double(t->log, "session_cpu_s", session_cpu_s);
    fprintf(stderr, "%s: evaluation took %.1f s of %.1f s (%.1f%%), CPU %.1f s of %.1f s (%.1f%%)\n", t->opt->run_id,
            t->eval_s, session_s, session_s > 0 ? 100 * t->eval_s / session_s : 0.0, t->eval_cpu_s, session_cpu_s,
            session_cpu_s > 0 ? 100 * t->eval_cpu_s / session_cpu_s : 0.0);
    if (runlog_flush(t->log)) {
        err_set(err, "%s", runlog_error(t->log));
        runlog_abandon(t->log);
        return -1;
    }
    const Metrics *mt = &t->mt;
    out->left_chance = check_left_chance(t->log, t->opt->run_id, &t->curve, mt, t->task_metric);
    out->images_to_target = out->left_chance
                                ? images_to_reach(t->curve.images, t->curve.value, t->curve.n, t->cfg->eval.target_top1)
                                : NAN;
    out->final = *mt;
    for (int i = 0; i < mt->n; i++) {
        runlog_summary(t->log, mt->names[i], mt->values[i]);
        runlog_describe(t->log, "summary", mt->names[i], mt->counts[i], mt->chance[i]);
    }
    runlog_summary(t->log, "left_chance", out->left_chance);
    runlog_summary(t->log, "images", out->images);
    runlog_summary(t->log, "images_per_s", out->images_per_s);
    runlog_summary(t->log, "images_to_target", out->images_to_target);
    /* gradient clipping hits the arms unequally (issue 11): the share of steps it scaled */
    runlog_summary(t->log, "clipped_fraction", t->s.step > 0 ? (double)t->n_clipped / t->s.step : NAN);
    snprintf(out->status, sizeof out->status, "%s", status);
    if (runlog_finish(t->log, status, err)) return -1;
    unlink(t->ckpt_path); /* a finished run needs no checkpoint; its results are in the .h5 */
    return 0;
}

/* After a step that did not end the budget: whether a stop was requested on any rank (then rank 0
 * writes the step's checkpoint and *signal is set on every rank). 1 stop, 0 go on, -1 + err. */
static int trainer_maybe_stop(Trainer *t, int at_end, int *signal, Err *err) {
    const Comm *comm = t->s.comm;
    int stop = t->opt->stop ? (int)*t->opt->stop : 0;
    if (!comm->ops->any(comm, stop != 0) || at_end) return 0;
    /* one exit status on every rank, a rank the signal did not reach included: SIGTERM if any rank
     * got it (mpirun, sent SIGINT or SIGTERM, sends its ranks SIGTERM), else SIGINT */
    *signal = comm->ops->any(comm, stop == SIGTERM) ? SIGTERM : SIGINT;
    int rc = t->writer ? save_checkpoint(t->ckpt_path, &t->s.m, t->log, t->s.step, t->s.images, err) : 0;
    if (comm->ops->any(comm, rc != 0))
        return rc ? -1 : err_set(err, "rank 0 could not write the checkpoint (its message is above)");
    if (!t->writer) return 1;
    progress_finish(&t->prog, (double)t->s.images, NULL);
    fprintf(stderr, "%s: stopped at %ld of %ld images (step %ld); checkpoint %s\n", t->opt->run_id, t->s.images,
            (long)t->cfg->train.images, t->s.step, t->ckpt_path);
    return 1;
}

static void trainer_free(Trainer *t) {
    h5io_unlock(t->lock_path, t->lock_fd);
    free(t->curve.images);
    free(t->curve.value);
    train_share_free(&t->s);
}

int train_run(const Config *cfg, const RunOptions *opt, RunOutcome *out, Err *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "failed");
    out->images_to_target = NAN;
    Trainer t = {.lock_fd = -1};
    int started = trainer_start_or_resume(&t, cfg, opt, err);
    if (started == TRAIN_BUSY) {
        trainer_free(&t);
        return TRAIN_BUSY;
    }
    if (started) goto fail;
    const char *status = "completed";
    while (t.s.images < (long)cfg->train.images) {
        if (trainer_step(&t)) {
            status = "diverged";
            break;
        }
        int at_end = t.s.images >= (long)cfg->train.images;
        trainer_maybe_evaluate(&t, at_end);
        if (trainer_maybe_checkpoint(&t, at_end, err)) goto fail;
        int stop = trainer_maybe_stop(&t, at_end, &out->stop_signal, err);
        if (stop < 0) goto fail;
        if (stop) {
            snprintf(out->status, sizeof out->status, "interrupted");
            out->images = (double)t.s.images;
            if (t.log) runlog_abandon(t.log); /* the unfinished run file stays for --resume */
            trainer_free(&t);
            return 0;
        }
    }
    int rc = trainer_finish(&t, status, out, err);
    t.log = NULL; /* finished or abandoned by trainer_finish */
    trainer_free(&t);
    if (t.s.comm->ops->any(t.s.comm, rc != 0) && !rc) {
        snprintf(out->status, sizeof out->status, "failed");
        return err_set(err, "rank 0 could not write the run file (its message is above)");
    }
    return rc;
fail:
    if (t.log) runlog_abandon(t.log);
    trainer_free(&t);
    return -1;
}
