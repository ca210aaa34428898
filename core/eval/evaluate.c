/* evaluate.c — the evaluation pass over a model (see evaluate.h).
 * Over ranks, each computes the images' features (zero-shot scores, probe features, retrieval
 * embeddings) for its whole chunks of max_batch images (comm_chunk_rows): every image in the
 * chunk one process computes it in, so the gathered arrays, and rank 0's metrics from them, are
 * bitwise rank 0's alone. */
#include "eval/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "eval/geometry.h"
#include "eval/probe.h"
#include "eval/rank.h"
#include "eval/retrieval.h"

int metrics_find(const Metrics *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->names[i], name)) return i;
    return -1;
}

void metrics_set(Metrics *m, const char *name, double value, long count, double chance) {
    int i = metrics_find(m, name);
    if (i < 0) {
        CHECK(m->n < METRICS_MAX, "too many metrics");
        i = m->n++;
        snprintf(m->names[i], METRIC_NAME_MAX, "%s", name);
    }
    m->values[i] = value;
    m->counts[i] = count;
    m->chance[i] = chance;
}

double metrics_get(const Metrics *m, const char *name) {
    int i = metrics_find(m, name);
    return i < 0 ? NAN : m->values[i];
}

int metrics_left_chance(const double *values, int n, long count, double chance) {
    double best = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(values[i]) && values[i] > best) best = values[i];
    CHECK(count > 0 && chance >= 0.0 && chance <= 1.0, "not an accuracy: count %ld, chance %g", count, chance);
    if (!isfinite(best)) return 0;
    return best > chance + CHANCE_Z * sqrt(chance * (1.0 - chance) / (double)count);
}

void zeroshot_accuracy(const float *scores, const int *labels, int n, int nc, double *top1, double *top5) {
    double hit1 = 0, hit5 = 0;
    for (int i = 0; i < n; i++) {
        double c1, c5;
        rank_credits(scores + (size_t)i * nc, nc, labels[i], ZEROSHOT_TOPK, &c1, &c5);
        hit1 += c1;
        hit5 += c5;
    }
    *top1 = n ? hit1 / n : 0;
    *top5 = n ? hit5 / n : 0;
}

/* This rank's rows of a set over `comm`: whole chunks, `per` rows per rank (comm_chunk_rows). */
typedef struct {
    const Comm *comm;
    int per, r0, r1;
} Share;

static Share share_of(const Comm *comm, int n, int chunk) {
    Share s = {.comm = comm};
    s.per = comm_chunk_rows(n, chunk, comm->rank, comm->size, &s.r0, &s.r1);
    return s;
}

/* Every rank's rows [size * per, d] from this rank's mine [per, d] (consumed): its first n rows
 * are the whole set in order. */
static float *share_gather(const Share *s, float *mine, int d) {
    if (s->comm->size == 1) return mine;
    float *all = mallocCheck((size_t)s->comm->size * s->per * d * sizeof(float));
    s->comm->ops->allgather(s->comm, all, mine, (size_t)s->per * d);
    free(mine);
    return all;
}

/* Features of a task's images in chunks of max_batch: per tap, pre- and post-head. */
#define FEATURE_SETS_MAX (IMAGE_TOWER_MAX_STAGES + 1) /* every tap, and the post-head embedding */
typedef struct {
    int n_sets;
    char names[FEATURE_SETS_MAX][METRIC_NAME_MAX];
    int dims[FEATURE_SETS_MAX];
    float *x[FEATURE_SETS_MAX]; /* [n, dims[k]] */
} FeatureSets;

/* The sets f has, each of rows x its width, zeroed. */
static void feature_sets_init(FeatureSets *fs, const ImageFeatures *f, int rows) {
    for (int k = 0; k < f->n_taps; k++) {
        snprintf(fs->names[k], METRIC_NAME_MAX, "%s", f->tap_names[k]);
        fs->dims[k] = f->tap_dims[k];
    }
    fs->n_sets = f->n_taps;
    if (f->post_head) {
        snprintf(fs->names[fs->n_sets], METRIC_NAME_MAX, "post_head");
        fs->dims[fs->n_sets++] = f->post_dim;
    }
    for (int k = 0; k < fs->n_sets; k++) fs->x[k] = callocCheck((size_t)rows * fs->dims[k], sizeof(float));
}

