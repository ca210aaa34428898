/* caption.c — the image-conditioned caption language model (CLIP Fig. 2's slowest arm):
 * image tower -> linear -> P prefix vectors, a causal transformer decoder over [prefix, caption],
 * teacher-forced next-token cross-entropy (padding ignored). Zero-shot score of class c = mean over
 * templates of the length-normalised log-likelihood of prompt_c given the image.
 * Deliberately left out: cross-attention decoders, beam search, sampling.
 */
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "objective.h"
#include "objectives/shared.h"
#include "ops/ops.h"
#include "towers/transformer.h"

typedef struct {
    Objective base;
    ImageTower *img;
    Transformer *dec;
    int max_batch, V, F, T, P, C, image_floats;
    float *pw, *dpw, *pb, *dpb;    /* params: prefix projection [P*C, F], [P*C] */
    float *lm, *dlm;               /* params: LM head [V, C] (no bias) */
    float *prefix, *dprefix;       /* acts [max_batch, P*C] */
    float *hid, *dhid;             /* acts: gathered token hiddens [max_batch*(T-1), C] */
    float *dhidden_full;           /* acts [max_batch, P+T, C] */
    float *logits, *dlogits, *probs; /* acts [max_batch*(T-1), V] */
    float *losses, *dlosses;       /* acts [max_batch*(T-1)] */
    float *dfeat;                  /* acts [max_batch, F] */
    int *targets;                  /* [max_batch*(T-1)] next token or -1 */
    int *zs_tokens, *zs_lengths;   /* zero-shot pair batches [max_batch, T], [max_batch] */
    float *zs_prefix;              /* zero-shot: prefixes of a task's images [n_images, P*C], on use */
    int zs_prefix_cap;
} Caption;

static Objective *caption_create(const Config *cfg, const Dataset *ds, int max_batch, Tensors *params,
                                 Tensors *acts, Err *err) {
    Caption *c = callocCheck(1, sizeof *c);
    c->max_batch = max_batch;
    c->V = dataset_vocab_size(ds);
    objective_data_dims(ds, &c->T, &c->image_floats);
    c->P = cfg->objective.prefix_tokens;
    c->C = cfg->model.text.width;
    c->img = objective_image_tower(cfg, max_batch, params, acts, err);
    if (!c->img) {
        free(c);
        return NULL;
    }
    c->F = image_tower_dim(c->img);
    TransformerConfig tc = {.vocab = c->V, .context = c->T, .width = c->C, .layers = cfg->model.text.layers,
                            .heads = cfg->model.text.heads, .n_prefix = c->P,
                            .n_blocks_built = cfg->model.text.layers};
    if (c->C % tc.heads) {
        err_set(err, "model.text.width (%d) must be a multiple of model.text.heads (%d)", c->C, tc.heads);
        image_tower_free(c->img);
        free(c);
        return NULL;
    }
    c->dec = transformer_create(&tc, "dec", max_batch, params, acts);
    int PC = c->P * c->C, R = max_batch * (c->T - 1);
    tensors_add2(params, "dec.prefix_proj.weight", PC, c->F, 0, &c->pw, &c->dpw);
    tensors_add1(params, "dec.prefix_proj.bias", PC, TENSOR_NO_DECAY, &c->pb, &c->dpb);
    tensors_add2(params, "dec.lm_head.weight", c->V, c->C, 0, &c->lm, &c->dlm);
    tensors_add2(acts, "caption.prefix", max_batch, PC, 0, &c->prefix, &c->dprefix);
    tensors_add2(acts, "caption.hid", R, c->C, 0, &c->hid, &c->dhid);
    tensors_add2(acts, "caption.dhidden_full", max_batch, (c->P + c->T) * c->C, 0, &c->dhidden_full, NULL);
    tensors_add2(acts, "caption.logits", R, c->V, 0, &c->logits, &c->dlogits);
    tensors_add2(acts, "caption.probs", R, c->V, 0, &c->probs, NULL);
    tensors_add1(acts, "caption.losses", R, 0, &c->losses, &c->dlosses);
    tensors_add2(acts, "caption.dfeat", max_batch, c->F, 0, &c->dfeat, NULL);
    c->targets = mallocCheck((size_t)R * sizeof(int));
    c->zs_tokens = mallocCheck((size_t)max_batch * c->T * sizeof(int));
    c->zs_lengths = mallocCheck((size_t)max_batch * sizeof(int));
    c->base.ops = &objective_caption_ops;
    return &c->base;
}

static void caption_init(Objective *o, Rng *rng) {
    Caption *c = (Caption *)o;
    image_tower_init(c->img, rng);
    transformer_init(c->dec, rng);
    rng_fill_normal(rng, c->pw, (long)c->P * c->C * c->F, 0.02f);
    memset(c->pb, 0, (size_t)c->P * c->C * sizeof(float));
    rng_fill_normal(rng, c->lm, (long)c->V * c->C, 0.02f);
}

/* Decoder forward on B rows whose prefixes are in c->prefix: logits of every next-token position
 * and the per-position CE into c->losses (targets -1 past each caption's end). Returns the number
 * of predicted tokens. */
static int caption_decode(Caption *c, const int *tokens, const int *lengths, int B) {
    int T = c->T, P = c->P, C = c->C, Tm = T - 1, count = 0;
    const float *hidden = transformer_forward(c->dec, c->prefix, tokens, B);
    for (int b = 0; b < B; b++) {
        /* position P+t (token t) predicts token t+1 */
        memcpy(c->hid + (size_t)b * Tm * C, hidden + ((size_t)b * (P + T) + P) * C, (size_t)Tm * C * sizeof(float));
        for (int t = 0; t < Tm; t++) {
            int valid = t + 1 < lengths[b];
            c->targets[b * Tm + t] = valid ? tokens[b * T + t + 1] : -1;
            count += valid;
        }
    }
    ops_linear_forward(c->logits, c->hid, c->lm, NULL, B * Tm, C, c->V);
    ops_softmax_xent_forward(c->losses, c->probs, c->logits, c->targets, B * Tm, c->V);
    return count;
}

