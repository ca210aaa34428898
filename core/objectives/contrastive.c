/* contrastive.c — the CLIP objective: image and text towers, a head on each side, L2
 * normalisation into the joint space and a contrastive loss (losses/) between the two sides.
 * Zero-shot: cosine between an image and each class's mean (over templates) normalised prompt
 * embedding.
 * Data parallel over a Comm of W ranks: each rank embeds its own rows, the embeddings are
 * all-gathered into the global batch, the loss computes this rank's share of it (losses/' local
 * split) and the embedding gradients are reduce-scattered back to the rows' owners (DESIGN.md,
 * Scale-out). With one process the gather and scatter are skipped: the same code as always.
 * Deliberately left out: overlapping the gathers with the towers' compute.
 */
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "heads/head.h"
#include "losses/losses.h"
#include "objective.h"
#include "objectives/shared.h"
#include "ops/ops.h"
#include "towers/text_tower.h"

extern const ObjectiveOps objective_contrastive_ops; /* defined at the end; listed in registry.c */

typedef struct {
    Objective base;
    ImageTower *img;
    TextTower *txt;
    Head *img_head, *txt_head;
    LossConfig loss;
    int max_batch, D, n_scalars;
    int T, image_floats;         /* token context; floats per image */
    float *scalars, *dscalars;   /* params: loss scalars (t, b) [n_scalars] */
    float *img_emb, *txt_emb;    /* acts: normalised embeddings [max_batch, D] */
    float *dimg_emb, *dtxt_emb;  /* their gradients [max_batch, D] */
    float *img_norm, *txt_norm;  /* [max_batch] saved norms */
    float *dimg_head, *dtxt_head;/* head-output gradients [max_batch, D] */
    float *dimg_feat, *dtxt_feat;/* tower-output gradients [max_batch, img dim / txt dim] */
    float *workspace;            /* loss workspace (own allocation: its size depends on the tile) */
    /* data parallel only (own allocation, sized at the first step of a W > 1 run): the gathered
     * embeddings, their gradients [W * max_batch, D] each, and the global batch's loss workspace */
    float *g_img, *g_txt, *g_dimg, *g_dtxt, *g_workspace;
    int g_rows;
    float *class_emb;            /* zero-shot class embeddings [n_classes, D], sized on use */
    int class_emb_cap;
} Contrastive;

/* Also frees a partly built objective (create's error path): every part may still be NULL. */
static void contrastive_free(Objective *o) {
    Contrastive *c = (Contrastive *)o;
    image_tower_free(c->img);
    text_tower_free(c->txt);
    head_free(c->img_head);
    head_free(c->txt_head);
    free(c->workspace);
    free(c->g_img), free(c->g_txt), free(c->g_dimg), free(c->g_dtxt), free(c->g_workspace);
    free(c->class_emb);
    free(c);
}

static Objective *contrastive_create(ObjectiveSections cfg, const Dataset *ds, int max_batch, Tensors *params,
                                     Tensors *acts, Err *err) {
    Contrastive *c = callocCheck(1, sizeof *c);
    c->max_batch = max_batch;
    c->D = cfg.model->embed_dim;
    objective_data_dims(ds, &c->T, &c->image_floats);
    if (objective_validate_loss(cfg, max_batch, &c->loss, err)) goto fail;
    c->img = objective_image_tower(&cfg.model->image, ds, max_batch, params, acts, err);
    if (!c->img) goto fail;
    c->txt = objective_text_tower(&cfg.model->text, ds, max_batch, params, acts, err);
    if (!c->txt) goto fail;
    const HeadConfig *hc = &cfg.model->head;
    c->img_head = head_create(hc, "img.head", image_tower_dim(c->img), c->D, max_batch, params, acts, err);
    if (!c->img_head) goto fail;
    c->txt_head = head_create(hc, "txt.head", c->txt->dim, c->D, max_batch, params, acts, err);
    if (!c->txt_head) goto fail;
    c->n_scalars = loss_n_scalars(c->loss.kind);
    if (c->n_scalars > 0) {
        int k = tensors_add1(params, "loss.scalars", c->n_scalars, TENSOR_NO_DECAY, &c->scalars, &c->dscalars);
        params->info[k].lr_scale = (float)cfg.loss->scalar_lr_scale;
    }
    tensors_add2(acts, "contrastive.img_emb", max_batch, c->D, 0, &c->img_emb, &c->dimg_emb);
    tensors_add2(acts, "contrastive.txt_emb", max_batch, c->D, 0, &c->txt_emb, &c->dtxt_emb);
    tensors_add1(acts, "contrastive.img_norm", max_batch, 0, &c->img_norm, NULL);
    tensors_add1(acts, "contrastive.txt_norm", max_batch, 0, &c->txt_norm, NULL);
    tensors_add2(acts, "contrastive.dimg_head", max_batch, c->D, 0, &c->dimg_head, NULL);
    tensors_add2(acts, "contrastive.dtxt_head", max_batch, c->D, 0, &c->dtxt_head, NULL);
    tensors_add2(acts, "contrastive.dimg_feat", max_batch, image_tower_dim(c->img), 0, &c->dimg_feat, NULL);
    tensors_add2(acts, "contrastive.dtxt_feat", max_batch, c->txt->dim, 0, &c->dtxt_feat, NULL);
    c->workspace = mallocCheck(loss_workspace_floats(&c->loss, max_batch, c->D) * sizeof(float) + 64);
    c->base.ops = &objective_contrastive_ops;
    return &c->base;
fail:
    contrastive_free(&c->base); /* what was built before the failing part */
    return NULL;
}

