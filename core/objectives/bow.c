/* bow.c — bag-of-words prediction (CLIP Fig. 2's middle arm; VirTex-style token classification):
 * image tower -> linear -> softmax over the vocabulary, cross-entropy against the caption's
 * unique content words with mass 1/K each. Zero-shot score of class c = mean over templates of
 * the mean log-probability of prompt_c's content words.
 * Deliberately left out: word-frequency reweighting.
 */
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "objective.h"
#include "objectives/shared.h"
#include "ops/ops.h"
#include "towers/build.h"

extern const ObjectiveOps objective_bow_ops; /* defined at the end; listed in registry.c */

typedef struct {
    Objective base;
    ImageTower *img;
    int max_batch, V, F, T, image_floats;
    float *w, *dw, *bias, *dbias; /* params: classifier [V, F], [V] */
    float *logits, *dlogits;      /* acts [max_batch, V] */
    float *probs;                 /* acts [max_batch, V] */
    float *losses, *dlosses;      /* acts [max_batch] */
    float *dfeat;                 /* acts [max_batch, F] */
    float *class_bow;             /* [n_classes, V] template-averaged prompt word targets */
    int class_bow_cap;
} Bow;

static Objective *bow_create(ObjectiveSections cfg, const Dataset *ds, int max_batch, Tensors *params,
                             Tensors *acts, Err *err) {
    Bow *b = callocCheck(1, sizeof *b);
    b->max_batch = max_batch;
    b->V = dataset_vocab_size(ds);
    objective_data_dims(ds, &b->T, &b->image_floats);
    b->img = objective_image_tower(&cfg.model->image, ds, max_batch, params, acts, err);
    if (!b->img) {
        free(b);
        return NULL;
    }
    b->F = image_tower_dim(b->img);
    tensors_add2(params, "bow.classifier.weight", b->V, b->F, 0, &b->w, &b->dw);
    tensors_add1(params, "bow.classifier.bias", b->V, TENSOR_NO_DECAY, &b->bias, &b->dbias);
    tensors_add2(acts, "bow.logits", max_batch, b->V, 0, &b->logits, &b->dlogits);
    tensors_add2(acts, "bow.probs", max_batch, b->V, 0, &b->probs, NULL);
    tensors_add1(acts, "bow.losses", max_batch, 0, &b->losses, &b->dlosses);
    tensors_add2(acts, "bow.dfeat", max_batch, b->F, 0, &b->dfeat, NULL);
    b->base.ops = &objective_bow_ops;
    return &b->base;
}

static void bow_init(Objective *o, Rng *rng) {
    Bow *b = (Bow *)o;
    image_tower_init(b->img, rng);
    rng_fill_normal(rng, b->w, (long)b->V * b->F, BUILD_INIT_STD);
    memset(b->bias, 0, (size_t)b->V * sizeof(float));
}

static const float *bow_logits(Bow *b, const float *images, int B) {
    const float *feat = image_tower_forward(b->img, images, B);
    ops_linear_forward(b->logits, feat, b->w, b->bias, B, b->F, b->V);
    return feat;
}

static float bow_forward_backward(Objective *o, const Batch *batch, const Comm *comm) {
    Bow *b = (Bow *)o;
    int B = batch->B, N = B * comm->size; /* this rank's rows, the global batch's */
    const float *feat = bow_logits(b, batch->images, B);
    ops_softmax_xent_soft_forward(b->losses, b->probs, b->logits, batch->bow, B, b->V);
    double loss = 0;
    for (int i = 0; i < B; i++) {
        loss += b->losses[i];
        b->dlosses[i] = 1.0f / (float)N; /* loss = mean over the global batch */
    }
    memset(b->dlogits, 0, (size_t)B * b->V * sizeof(float));
    ops_softmax_xent_soft_backward(b->dlogits, b->dlosses, b->probs, batch->bow, B, b->V);
    memset(b->dfeat, 0, (size_t)B * b->F * sizeof(float));
    ops_linear_backward(b->dfeat, b->dw, b->dbias, b->dlogits, feat, b->w, B, b->F, b->V);
    image_tower_backward(b->img, b->dfeat, B);
    return (float)(loss / N);
}

static void bow_zeroshot_scores(Objective *o, const ZeroShotTask *task, float *scores) {
    Bow *b = (Bow *)o;
    int nc = task->n_classes, nt = task->n_templates, V = b->V;
    if (b->class_bow_cap < nc) {
        b->class_bow = reallocCheck(b->class_bow, (size_t)nc * V * sizeof(float));
        b->class_bow_cap = nc;
    }
    /* mean over templates of (mean over the prompt's content words of log p(word)) is linear in
     * log p, so it is log p dotted with the template-averaged word distribution */
    memset(b->class_bow, 0, (size_t)nc * V * sizeof(float));
    for (int p = 0; p < nc * nt; p++)
        for (int v = 0; v < V; v++) b->class_bow[(size_t)(p / nt) * V + v] += task->prompt_bow[(size_t)p * V + v] / nt;
    for (int i0 = 0; i0 < task->n_images; i0 += b->max_batch) {
        int n = task->n_images - i0 < b->max_batch ? task->n_images - i0 : b->max_batch;
        bow_logits(b, task->images + (size_t)i0 * b->image_floats, n);
        objective_log_softmax_rows(b->logits, n, V);
        objective_dot_scores(scores + (size_t)i0 * nc, b->logits, b->class_bow, n, nc, V);
    }
}

static ImageFeatures bow_image_features(Objective *o, const float *images, int n) {
    return objective_tower_features(((Bow *)o)->img, images, n);
}

static void bow_free(Objective *o) {
    Bow *b = (Bow *)o;
    image_tower_free(b->img);
    free(b->class_bow);
    free(b);
}

const ObjectiveOps objective_bow_ops = {
    .name = "bow",
    .create = bow_create,
    .init = bow_init,
    .forward_backward = bow_forward_backward,
    .zeroshot_scores = bow_zeroshot_scores,
    .image_features = bow_image_features,
    .text_embeddings = NULL,
    .log_scalars = NULL,
    .free = bow_free,
};
