/* trainer.c — the training loop (see trainer.h).
 *
 * A step: fill the batch (sample indices = images processed so far, so the data stream is a pure
 * function of the seed and the cursor), zero the gradients (one memset), forward+backward of the
 * objective, clip by global norm, AdamW with warm-up + cosine. A non-finite loss or gradient norm
 * stops the run as "diverged". Evaluation runs at 0 images, every eval.every_images and at the end;
 * the linear probes only at the end.
 * Resume restores parameters, Adam moments, step and cursor from the checkpoint and truncates the
 * log to the checkpoint's rows, so a resumed run equals an uninterrupted one (wall_s, the one
 * measured series, continues from the checkpoint's value).
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
#include "train/model.h"
#include "train/optim.h"

void openblas_set_num_threads(int n);

double images_to_reach(const double *x, const double *y, int n, double target) {
    for (int i = 0; i < n; i++) {
        if (!(y[i] >= target)) continue;
        if (i == 0) return x[0];
        double f = (target - y[i - 1]) / (y[i] - y[i - 1]);
        return x[i - 1] + f * (x[i] - x[i - 1]);
    }
    return NAN;
}

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
    h5io_quiet();
    hid_t f = n_eval > 0 ? H5Fopen(tmp_path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) return;
    hid_t g = H5Gopen2(f, "eval", H5P_DEFAULT);
    char(*names)[H5IO_NAME_MAX] = NULL;
    int n = g >= 0 ? h5io_list(g, &names) : 0;
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
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

int train_run(const Config *cfg, const RunOptions *opt, RunOutcome *out, Err *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "failed");
    out->images_to_target = NAN;
    set_threads(cfg->train.threads);
    Model m;
    if (model_build(&m, cfg, err)) return -1;

    char ckpt_path[1024], task_metric[METRIC_NAME_MAX];
    snprintf(task_metric, sizeof task_metric, "zs.%.38s.top1", cfg->eval.task);
    Curve curve = {0};
    snprintf(ckpt_path, sizeof ckpt_path, "%s/%s.ckpt.h5", opt->results_dir, opt->run_id);
    long step = 0, images = 0, n_clipped = 0; /* steps whose gradient was clipped */
    double wall_offset = 0; /* seconds the run had already taken before a resume */
    RunLog *log = NULL;
    Metrics mt; /* the last evaluation */
    if (opt->resume && access(ckpt_path, F_OK) == 0) {
        CheckpointMeta meta;
        float *const bufs[3] = {m.params.buf[TBUF_VALUE], m.params.buf[TBUF_ADAM_M], m.params.buf[TBUF_ADAM_V]};
        if (checkpoint_load(ckpt_path, &meta, 3, CKPT_BUFS, bufs, m.params.total, err)) goto fail_model;
        char tmp_path[1024];
        snprintf(tmp_path, sizeof tmp_path, "%s/%s.h5.tmp", opt->results_dir, opt->run_id);
        double *ex = NULL, *ey = NULL, *wall = NULL, *clip = NULL;
        long ne = report_read_series(tmp_path, "eval", "images", &ex);
        long ny = report_read_series(tmp_path, "eval", task_metric, &ey);
        for (long i = 0; i < meta.n_eval_rows && i < ne && i < ny; i++) curve_push(&curve, ex[i], ey[i]);
        /* wall_s continues from the checkpoint's row, so the series stays the run's elapsed time */
        long nw = report_read_series(tmp_path, "train", "wall_s", &wall);
        if (meta.n_train_rows > 0 && nw >= meta.n_train_rows) wall_offset = wall[meta.n_train_rows - 1];
        long nc = report_read_series(tmp_path, "train", "clipped", &clip);
        for (long i = 0; i < meta.n_train_rows && i < nc; i++) n_clipped += clip[i] > 0;
        free(clip);
        free(ex);
        free(ey);
        free(wall);
        restore_last_eval(tmp_path, meta.n_eval_rows, &mt);
        log = runlog_resume(opt->results_dir, opt->run_id, meta.n_train_rows, meta.n_eval_rows, err);
        if (!log) goto fail_model;
        step = meta.step;
        images = meta.images;
        fprintf(stderr, "%s: resuming at %ld images (step %ld)\n", opt->run_id, images, step);
    } else {
        log = runlog_create(opt->results_dir, opt->run_id, err);
        if (!log) goto fail_model;
        runlog_provenance(log);
        char *yaml = config_to_yaml(cfg);
        runlog_attr_str(log, "spec", yaml);
        free(yaml);
        runlog_attr_str(log, "swept", opt->swept ? opt->swept : "");
        runlog_attr_str(log, "tuned", opt->tuned ? opt->tuned : "");
        runlog_attr_int(log, "seed", cfg->seed);
        runlog_attr_str(log, "name", cfg->name);
        runlog_attr_int(log, "n_params", (long)m.params.total);
    }

    const long total = (long)cfg->train.images, B = cfg->train.batch_size;
    const long every = (long)cfg->eval.every_images;
    const long ckpt_every = (long)cfg->train.checkpoint_every_images;
    AdamWConfig adam = {.lr = (float)cfg->train.lr, .beta1 = (float)cfg->train.beta1, .beta2 = (float)cfg->train.beta2,
                        .eps = (float)cfg->train.eps, .weight_decay = (float)cfg->train.weight_decay};
    const Schedule sched = {.kind = (ScheduleKind)schedule_kind_find(cfg->train.schedule),
                            .warmup_images = (double)cfg->train.warmup_images, .total_images = (double)total,
                            .decay_fraction = cfg->train.decay_fraction, .peak_lr = adam.lr};
    /* curves are comparable across budgets only up to here (the efficiency ratios read it) */
    runlog_attr_str(log, "schedule", cfg->train.schedule);
    runlog_attr_double(log, "budget_free_until_images", schedule_budget_free_until(&sched));
    /* evaluation's share of the wall time (issue 15 wants < 10%): this session's seconds */
    double eval_s = 0, session_t0 = time_now(), te = session_t0;
    if (images == 0) {
        evaluate_model(&m, 0, cfg->eval.all_tasks, &mt);
        eval_s += time_now() - te;
        log_eval(log, &curve, task_metric, 0, &mt);
        print_eval_line(0, &mt, cfg->eval.task);
    }
    const char *status = "completed";
    Progress prog;
    progress_start(&prog, opt->progress_label ? opt->progress_label : "train", "img", (double)total);
    double t0 = time_now() - wall_offset, train_s = 0;
    long images_at_start = images;
    while (images < total) {
        double ts = time_now();
        dataset_fill_batch(m.ds, &m.batch, (uint64_t)images, (int)B);
        tensors_zero(&m.params, TBUF_GRAD);
        float loss = m.obj->ops->forward_backward(m.obj, &m.batch, comm_serial());
        float gnorm = grad_clip_global_norm(&m.params, (float)cfg->train.grad_clip);
        float lr = schedule_at(&sched, (double)images);
        step++;
        images += B;
        int finite = isfinite(loss) && isfinite(gnorm);
        if (finite) adamw_step(&m.params, &adam, lr, step);
        train_s += time_now() - ts;
        runlog_append(log, "train", "step", (double)step);
        runlog_append(log, "train", "images", (double)images);
        runlog_append(log, "train", "loss", loss);
        runlog_append(log, "train", "lr", lr);
        runlog_append(log, "train", "grad_norm", gnorm);
        int clipped = grad_clip_applies(gnorm, (float)cfg->train.grad_clip);
        n_clipped += clipped;
        runlog_append(log, "train", "clipped", clipped);
        runlog_append(log, "train", "wall_s", time_now() - t0);
        const char *snames[OBJECTIVE_MAX_LOG_SCALARS];
        float svals[OBJECTIVE_MAX_LOG_SCALARS];
        int ns = m.obj->ops->log_scalars ? m.obj->ops->log_scalars(m.obj, snames, svals, OBJECTIVE_MAX_LOG_SCALARS) : 0;
        for (int i = 0; i < ns; i++) runlog_append(log, "train", snames[i], svals[i]);
        if (!finite) {
            status = "diverged";
            fprintf(stderr, "%s: non-finite %s at step %ld: run diverged\n", opt->run_id,
                    isfinite(loss) ? "gradient" : "loss", step);
            break;
        }
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", loss);
        progress_update(&prog, (double)images, extra);
        int at_end = images >= total;
        if (at_end || images / every != (images - B) / every) {
            /* the probe (thousands of images, five fits per feature set) only at the end: the
             * reports read its final value, and evaluating it less often keeps its size */
            te = time_now();
            evaluate_model(&m, cfg->eval.probe && at_end, cfg->eval.all_tasks, &mt);
            eval_s += time_now() - te;
            log_eval(log, &curve, task_metric, (double)images, &mt);
            if (prog.line_open) fputc('\n', stderr);
            print_eval_line((double)images, &mt, cfg->eval.task);
        }
        if (!at_end && ckpt_every > 0 && images / ckpt_every != (images - B) / ckpt_every)
            if (save_checkpoint(ckpt_path, &m, log, step, images, err)) goto fail_log;
    }
    progress_finish(&prog, (double)images, NULL);
    out->images = (double)images;
    out->wall_s = time_now() - t0;
    out->images_per_s = train_s > 0 ? (double)(images - images_at_start) / train_s : 0;
    const double session_s = time_now() - session_t0;
    runlog_attr_double(log, "eval_s", eval_s);
    runlog_attr_double(log, "session_wall_s", session_s);
    fprintf(stderr, "%s: evaluation took %.1f s of %.1f s (%.1f%%)\n", opt->run_id, eval_s, session_s,
            session_s > 0 ? 100 * eval_s / session_s : 0.0);
    if (runlog_flush(log)) {
        err_set(err, "%s", runlog_error(log));
        goto fail_log;
    }

    /* summary: the last evaluation, throughput and images to reach the target accuracy, which a
     * run that never left chance has not reached whatever the target */
    out->left_chance = check_left_chance(log, opt->run_id, &curve, &mt, task_metric);
    out->images_to_target =
        out->left_chance ? images_to_reach(curve.images, curve.value, curve.n, cfg->eval.target_top1) : NAN;
    free(curve.images);
    free(curve.value);
    out->final = mt;
    for (int i = 0; i < mt.n; i++) {
        runlog_summary(log, mt.names[i], mt.values[i]);
        runlog_describe(log, "summary", mt.names[i], mt.counts[i], mt.chance[i]);
    }
    runlog_summary(log, "left_chance", out->left_chance);
    runlog_summary(log, "images", out->images);
    runlog_summary(log, "images_per_s", out->images_per_s);
    runlog_summary(log, "images_to_target", out->images_to_target);
    /* gradient clipping hits the arms unequally (issue 11): the share of steps it scaled */
    runlog_summary(log, "clipped_fraction", step > 0 ? (double)n_clipped / step : NAN);
    snprintf(out->status, sizeof out->status, "%s", status);
    model_free(&m);
    if (runlog_finish(log, status, err)) return -1;
    unlink(ckpt_path); /* a finished run needs no checkpoint; its results are in the .h5 */
    return 0;
fail_log:
    runlog_abandon(log);
fail_model:
    free(curve.images);
    free(curve.value);
    model_free(&m);
    return -1;
}
