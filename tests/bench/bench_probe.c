/* bench_probe.c — the linear probe's fits (eval/probe.c) on the features the projection quick
 * configuration's final evaluation probes, one thread: the λ path (probe_fit_eval: largest λ first,
 * each warm-started from the previous, the refit from the chosen solution) against the same
 * protocol with every fit from zero (the protocol before the path, replayed here with the exposed
 * pieces and today's optimiser), in one process, as a speed-up.
 *
 * Features: experiments/contrastive.yaml at the quick profile of ablations/projection.yaml (image
 * widths 16..128, batch 128, linear head, tap img.stage4, InfoNCE) trained for TRAIN_IMAGES (the
 * quick budget) on 2 threads, then eval.probe_task's probe set (eval.probe_images = 9,000 images of
 * the 10 shapes, split 4,000 / 1,000 / 4,000 like evaluate.c) through the tower: the tapped stage
 * (d = 128) and the embedding (d = 64), the two sets `eval.probe_all_taps: false` fits. Reported
 * per set: L-BFGS iterations per λ and of the refit, best-of-REPS wall and CPU seconds of each
 * protocol, the chosen λ, validation and test accuracies of both (they should agree). Takes ~15 s
 * on 2 idle cores, most of it training.
 * Usage: bench_probe [EXPERIMENTS_DIR]. Deliberately left out: the other taps, thread scaling.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "eval/probe.h"
#include "model/model.h"
#include "spec/spec.h"
#include "train/trainer.h"

#define TRAIN_IMAGES "train.images=24000"
#define REPS 3
#define TRAIN_NINTHS 4 /* evaluate.c's split: 4/9 train, 1/9 validation, the rest test */
#define VAL_NINTHS 1

void openblas_set_num_threads(int n);

typedef struct {
    ProbeResult r;
    float val_acc[PROBE_N_LAMBDAS];
} ColdResult;

/* The protocol with every fit from zero: x [n, d] holds train, val and test rows in that order. */
static ColdResult fit_cold(const float *x, const int *y, int ntr, int nva, int nte, int d, int C) {
    const long P = probe_n_params(d, C), nall = ntr + nva;
    float *mean = mallocCheck(sizeof(float) * d), *inv_std = mallocCheck(sizeof(float) * d);
    float *xs = mallocCheck(sizeof(float) * (nall + nte) * d), *p = mallocCheck(sizeof(float) * P);
    ColdResult c = {.r.val_acc = -1.0f};
    probe_standardize_fit(mean, inv_std, x, ntr, d);
    probe_standardize_apply(xs, x, mean, inv_std, (int)nall, d);
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) {
        memset(p, 0, sizeof(float) * P);
        c.r.iters[l] = probe_train(p, xs, y, ntr, d, C, PROBE_LAMBDAS[l], PROBE_MAX_ITER);
        c.val_acc[l] = probe_accuracy(p, xs + (long)ntr * d, y + ntr, nva, d, C);
        if (c.val_acc[l] >= c.r.val_acc) c.r.val_acc = c.val_acc[l], c.r.lambda = PROBE_LAMBDAS[l];
    }
    probe_standardize_fit(mean, inv_std, x, (int)nall, d);
    probe_standardize_apply(xs, x, mean, inv_std, (int)(nall + nte), d);
    memset(p, 0, sizeof(float) * P);
    c.r.refit_iters = probe_train(p, xs, y, (int)nall, d, C, c.r.lambda, PROBE_MAX_ITER);
    c.r.test_acc = probe_accuracy(p, xs + nall * d, y + nall, nte, d, C);
    free(mean), free(inv_std), free(xs), free(p);
    return c;
}

static void print_row(const char *what, const ProbeResult *r, double wall, double cpu) {
    int total = r->refit_iters;
    printf("  %-5s iters/λ", what);
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) printf(" %3d", r->iters[l]), total += r->iters[l];
    printf("  refit %3d  total %4d  %6.3f s wall %6.3f s CPU  λ %g  val %.4f  test %.4f\n", r->refit_iters, total,
           wall, cpu, (double)r->lambda, (double)r->val_acc, (double)r->test_acc);
}