static float caption_forward_backward(Objective *o, const Batch *batch) {
    Caption *c = (Caption *)o;
    int B = batch->B, T = c->T, P = c->P, C = c->C, Tm = T - 1, PC = P * C;
    const float *feat = image_tower_forward(c->img, batch->images, B);
    ops_linear_forward(c->prefix, feat, c->pw, c->pb, B, c->F, PC);
    int count = caption_decode(c, batch->tokens, batch->lengths, B);
    double loss = 0;
    for (int r = 0; r < B * Tm; r++) {
        loss += c->losses[r]; /* ignored positions contribute 0 */
        c->dlosses[r] = 1.0f / (float)(count > 0 ? count : 1);
    }
    /* backward: CE, LM head, scatter into the decoder's hidden grid, decoder, prefix projection */
    memset(c->dlogits, 0, (size_t)B * Tm * c->V * sizeof(float));
    ops_softmax_xent_backward(c->dlogits, c->dlosses, c->probs, c->targets, B * Tm, c->V);
    memset(c->dhid, 0, (size_t)B * Tm * C * sizeof(float));
    ops_linear_backward(c->dhid, c->dlm, NULL, c->dlogits, c->hid, c->lm, B * Tm, C, c->V);
    memset(c->dhidden_full, 0, (size_t)B * (P + T) * C * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(c->dhidden_full + ((size_t)b * (P + T) + P) * C, c->dhid + (size_t)b * Tm * C,
               (size_t)Tm * C * sizeof(float));
    memset(c->dprefix, 0, (size_t)B * PC * sizeof(float));
    transformer_backward(c->dec, c->dprefix, c->dhidden_full, B);
    memset(c->dfeat, 0, (size_t)B * c->F * sizeof(float));
    ops_linear_backward(c->dfeat, c->dpw, c->dpb, c->dprefix, feat, c->pw, B, c->F, PC);
    image_tower_backward(c->img, c->dfeat, B);
    return (float)(loss / (count > 0 ? count : 1));
}

/* Zero-shot: every (image, prompt) pair is decoded; rows of a decoder batch are pairs. */
static void caption_zeroshot_scores(Objective *o, const ZeroShotTask *task, float *scores) {
    Caption *c = (Caption *)o;
    int nc = task->n_classes, nt = task->n_templates, np = nc * nt, T = c->T, Tm = T - 1, PC = c->P * c->C;
    int ni = task->n_images;
    if (c->zs_prefix_cap < ni) {
        c->zs_prefix = reallocCheck(c->zs_prefix, (size_t)ni * PC * sizeof(float));
        c->zs_prefix_cap = ni;
    }
    for (int i0 = 0; i0 < ni; i0 += c->max_batch) {
        int n = ni - i0 < c->max_batch ? ni - i0 : c->max_batch;
        const float *feat = image_tower_forward(c->img, task->images + (size_t)i0 * c->image_floats, n);
        ops_linear_forward(c->zs_prefix + (size_t)i0 * PC, feat, c->pw, c->pb, n, c->F, PC);
    }
    memset(scores, 0, (size_t)ni * nc * sizeof(float));
    long n_pairs = (long)ni * np;
    for (long q0 = 0; q0 < n_pairs; q0 += c->max_batch) {
        int n = n_pairs - q0 < c->max_batch ? (int)(n_pairs - q0) : c->max_batch;
        for (int r = 0; r < n; r++) {
            long q = q0 + r;
            int i = (int)(q / np), p = (int)(q % np);
            memcpy(c->prefix + (size_t)r * PC, c->zs_prefix + (size_t)i * PC, (size_t)PC * sizeof(float));
            memcpy(c->zs_tokens + (size_t)r * T, task->prompt_tokens + (size_t)p * T, (size_t)T * sizeof(int));
            c->zs_lengths[r] = task->prompt_lengths[p];
        }
        caption_decode(c, c->zs_tokens, c->zs_lengths, n);
        for (int r = 0; r < n; r++) {
            long q = q0 + r;
            int i = (int)(q / np), p = (int)(q % np);
            double nll = 0;
            for (int t = 0; t < Tm; t++) nll += c->losses[r * Tm + t];
            int len = c->zs_lengths[r] - 1 > 0 ? c->zs_lengths[r] - 1 : 1;
            scores[(size_t)i * nc + p / nt] += (float)(-nll / len / nt);
        }
    }
}

static ImageFeatures caption_image_features(Objective *o, const float *images, int n) {
    return objective_tower_features(((Caption *)o)->img, images, n);
}

static void caption_free(Objective *o) {
    Caption *c = (Caption *)o;
    image_tower_free(c->img);
    transformer_free(c->dec);
    free(c->targets);
    free(c->zs_tokens);
    free(c->zs_lengths);
    free(c->zs_prefix);
    free(c);
}

const ObjectiveOps objective_caption_ops = {
    .name = "caption",
    .create = caption_create,
    .init = caption_init,
    .forward_backward = caption_forward_backward,
    .zeroshot_scores = caption_zeroshot_scores,
    .image_features = caption_image_features,
    .text_embeddings = NULL,
    .log_scalars = NULL,
    .free = caption_free,
};