/* The features of images [n] on every rank of comm, each rank computing its share. */
static void collect_features(Model *m, const float *images, int n, const Comm *comm, FeatureSets *fs) {
    int image_floats = m->batch.R * m->batch.R * 3;
    Share s = share_of(comm, n, m->max_batch);
    memset(fs, 0, sizeof *fs);
    if (s.r0 == s.r1) { /* no rows here: one image only for the sets' widths */
        ImageFeatures f = m->obj->ops->image_features(m->obj, images, 1);
        feature_sets_init(fs, &f, s.per);
    }
    for (int i0 = s.r0; i0 < s.r1; i0 += m->max_batch) {
        int b = s.r1 - i0 < m->max_batch ? s.r1 - i0 : m->max_batch, r = i0 - s.r0;
        ImageFeatures f = m->obj->ops->image_features(m->obj, images + (size_t)i0 * image_floats, b);
        if (i0 == s.r0) feature_sets_init(fs, &f, s.per);
        for (int k = 0; k < f.n_taps; k++)
            memcpy(fs->x[k] + (size_t)r * fs->dims[k], f.taps[k], (size_t)b * fs->dims[k] * sizeof(float));
        if (f.post_head)
            memcpy(fs->x[f.n_taps] + (size_t)r * f.post_dim, f.post_head, (size_t)b * f.post_dim * sizeof(float));
    }
    for (int k = 0; k < fs->n_sets; k++) fs->x[k] = share_gather(&s, fs->x[k], fs->dims[k]);
}

static void free_features(FeatureSets *fs) {
    for (int k = 0; k < fs->n_sets; k++) free(fs->x[k]);
}

/* Linear probes on the probe set (dataset_probe_task: its own images, not the zero-shot task's):
 * PROBE_TRAIN_NINTHS/9 train, PROBE_VAL_NINTHS/9 validation (for the L2 strength), the rest test.
 * The tapped stage is the pre-head representation (SimCLR's h), post_head the embedding z.
 * Features of every tap are extracted in one pass over the images. */
#define PROBE_TRAIN_NINTHS 4
#define PROBE_VAL_NINTHS 1
/* Test accuracy [n_sets] of a probe on each feature set of fs (n rows: ntr train, nva validation,
 * the rest test). One fit per thread, the sets shared out widest (costliest) first: each fit is
 * small (n x d x classes products), so splitting one over the threads paid in fork/join and BLAS
 * packing and spun whenever the other core was busy. Inside the region the probe's loops and BLAS
 * run single-threaded, so every fit's result is the same whatever the thread count. */
static void fit_probes(const FeatureSets *fs, const ZeroShotTask *task, int ntr, int nva, float *test_acc) {
    const int nte = task->n_images - ntr - nva;
    int order[FEATURE_SETS_MAX];
    for (int k = 0; k < fs->n_sets; k++) {
        int j = k;
        for (; j > 0 && fs->dims[order[j - 1]] < fs->dims[k]; j--) order[j] = order[j - 1];
        order[j] = k;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int j = 0; j < fs->n_sets; j++) {
        const int k = order[j], d = fs->dims[k];
        const float *x = fs->x[k];
        const int *y = task->labels;
        ProbeResult r = probe_fit_eval(x, y, ntr, x + (size_t)ntr * d, y + ntr, nva, x + (size_t)(ntr + nva) * d,
                                       y + ntr + nva, nte, d, task->n_classes);
        test_acc[k] = r.test_acc;
    }
}

/* Keeps only the last tap (the tapped stage, pre-head) and post_head: the sets eval.probe_all_taps
 * false probes. The tower's forward computes every tap anyway; the fits are what cost. */
static void feature_sets_keep_head(FeatureSets *fs) {
    int post = fs->n_sets > 1 && !strcmp(fs->names[fs->n_sets - 1], "post_head"), first = fs->n_sets - 1 - post;
    if (first == 0) return;
    for (int k = 0; k < first; k++) free(fs->x[k]);
    for (int k = first; k < fs->n_sets; k++) {
        memcpy(fs->names[k - first], fs->names[k], METRIC_NAME_MAX);
        fs->dims[k - first] = fs->dims[k];
        fs->x[k - first] = fs->x[k];
    }
    fs->n_sets -= first;
}

