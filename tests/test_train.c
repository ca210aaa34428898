/* test_train.c — the training core end to end: every objective's gradient against finite
 * differences on a tiny model (every parameter tensor sampled), loss drops in a 30-step smoke
 * training, zero-shot near chance untrained and far above after training, images-to-target
 * interpolation. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "analysis/curve.h"
#include "eval/evaluate.h"
#include "log/report.h"
#include "model/model.h"
#include "spec/spec.h"
#include "gradcheck.h"
#include "optim/optim.h"
#include "train/trainer.h"

/* A tiny but complete model: 16 px images, two stages, small text towers. */
static void tiny_config(Config *c, const char *objective, const char *text_kind, const char *head) {
    config_defaults(c);
    Err err;
    const char *over[] = {"data.image_size=16", "data.context=10", "data.eval_images=64", "model.image.widths=4,6",
                          "model.image.tap=img.stage2", "model.text.width=8", "model.text.layers=1",
                          "model.text.heads=2", "model.embed_dim=5", "model.head.hidden=7", "train.batch_size=3",
                          "eval.retrieval_n=16", "objective.prefix_tokens=2"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(c, over[i], &err), 0);
    snprintf(c->objective.kind, sizeof c->objective.kind, "%s", objective);
    snprintf(c->model.text.kind, sizeof c->model.text.kind, "%s", text_kind);
    snprintf(c->model.head.kind, sizeof c->model.head.kind, "%s", head);
}

typedef struct {
    Model *m;
} LossCtx;

static double model_loss(void *ctx) {
    Model *m = ((LossCtx *)ctx)->m;
    return m->obj->ops->forward_backward(m->obj, &m->batch, comm_serial());
}

static void check_objective_gradients(const char *objective, const char *text_kind, const char *head,
                                      const char *loss_kind) {
    Config c;
    tiny_config(&c, objective, text_kind, head);
    snprintf(c.loss.kind, sizeof c.loss.kind, "%s", loss_kind);
    /* logit scale 1 instead of 1/0.07 at init: the temperature stays learnable (and checked), but
     * the loss is ~14x less curved, so fp32 central differences resolve the gradient; at 14.3 the
     * numeric value converges to the analytic one only as eps shrinks into fp32 round-off */
    c.loss.init_temperature = 1.0;
    Model m;
    Err err;
    assert_int_equal(model_build(&m, &c, &err), 0);
    dataset_fill_batch(m.ds, &m.batch, 7, 3);
    tensors_zero(&m.params, TBUF_GRAD);
    m.obj->ops->forward_backward(m.obj, &m.batch, comm_serial());
    /* the grad buffer now holds the analytic gradient; further forwards only add to it, so it is
     * copied aside for the comparison */
    float *analytic = malloc(m.params.total * sizeof(float));
    memcpy(analytic, m.params.buf[TBUF_GRAD], m.params.total * sizeof(float));
    Tensors view = m.params;
    view.buf[TBUF_GRAD] = analytic;
    GradcheckStats st = {0};
    /* the image tower is piecewise linear (ReLU): elements whose stencil straddles a kink are
     * re-examined against the one-sided slopes (gradcheck.h) and bounded below */
    GradcheckTol tol = {.eps = 3e-4f, .rtol = 1e-2, .atol = 1e-3, .samples = 4, .skip_kinks = 1};
    Rng rng;
    rng_init(&rng, 3);
    LossCtx ctx = {&m};
    gradcheck_tensors(&st, &view, model_loss, &ctx, &tol, &rng);
    print_message("%s/%s/%s/%s: %d elements checked, %d failed, %d at kinks, worst %.3f (%s)\n", objective,
                  text_kind, head, loss_kind, st.n_checked, st.n_failed, st.n_kinks, st.worst, st.worst_name);
    assert_true(st.n_checked >= 4 * 4);
    assert_int_equal(st.n_failed, 0);
    assert_true(st.n_kinks * 10 <= st.n_checked);
    free(analytic);
    model_free(&m);
}