static int contrastive_validate(ObjectiveSections cfg, int batch, Err *err) {
    LossConfig loss;
    return objective_validate_loss(cfg, batch, &loss, err);
}

static size_t contrastive_workspace_bytes(ObjectiveSections cfg, int max_batch) {
    LossConfig loss;
    Err err;
    if (objective_loss_config(cfg.loss, max_batch, &loss, &err)) return 0;
    return loss_workspace_floats(&loss, max_batch, cfg.model->embed_dim) * sizeof(float);
}

static void contrastive_init(Objective *o, Rng *rng) {
    Contrastive *c = (Contrastive *)o;
    image_tower_init(c->img, rng);
    text_tower_init(c->txt, rng);
    c->img_head->ops->init(c->img_head, rng);
    c->txt_head->ops->init(c->txt_head, rng);
    if (c->n_scalars > 0) loss_init_scalars(&c->loss, c->scalars);
}

/* Embeddings of images / captions into the joint space (normalised rows). */
static const float *contrastive_embed_images(Contrastive *c, const float *images, int B) {
    const float *feat = image_tower_forward(c->img, images, B);
    const float *h = c->img_head->ops->forward(c->img_head, feat, B);
    ops_l2norm_forward(c->img_emb, c->img_norm, h, B, c->D, OPS_L2NORM_EPS);
    return c->img_emb;
}

static const float *contrastive_embed_texts(Objective *o, const int *tokens, const int *lengths, int B) {
    Contrastive *c = (Contrastive *)o;
    const float *feat = text_tower_forward(c->txt, tokens, lengths, B);
    const float *h = c->txt_head->ops->forward(c->txt_head, feat, B);
    ops_l2norm_forward(c->txt_emb, c->txt_norm, h, B, c->D, OPS_L2NORM_EPS);
    return c->txt_emb;
}

/* The global batch's buffers of a W-rank run (N = W * max_batch rows), allocated once. */
static void contrastive_size_gathered(Contrastive *c, int N) {
    if (c->g_rows >= N) return;
    /* loss.tile 0 chose for this rank's rows; the loss runs over the gathered N, as one process's */
    if (c->loss.tile == 0) c->loss.tile = loss_auto_tile(N);
    size_t nd = (size_t)N * c->D * sizeof(float);
    float **bufs[] = {&c->g_img, &c->g_txt, &c->g_dimg, &c->g_dtxt};
    for (int i = 0; i < 4; i++) *bufs[i] = reallocCheck(*bufs[i], nd);
    free(c->g_workspace);
    c->g_workspace = mallocCheck(loss_workspace_floats(&c->loss, N, c->D) * sizeof(float) + 64);
    c->g_rows = N;
}

/* The loss of the global batch whose rows [r0, r0 + B) are this rank's embeddings: gathers the
 * embeddings, computes this rank's share, and leaves the gradient of this rank's rows in
 * c->dimg_emb, c->dtxt_emb [B, D]. */
static float contrastive_loss_share(Contrastive *c, int B, const Comm *comm) {
    int D = c->D, N = B * comm->size, r0 = B * comm->rank;
    float *img = c->img_emb, *txt = c->txt_emb, *dimg = c->dimg_emb, *dtxt = c->dtxt_emb, *ws = c->workspace;
    if (comm->size > 1) {
        contrastive_size_gathered(c, N);
        comm->ops->allgather(comm, c->g_img, c->img_emb, (size_t)B * D);
        comm->ops->allgather(comm, c->g_txt, c->txt_emb, (size_t)B * D);
        img = c->g_img, txt = c->g_txt, dimg = c->g_dimg, dtxt = c->g_dtxt, ws = c->g_workspace;
    }
    memset(dimg, 0, (size_t)N * D * sizeof(float));
    memset(dtxt, 0, (size_t)N * D * sizeof(float));
    float loss = loss_local_forward_backward(&c->loss, dimg, dtxt, c->n_scalars ? c->dscalars : NULL, img, txt,
                                             c->scalars, N, D, r0, r0 + B, ws);
    if (comm->size > 1) {
        comm->ops->reduce_scatter(comm, c->dimg_emb, dimg, (size_t)B * D);
        comm->ops->reduce_scatter(comm, c->dtxt_emb, dtxt, (size_t)B * D);
    }
    return loss;
}