static void evaluate_probes(Model *m, const ZeroShotTask *task, const Comm *comm, Metrics *out) {
    FeatureSets fs;
    collect_features(m, task->images, task->n_images, comm, &fs);
    if (comm->rank != 0) {
        free_features(&fs);
        return;
    }
    if (!m->cfg.eval.probe_all_taps) feature_sets_keep_head(&fs);
    int n = task->n_images, ntr = n * PROBE_TRAIN_NINTHS / 9, nva = n * PROBE_VAL_NINTHS / 9, nte = n - ntr - nva;
    float test_acc[FEATURE_SETS_MAX];
    fit_probes(&fs, task, ntr, nva, test_acc);
    for (int k = 0; k < fs.n_sets; k++) {
        char name[METRIC_NAME_MAX];
        snprintf(name, sizeof name, "probe.%s", fs.names[k]);
        metrics_set(out, name, test_acc[k], nte, 1.0 / task->n_classes);
    }
    /* the tapped stage is the pre-head representation: logged under a tap-independent name too,
     * so runs with different taps compare in one column; its effective rank shows collapse */
    int pre = fs.n_sets - 1 - (fs.n_sets > 1 && !strcmp(fs.names[fs.n_sets - 1], "post_head"));
    char name[METRIC_NAME_MAX];
    snprintf(name, sizeof name, "probe.%s", fs.names[pre]);
    metrics_set(out, "probe.pre_head", metrics_get(out, name), nte, 1.0 / task->n_classes);
    metrics_set(out, "geom.pre_head.erank", geometry_effective_rank(fs.x[pre], n, fs.dims[pre]), n, NAN);
    free_features(&fs);
}

/* Retrieval R@1/R@5 both ways and the joint space's geometry of n pairs img, txt [n, D]; NaN (with
 * the same n and chance) for an evaluation that skips retrieval (img and txt NULL). */
static void retrieval_metrics(const float *img, const float *txt, int n, int D, Metrics *out) {
    RetrievalResult r = {NAN, NAN, NAN, NAN};
    double alignment = NAN, uniformity_img = NAN, uniformity_txt = NAN, erank = NAN;
    if (img) {
        r = retrieval_eval(img, txt, n, D);
        alignment = geometry_alignment(img, txt, n, D);
        uniformity_img = geometry_uniformity(img, n, D);
        uniformity_txt = geometry_uniformity(txt, n, D);
        erank = geometry_effective_rank(img, n, D);
    }
    const double chance1 = 1.0 / n, chance5 = fmin(1.0, (double)RETRIEVAL_TOPK / n);
    metrics_set(out, "retrieval.i2t_r1", r.i2t_r1, n, chance1);
    metrics_set(out, "retrieval.i2t_r5", r.i2t_r5, n, chance5);
    metrics_set(out, "retrieval.t2i_r1", r.t2i_r1, n, chance1);
    metrics_set(out, "retrieval.t2i_r5", r.t2i_r5, n, chance5);
    metrics_set(out, "geom.alignment", alignment, n, NAN);
    metrics_set(out, "geom.uniformity_img", uniformity_img, n, NAN);
    metrics_set(out, "geom.uniformity_txt", uniformity_txt, n, NAN);
    metrics_set(out, "geom.post_head.erank", erank, n, NAN);
}

/* Retrieval and joint-space geometry on a fixed held-out set of image–caption pairs. */
static void evaluate_retrieval(Model *m, const Comm *comm, Metrics *out) {
    int n = m->cfg.eval.retrieval_n;
    Batch pairs = {0};
    batch_alloc(&pairs, m->ds, n);
    dataset_eval_pairs(m->ds, &pairs, n, 0);
    int image_floats = pairs.R * pairs.R * 3;
    Share s = share_of(comm, n, m->max_batch);
    /* the joint space's width (one image, on a rank with no rows, only for it) */
    int D = s.r0 < s.r1 ? 0 : m->obj->ops->image_features(m->obj, pairs.images, 1).post_dim;
    float *img = NULL, *txt = NULL;
    for (int i0 = s.r0; i0 < s.r1; i0 += m->max_batch) {
        int b = s.r1 - i0 < m->max_batch ? s.r1 - i0 : m->max_batch, r = i0 - s.r0;
        ImageFeatures f = m->obj->ops->image_features(m->obj, pairs.images + (size_t)i0 * image_floats, b);
        D = f.post_dim;
        if (!img) img = callocCheck((size_t)s.per * D, sizeof(float));
        memcpy(img + (size_t)r * D, f.post_head, (size_t)b * D * sizeof(float));
        const float *t = m->obj->ops->text_embeddings(m->obj, pairs.tokens + (size_t)i0 * pairs.T, pairs.lengths + i0, b);
        if (!txt) txt = callocCheck((size_t)s.per * D, sizeof(float));
        memcpy(txt + (size_t)r * D, t, (size_t)b * D * sizeof(float));
    }
    if (!img) img = callocCheck((size_t)s.per * D, sizeof(float));
    if (!txt) txt = callocCheck((size_t)s.per * D, sizeof(float));
    img = share_gather(&s, img, D);
    txt = share_gather(&s, txt, D);
    if (comm->rank == 0) retrieval_metrics(img, txt, n, D, out);
    free(img);
    free(txt);
    batch_free(&pairs);
}