static void test_gradcheck_contrastive_cbow_linear(void **s) {
    (void)s;
    check_objective_gradients("contrastive", "cbow", "linear", "infonce");
}
static void test_gradcheck_contrastive_transformer_mlp(void **s) {
    (void)s;
    check_objective_gradients("contrastive", "transformer", "mlp", "infonce");
}
static void test_gradcheck_contrastive_siglip(void **s) {
    (void)s;
    check_objective_gradients("contrastive", "cbow", "linear", "siglip");
}
static void test_gradcheck_bow(void **s) {
    (void)s;
    check_objective_gradients("bow", "cbow", "linear", "infonce");
}
static void test_gradcheck_caption(void **s) {
    (void)s;
    check_objective_gradients("caption", "transformer", "linear", "infonce");
}

/* 30 AdamW steps on the shapes stream: the mean loss of the last 5 steps is clearly below the
 * first 5 for every objective. */
static void smoke_training(const char *objective, const char *text_kind) {
    Config c;
    tiny_config(&c, objective, text_kind, "linear");
    Err err;
    assert_int_equal(spec_override(&c, "train.batch_size=32", &err), 0);
    Model m;
    assert_int_equal(model_build(&m, &c, &err), 0);
    AdamWConfig adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f, .weight_decay = 0.0f};
    double first = 0, last = 0;
    for (int step = 1; step <= 30; step++) {
        dataset_fill_batch(m.ds, &m.batch, (uint64_t)(step - 1) * 32, 32);
        tensors_zero(&m.params, TBUF_GRAD);
        float loss = m.obj->ops->forward_backward(m.obj, &m.batch, comm_serial());
        assert_true(isfinite(loss));
        grad_clip_global_norm(&m.params, 1.0f);
        adamw_step(&m.params, &adam, adam.lr, step);
        if (step <= 5) first += loss / 5;
        if (step > 25) last += loss / 5;
    }
    print_message("%s: loss %.4f -> %.4f\n", objective, first, last);
    assert_true(last < 0.9 * first);
    model_free(&m);
}

static void test_smoke_training_contrastive(void **s) {
    (void)s;
    smoke_training("contrastive", "cbow");
}
static void test_smoke_training_bow(void **s) {
    (void)s;
    smoke_training("bow", "cbow");
}
static void test_smoke_training_caption(void **s) {
    (void)s;
    smoke_training("caption", "transformer");
}

/* Untrained: zero-shot colour accuracy near chance (1/8); after a short contrastive training on
 * 16 px images: far above it. */
static void test_zeroshot_untrained_near_chance_trained_far_above(void **s) {
    (void)s;
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    const char *over[] = {"train.batch_size=64", "model.image.widths=16,32", "model.text.width=32",
                          "model.embed_dim=32", "data.eval_images=256", "data.max_objects=1"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
    Model m;
    assert_int_equal(model_build(&m, &c, &err), 0);
    Metrics before, after;
    evaluate_model(&m, EVAL_ALL_TASKS, comm_serial(), &before);
    double chance = 1.0 / 8;
    double b = metrics_get(&before, "zs.colour.top1");
    AdamWConfig adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f, .weight_decay = 0.1f};
    for (int step = 1; step <= 150; step++) {
        dataset_fill_batch(m.ds, &m.batch, (uint64_t)(step - 1) * 64, 64);
        tensors_zero(&m.params, TBUF_GRAD);
        m.obj->ops->forward_backward(m.obj, &m.batch, comm_serial());
        grad_clip_global_norm(&m.params, 1.0f);
        adamw_step(&m.params, &adam, schedule_lr(step * 64.0, 640.0, 150 * 64.0, adam.lr), step);
    }
    evaluate_model(&m, EVAL_ALL_TASKS, comm_serial(), &after);
    double a = metrics_get(&after, "zs.colour.top1");
    print_message("zero-shot colour top-1: untrained %.3f, trained %.3f (chance %.3f)\n", b, a, chance);
    assert_true(fabs(b - chance) < 0.12);
    assert_true(a > 3 * chance);
    model_free(&m);
}