static float contrastive_forward_backward(Objective *o, const Batch *b, const Comm *comm) {
    Contrastive *c = (Contrastive *)o;
    int B = b->B, D = c->D;
    contrastive_embed_images(c, b->images, B);
    contrastive_embed_texts(o, b->tokens, b->lengths, B);
    size_t nd = (size_t)B * D;
    float loss = contrastive_loss_share(c, B, comm);
    /* backward: normalisation, head, tower — the forward reversed, image side then text side */
    memset(c->dimg_head, 0, nd * sizeof(float));
    ops_l2norm_backward(c->dimg_head, c->dimg_emb, c->img_emb, c->img_norm, B, D, OPS_L2NORM_EPS);
    memset(c->dimg_feat, 0, (size_t)B * image_tower_dim(c->img) * sizeof(float));
    c->img_head->ops->backward(c->img_head, c->dimg_feat, c->dimg_head, B);
    image_tower_backward(c->img, c->dimg_feat, B);

    memset(c->dtxt_head, 0, nd * sizeof(float));
    ops_l2norm_backward(c->dtxt_head, c->dtxt_emb, c->txt_emb, c->txt_norm, B, D, OPS_L2NORM_EPS);
    memset(c->dtxt_feat, 0, (size_t)B * c->txt->dim * sizeof(float));
    c->txt_head->ops->backward(c->txt_head, c->dtxt_feat, c->dtxt_head, B);
    text_tower_backward(c->txt, c->dtxt_feat, B);
    return loss;
}

static void contrastive_zeroshot_scores(Objective *o, const ZeroShotTask *task, float *scores) {
    Contrastive *c = (Contrastive *)o;
    int D = c->D, nc = task->n_classes, nt = task->n_templates;
    if (c->class_emb_cap < nc) {
        c->class_emb = reallocCheck(c->class_emb, (size_t)nc * D * sizeof(float));
        c->class_emb_cap = nc;
    }
    /* class embedding = normalised mean over templates of normalised prompt embeddings (CLIP) */
    memset(c->class_emb, 0, (size_t)nc * D * sizeof(float));
    int n_prompts = nc * nt;
    for (int p0 = 0; p0 < n_prompts; p0 += c->max_batch) {
        int n = n_prompts - p0 < c->max_batch ? n_prompts - p0 : c->max_batch;
        const float *e = contrastive_embed_texts(o, task->prompt_tokens + (size_t)p0 * c->T,
                                                 task->prompt_lengths + p0, n);
        for (int i = 0; i < n; i++) {
            float *dst = c->class_emb + (size_t)((p0 + i) / nt) * D;
            for (int d = 0; d < D; d++) dst[d] += e[(size_t)i * D + d];
        }
    }
    objective_normalize_rows(c->class_emb, nc, D);
    for (int i0 = 0; i0 < task->n_images; i0 += c->max_batch) {
        int n = task->n_images - i0 < c->max_batch ? task->n_images - i0 : c->max_batch;
        const float *e = contrastive_embed_images(c, task->images + (size_t)i0 * c->image_floats, n);
        objective_dot_scores(scores + (size_t)i0 * nc, e, c->class_emb, n, nc, D);
    }
}

static ImageFeatures contrastive_image_features(Objective *o, const float *images, int n) {
    Contrastive *c = (Contrastive *)o;
    const float *emb = contrastive_embed_images(c, images, n);
    ImageFeatures f = objective_tap_features(c->img);
    f.post_head = emb;
    f.post_dim = c->D;
    return f;
}

static int contrastive_log_scalars(const Objective *o, const char **names, float *values, int cap) {
    const Contrastive *c = (const Contrastive *)o;
    return loss_log_scalars(&c->loss, c->scalars, names, values, cap);
}

static void contrastive_post_step(Objective *o) {
    Contrastive *c = (Contrastive *)o;
    if (c->n_scalars > 0) loss_clamp_scalars(&c->loss, c->scalars);
}

/* Over W > 1 ranks the loss computes each rank's share of the gathered batch (losses/' local
 * split); a loss without one (align_uniform: its uniformity term spans every pair) cannot. */
static int contrastive_check_ranks(const Objective *o, int ranks, Err *err) {
    const Contrastive *c = (const Contrastive *)o;
    if (ranks > 1 && c->loss.group_size > 0)
        return err_set(err, "loss.group_size %d has no per-rank share of the gathered batch, so it cannot train over %d "
                            "ranks: run it in one process", c->loss.group_size, ranks);
    if (ranks == 1 || loss_has_local(c->loss.kind)) return 0;
    return err_set(err, "loss %s has no per-rank share (its terms span every pair of the batch), so it cannot train "
                        "over %d ranks: run it in one process", loss_registry_name(c->loss.kind), ranks);
}

const ObjectiveOps objective_contrastive_ops = {
    .name = "contrastive",
    .validate = contrastive_validate,
    .workspace_bytes = contrastive_workspace_bytes,
    .create = contrastive_create,
    .init = contrastive_init,
    .forward_backward = contrastive_forward_backward,
    .zeroshot_scores = contrastive_zeroshot_scores,
    .image_features = contrastive_image_features,
    .text_embeddings = contrastive_embed_texts,
    .log_scalars = contrastive_log_scalars,
    .post_step = contrastive_post_step,
    .check_ranks = contrastive_check_ranks,
    .free = contrastive_free,
};