/* zs.<task>[.<rule>].top1/.top5 of one scoring rule (rule NULL: the objective's own); NaN for a
 * task this evaluation skips (scores NULL), so every evaluation has the same metrics. */
static void set_zeroshot_metrics(Metrics *out, const ZeroShotTask *task, const char *rule, const float *scores) {
    const int nc = task->n_classes, n_img = task->n_images;
    double top1 = NAN, top5 = NAN;
    if (scores) zeroshot_accuracy(scores, task->labels, n_img, nc, &top1, &top5);
    char name[METRIC_NAME_MAX], rule_name[8] = ""; /* ".pmi": short rule names fit the metric name */
    if (rule) snprintf(rule_name, sizeof rule_name, ".%s", rule);
    snprintf(name, sizeof name, "zs.%.31s%.7s.top1", task->name, rule_name);
    metrics_set(out, name, top1, n_img, 1.0 / nc);
    snprintf(name, sizeof name, "zs.%.31s%.7s.top5", task->name, rule_name);
    metrics_set(out, name, top5, n_img, fmin(1.0, (double)ZEROSHOT_TOPK / nc));
}

/* A task's scores (ObjectiveOps.zeroshot_scores) on rank 0, NULL on the others: over ranks split
 * by whole chunks of images, unless the objective has a second rule (the caption model's pmi
 * subtracts the whole set's mean prefix, so its rows are not independent): then rank 0 alone. */
static float *task_scores(Model *m, const ZeroShotTask *task, const Comm *comm) {
    const char *second = m->obj->ops->zeroshot_second_rule;
    if (second || comm->size == 1) {
        float *scores = comm->rank ? NULL : mallocCheck((second ? 2 : 1) * (size_t)task->n_images * task->n_classes * sizeof(float));
        if (scores) m->obj->ops->zeroshot_scores(m->obj, task, scores);
        return scores;
    }
    Share s = share_of(comm, task->n_images, m->max_batch);
    ZeroShotTask mine = *task;
    mine.images += (size_t)s.r0 * m->batch.R * m->batch.R * 3;
    mine.labels += s.r0;
    mine.n_images = s.r1 - s.r0;
    float *scores = callocCheck((size_t)s.per * task->n_classes, sizeof(float));
    if (mine.n_images) m->obj->ops->zeroshot_scores(m->obj, &mine, scores);
    scores = share_gather(&s, scores, task->n_classes);
    if (comm->rank == 0) return scores;
    free(scores);
    return NULL;
}

void evaluate_model(Model *m, int parts, const Comm *comm, Metrics *out) {
    out->n = 0;
    int n_tasks = 0;
    const ZeroShotTask *tasks = dataset_zeroshot_tasks(m->ds, &n_tasks);
    const char *second = m->obj->ops->zeroshot_second_rule;
    for (int t = 0; t < n_tasks; t++) {
        const ZeroShotTask *task = &tasks[t];
        size_t n_scores = (size_t)task->n_images * task->n_classes;
        int scored = (parts & EVAL_ALL_TASKS) || !strcmp(task->name, m->cfg.eval.task);
        float *scores = scored ? task_scores(m, task, comm) : NULL;
        if (comm->rank != 0) continue; /* the metrics are rank 0's */
        set_zeroshot_metrics(out, task, NULL, scores);
        if (second) set_zeroshot_metrics(out, task, second, scores ? scores + n_scores : NULL);
        free(scores);
    }
    if (parts & EVAL_PROBE) {
        const ZeroShotTask *probe = dataset_probe_task(m->ds, m->cfg.eval.probe_task, m->cfg.eval.probe_images);
        CHECK(probe, "no zero-shot task '%s'", m->cfg.eval.probe_task); /* model_build checked the name */
        evaluate_probes(m, probe, comm, out);
    }
    if (!m->obj->ops->text_embeddings) return;
    if (parts & EVAL_RETRIEVAL) evaluate_retrieval(m, comm, out);
    else if (comm->rank == 0) retrieval_metrics(NULL, NULL, m->cfg.eval.retrieval_n, 0, out);
}