/* A collapsed model (lr 10, no clipping, weight decay 10) run end to end: every zero-shot task
 * scores chance (the tie rule gives constant scores exactly 1/classes), and the run is flagged
 * as never having left chance instead of reaching a target set below chance. */
static void test_collapsed_run_scores_chance_and_is_flagged(void **s) {
    (void)s;
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    const char *over[] = {"train.batch_size=32", "train.images=320", "eval.every_images=160", "eval.probe=false",
                          "train.lr=10", "train.grad_clip=0", "train.weight_decay=10", "eval.task=colour",
                          "eval.target_top1=0.05"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
    char dir[] = "/tmp/cliplab_collapse_XXXXXX";
    assert_non_null(mkdtemp(dir));
    RunOptions opt = {.results_dir = dir, .run_id = "collapsed", .swept = ""};
    RunOutcome out;
    assert_int_equal(train_run(&c, &opt, &out, &err), 0);
    int n_zs = 0;
    for (int i = 0; i < out.final.n; i++) {
        if (strncmp(out.final.names[i], "zs.", 3) || !strstr(out.final.names[i], ".top1")) continue;
        double p = out.final.chance[i], se = sqrt(p * (1 - p) / out.final.counts[i]);
        print_message("%s %.4f (chance %.4f, n %ld)\n", out.final.names[i], out.final.values[i], p, out.final.counts[i]);
        assert_true(fabs(out.final.values[i] - p) <= CHANCE_Z * se);
        n_zs++;
    }
    assert_true(n_zs >= 4);
    assert_int_equal(out.left_chance, 0);
    assert_true(isnan(out.images_to_target));
    RunInfo *runs;
    int n;
    assert_int_equal(report_scan(dir, &runs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(runs[0].warning, "never left chance"));
    double left = 1;
    int described = 0;
    for (int i = 0; i < runs[0].n_summary; i++) {
        if (!strcmp(runs[0].summary_names[i], "left_chance")) left = runs[0].summary_values[i];
        if (!strcmp(runs[0].summary_names[i], "zs.colour.top1"))
            described = runs[0].summary_counts[i] == 64 && fabs(runs[0].summary_chance[i] - 0.1) < 1e-12;
    }
    assert_true(left == 0);
    assert_true(described); /* n and chance reach the file */
    unlink(runs[0].path);
    report_free(runs, n);
    rmdir(dir);
}

static void test_images_to_reach_interpolates(void **s) {
    (void)s;
    double x[] = {0, 100, 200, 300}, y[] = {0.1, 0.3, 0.5, 0.4};
    assert_true(fabs(images_to_reach(x, y, 4, 0.4) - 150) < 1e-9);
    assert_true(fabs(images_to_reach(x, y, 4, 0.5) - 200) < 1e-9);
    assert_true(images_to_reach(x, y, 4, 0.05) == 0);
    assert_true(isnan(images_to_reach(x, y, 4, 0.6)));
}

/* /train logs whether each step's gradient was clipped, and the summary the clipped share: every
 * step at a clip far below any gradient norm, none with clipping off. */
static void test_train_logs_clipped_steps(void **s) {
    (void)s;
    char dir[] = "/tmp/cliplab_clip_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *clips[] = {"train.grad_clip=1e-6", "train.grad_clip=0"};
    for (int k = 0; k < 2; k++) {
        Config c;
        tiny_config(&c, "bow", "cbow", "linear");
        Err err;
        const char *over[] = {clips[k], "train.images=96", "train.batch_size=32", "eval.every_images=96",
                              "eval.probe=false", "train.warmup_images=0"};
        for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
        char id[16];
        snprintf(id, sizeof id, "clip%d", k);
        RunOptions opt = {.results_dir = dir, .run_id = id, .swept = ""};
        RunOutcome out;
        if (train_run(&c, &opt, &out, &err)) fail_msg("train_run: %s", err.msg);
        char path[256];
        snprintf(path, sizeof path, "%s/%s.h5", dir, id);
        double *clipped = NULL;
        assert_int_equal(report_read_series(path, "train", "clipped", &clipped), 3);
        for (int i = 0; i < 3; i++) assert_true(clipped[i] == (k == 0 ? 1.0 : 0.0));
        free(clipped);
        RunInfo *runs = NULL;
        int n = 0;
        assert_int_equal(report_scan(dir, &runs, &n, &err), 0);
        double frac = NAN;
        for (int r = 0; r < n; r++)
            for (int j = 0; j < runs[r].n_summary; j++)
                if (!strcmp(runs[r].run_id, id) && !strcmp(runs[r].summary_names[j], "clipped_fraction"))
                    frac = runs[r].summary_values[j];
        assert_true(frac == (k == 0 ? 1.0 : 0.0));
        report_free(runs, n);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* Intermediate evaluations score only eval.task (the curves need nothing else); the final one
 * retrieval and the geometry of the joint space and, with eval.all_tasks, every task. Every row has
 * the same series, created at the first evaluation (the others NaN until the final row), each
 * described with its n and chance. */
static void test_intermediate_evaluations_score_only_the_task(void **s) {
    (void)s;
    char dir[] = "/tmp/cliplab_evaltasks_XXXXXX";
    assert_non_null(mkdtemp(dir));
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    const char *over[] = {"train.images=96", "train.batch_size=32", "eval.every_images=32", "eval.probe=false",
                          "eval.task=colour"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
    RunOptions opt = {.results_dir = dir, .run_id = "tasks", .swept = ""};
    RunOutcome out;
    if (train_run(&c, &opt, &out, &err)) fail_msg("train_run: %s", err.msg);
    char path[256];
    snprintf(path, sizeof path, "%s/tasks.h5", dir);
    const char *metrics[] = {"zs.colour.top1", "zs.shape.top5", "zs.colour_shape_seen.top1", "retrieval.i2t_r1",
                             "retrieval.t2i_r5", "geom.alignment"};
    const long n_want[] = {64, 64, 64, 16, 16, 16};
    for (int k = 0; k < 6; k++) {
        double *v = NULL, chance = NAN;
        long n = 0;
        assert_int_equal(report_read_series(path, "eval", metrics[k], &v), 4); /* 0, 32, 64, 96 images */
        for (int row = 0; row < 4; row++)
            if (k == 0 || row == 3) assert_true(isfinite(v[row]) && fabs(v[row]) <= 4);
            else assert_true(isnan(v[row]));
        assert_int_equal(report_read_description(path, "eval", metrics[k], &n, &chance), 0);
        assert_int_equal(n, n_want[k]);
        if (k < 5) assert_true(chance > 0 && chance <= 0.5);
        else assert_true(isnan(chance));
        assert_true(metrics_get(&out.final, metrics[k]) == v[3]);
        free(v);
    }
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

/* The parts an evaluation leaves out change nothing it computes: eval.task's scores are bitwise
 * those of a full evaluation, and a full evaluation after a partial one is bitwise the first full
 * one (no state carries over from one evaluation to the next). */
static void test_evaluation_parts_do_not_change_each_other(void **s) {
    (void)s;
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    const char *over[] = {"eval.probe_images=27", "eval.task=shape"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
    Model m;
    assert_int_equal(model_build(&m, &c, &err), 0);
    static Metrics full, part, again;
    const int all = EVAL_PROBE | EVAL_ALL_TASKS | EVAL_RETRIEVAL;
    evaluate_model(&m, all, comm_serial(), &full);
    evaluate_model(&m, 0, comm_serial(), &part);
    evaluate_model(&m, all, comm_serial(), &again);
    assert_int_equal(part.n, full.n - 5); /* the probe: its 4 metrics and the pre-head erank */
    int n_finite = 0;
    for (int i = 0; i < part.n; i++) {
        int k = metrics_find(&full, part.names[i]);
        assert_true(k >= 0);
        assert_int_equal(part.counts[i], full.counts[k]);
        if (isnan(part.values[i])) continue;
        assert_memory_equal(&part.values[i], &full.values[k], sizeof(double));
        n_finite++;
    }
    assert_int_equal(n_finite, 2); /* zs.shape.top1, .top5 */
    assert_int_equal(again.n, full.n);
    for (int i = 0; i < full.n; i++) {
        assert_string_equal(again.names[i], full.names[i]);
        assert_memory_equal(&again.values[i], &full.values[i], sizeof(double));
    }
    model_free(&m);
}

/* eval.probe_all_taps false fits only the tapped stage and the embedding, each bitwise as when
 * every tap is probed (each fit is on its own), and logs no other tap. */
static void test_probe_of_the_head_only_equals_its_fit_among_all(void **s) {
    (void)s;
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    assert_int_equal(spec_override(&c, "eval.probe_images=90", &err), 0);
    Model m;
    assert_int_equal(model_build(&m, &c, &err), 0);
    static Metrics all, head;
    evaluate_model(&m, EVAL_PROBE, comm_serial(), &all);
    m.cfg.eval.probe_all_taps = false;
    evaluate_model(&m, EVAL_PROBE, comm_serial(), &head);
    const char *kept[] = {"probe.img.stage2", "probe.pre_head", "probe.post_head", "geom.pre_head.erank"};
    for (int k = 0; k < 4; k++) {
        double want = metrics_get(&all, kept[k]), got = metrics_get(&head, kept[k]);
        print_message("%s %.4f / %.4f\n", kept[k], want, got);
        assert_true(isfinite(want));
        assert_memory_equal(&got, &want, sizeof got);
    }
    assert_true(metrics_find(&all, "probe.img.stage1") >= 0);
    assert_int_equal(metrics_find(&head, "probe.img.stage1"), -1);
    assert_int_equal(head.n, all.n - 1);
    model_free(&m);
}

void openblas_set_num_threads(int n);

/* The probes fit one feature set per thread, each fit single-threaded: the probe metrics of a
 * model are the same at 1 and at 2 threads. (Fits split over 2 threads gave probe.post_head
 * 0.1637 here against 0.1643 at 1 thread: the widths make the BLAS products large enough.) */
static void test_probe_metrics_do_not_depend_on_threads(void **s) {
    (void)s;
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    const char *over[] = {"eval.probe_images=9000", "model.image.widths=16,64", "model.embed_dim=32"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
    Model m;
    assert_int_equal(model_build(&m, &c, &err), 0);
    Metrics one, two;
    evaluate_model(&m, EVAL_PROBE, comm_serial(), &one);
    omp_set_num_threads(2);
    openblas_set_num_threads(2);
    evaluate_model(&m, EVAL_PROBE, comm_serial(), &two);
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    int n_probe = 0;
    for (int i = 0; i < one.n; i++) {
        if (strncmp(one.names[i], "probe.", 6)) continue;
        print_message("%s %.4f / %.4f\n", one.names[i], one.values[i], metrics_get(&two, one.names[i]));
        assert_true(one.values[i] > 0 && one.values[i] == metrics_get(&two, one.names[i]));
        n_probe++;
    }
    assert_int_equal(n_probe, 4); /* img.stage1, img.stage2, post_head, pre_head */
    model_free(&m);
}

/* The loss scalars through a whole run: /train logs them every step; their learning-rate multiplier
 * (loss.scalar_lr_scale) reaches them; infonce's t starts at its bound ln 100 and, clamped after
 * each step with the gradient alive, leaves it (the old clamp in the forward gave dL/dt = 0 at the
 * bound, and t stayed). Returns the logged series `name` of a 20-step run (caller frees). */
static int scalar_run(const char *dir, const char *id, const char *loss, const char *lr_scale,
                      const char *init_temp, const char *name, double **series) {
    Config c;
    tiny_config(&c, "contrastive", "cbow", "linear");
    Err err;
    char k[64], sc[64], tt[64];
    snprintf(k, sizeof k, "loss.kind=%s", loss);
    snprintf(sc, sizeof sc, "loss.scalar_lr_scale=%s", lr_scale);
    snprintf(tt, sizeof tt, "loss.init_temperature=%s", init_temp);
    const char *over[] = {k, sc, tt, "train.images=640", "train.batch_size=32", "eval.every_images=640",
                          "eval.probe=false", "train.warmup_images=0"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(&c, over[i], &err), 0);
    RunOptions opt = {.results_dir = dir, .run_id = id, .swept = ""};
    RunOutcome out;
    if (train_run(&c, &opt, &out, &err)) fail_msg("train_run: %s", err.msg);
    char path[256];
    snprintf(path, sizeof path, "%s/%s.h5", dir, id);
    int n = report_read_series(path, "train", name, series);
    unlink(path);
    return n;
}

static void test_loss_scalars_learn_within_their_clamp(void **s) {
    (void)s;
    char dir[] = "/tmp/cliplab_scalars_XXXXXX";
    assert_non_null(mkdtemp(dir));
    double *scale = NULL, *b1 = NULL, *b50 = NULL;
    assert_int_equal(scalar_run(dir, "t_at_bound", "infonce", "50", "0.01", "logit_scale", &scale), 20);
    double lo = scale[0];
    for (int i = 0; i < 20; i++) {
        assert_true(scale[i] <= 100.0 * (1 + 1e-6));
        lo = fmin(lo, scale[i]);
    }
    print_message("infonce logit scale from the bound 100: min %.2f over 20 steps\n", lo);
    assert_true(lo < 90.0);
    assert_int_equal(scalar_run(dir, "bias1", "siglip", "1", "0.07", "logit_bias", &b1), 20);
    assert_int_equal(scalar_run(dir, "bias50", "siglip", "50", "0.07", "logit_bias", &b50), 20);
    double moved1 = fabs(b1[19] + 10.0), moved50 = fabs(b50[19] + 10.0);
    print_message("siglip bias moved %.4f (scale 1) vs %.4f (scale 50) from -10\n", moved1, moved50);
    assert_true(moved50 > 10.0 * moved1);
    free(scale);
    free(b1);
    free(b50);
    rmdir(dir);
}

int main(void) {
    /* tiny models: one thread is faster and keeps the suite quick on a loaded machine */
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_to_reach_interpolates),
        cmocka_unit_test(test_gradcheck_contrastive_cbow_linear),
        cmocka_unit_test(test_gradcheck_contrastive_transformer_mlp),
        cmocka_unit_test(test_gradcheck_contrastive_siglip),
        cmocka_unit_test(test_gradcheck_bow),
        cmocka_unit_test(test_gradcheck_caption),
        cmocka_unit_test(test_smoke_training_contrastive),
        cmocka_unit_test(test_smoke_training_bow),
        cmocka_unit_test(test_smoke_training_caption),
        cmocka_unit_test(test_zeroshot_untrained_near_chance_trained_far_above),
        cmocka_unit_test(test_collapsed_run_scores_chance_and_is_flagged),
        cmocka_unit_test(test_train_logs_clipped_steps),
        cmocka_unit_test(test_intermediate_evaluations_score_only_the_task),
        cmocka_unit_test(test_evaluation_parts_do_not_change_each_other),
        cmocka_unit_test(test_probe_of_the_head_only_equals_its_fit_among_all),
        cmocka_unit_test(test_probe_metrics_do_not_depend_on_threads),
        cmocka_unit_test(test_loss_scalars_learn_within_their_clamp),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