static void bench_set(const char *name, const float *x, const int *y, int n, int d, int C) {
    const int ntr = n * TRAIN_NINTHS / 9, nva = n * VAL_NINTHS / 9, nte = n - ntr - nva;
    const float *xv = x + (long)ntr * d, *xt = x + (long)(ntr + nva) * d;
    double cold_s = 1e30, cold_cpu = 0, path_s = 1e30, path_cpu = 0;
    ColdResult c = {0};
    ProbeResult r = {0};
    for (int rep = 0; rep < REPS; rep++) { /* interleaved, best of REPS: other jobs only add time */
        double t0 = time_now(), c0 = bench_cpu_now();
        c = fit_cold(x, y, ntr, nva, nte, d, C);
        double dt = time_now() - t0, dc = bench_cpu_now() - c0;
        if (dt < cold_s) cold_s = dt, cold_cpu = dc;
        t0 = time_now(), c0 = bench_cpu_now();
        r = probe_fit_eval(x, y, ntr, xv, y + ntr, nva, xt, y + ntr + nva, nte, d, C);
        dt = time_now() - t0, dc = bench_cpu_now() - c0;
        if (dt < path_s) path_s = dt, path_cpu = dc;
    }
    printf("%s: d = %d, %d classes, %d / %d / %d rows; cold val acc per λ", name, d, C, ntr, nva, nte);
    for (int l = 0; l < PROBE_N_LAMBDAS; l++) printf(" %.4f", (double)c.val_acc[l]);
    printf("\n");
    print_row("cold", &c.r, cold_s, cold_cpu);
    print_row("path", &r, path_s, path_cpu);
    printf("  speed-up %.2fx wall, %.2fx CPU (best of %d)\n", cold_s / path_s, cold_cpu / path_cpu, REPS);
}

/* Trains the model of cfg for its budget (from its seed) on the current thread count. */
static int train_model(TrainShare *s, const Config *cfg, Err *err) {
    if (train_share_build(s, cfg, comm_serial(), err)) return -1;
    float loss, gnorm, lr;
    while (s->images < (long)cfg->train.images) train_share_step(s, &loss, &gnorm, &lr);
    return 0;
}

int main(int argc, char **argv) {
    char path[512];
    snprintf(path, sizeof path, "%s/contrastive.yaml", argc > 1 ? argv[1] : "experiments");
    const char *over[] = {"model.image.widths=[16,32,64,128]", "train.batch_size=128", TRAIN_IMAGES};
    Config cfg;
    Err err;
    int bad = spec_load(path, &cfg, &err);
    for (size_t i = 0; !bad && i < sizeof over / sizeof over[0]; i++) bad = spec_override(&cfg, over[i], &err);
    TrainShare s = {0};
    omp_set_num_threads(2);
    double t0 = time_now();
    if (bad || train_model(&s, &cfg, &err)) {
        fprintf(stderr, "bench_probe: %s\n", err.msg);
        train_share_free(&s);
        return 1;
    }
    Model *m = &s.m;
    const ZeroShotTask *t = dataset_probe_task(m->ds, cfg.eval.probe_task, cfg.eval.probe_images);
    const int n = t->n_images, image_floats = m->batch.R * m->batch.R * 3;
    ImageFeatures f = m->obj->ops->image_features(m->obj, t->images, 1);
    const int dh = f.pre_dim, dz = f.post_dim;
    float *h = mallocCheck(sizeof(float) * n * dh), *z = mallocCheck(sizeof(float) * n * dz);
    for (int i0 = 0; i0 < n; i0 += m->max_batch) {
        int b = n - i0 < m->max_batch ? n - i0 : m->max_batch;
        f = m->obj->ops->image_features(m->obj, t->images + (size_t)i0 * image_floats, b);
        memcpy(h + (size_t)i0 * dh, f.pre_head, sizeof(float) * b * dh);
        memcpy(z + (size_t)i0 * dz, f.post_head, sizeof(float) * b * dz);
    }
    printf("probe fits on %s after %ld training images (%.1f s, 2 threads); fits on 1 thread\n", t->name, s.images,
           time_now() - t0);
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    bench_set(cfg.model.image.tap, h, t->labels, n, dh, t->n_classes);
    bench_set("post_head", z, t->labels, n, dz, t->n_classes);
    free(h), free(z);
    train_share_free(&s);
    return 0;
}
