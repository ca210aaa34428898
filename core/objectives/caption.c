/* caption.c — the image-conditioned caption language model (CLIP Fig. 2's slowest arm):
 * image tower -> linear -> P prefix vectors, a causal transformer decoder over [prefix, caption],
 * teacher-forced next-token cross-entropy (padding ignored).
 * Zero-shot: the model is asked about the sentences its own caption grammar writes (the task's
 * generative sentences, data.h). Class c scores log sum_k p(sentence_k | image) over the sentences
 * naming c: a marginal over the templates and over the attributes c does not name (shape "circle"
 * sums over "a photo of a <colour> circle." for every colour), so templates the model never saw
 * weigh nothing. A second rule, "pmi", subtracts each class's score under the mean image prefix of
 * the task (what the model would say of no image in particular), removing the class prior.
 * Scoring decodes each image's sentences as one prefix tree (transformer_forest_forward): the image
 * prefix and every shared word are computed once, and only the differing continuations are added.
 * Deliberately left out: cross-attention decoders, beam search, sampling.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "objective.h"
#include "objectives/shared.h"
#include "ops/ops.h"
#include "towers/build.h"
#include "towers/transformer.h"

extern const ObjectiveOps objective_caption_ops; /* defined at the end; listed in registry.c */

/* The prefix tree of a task's generative sentences: node = a distinct token prefix whose hidden
 * state predicts a next token (every sentence's tokens but its last). */
typedef struct {
    int n_nodes;
    int *token, *parent; /* [n_nodes]: last token of the node's prefix; parent node or -1 */
    int *path;           /* [n_gen, T-1]: node of each predicting position of sentence k, -1 past its end */
    int *child, *sibling; /* first child, next sibling [n_nodes]: building lookups only */
} SentenceTree;

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
    SentenceTree tree;             /* zero-shot: the prefix tree of zs_task's sentences */
    const ZeroShotTask *zs_task;
    float *zs_work;                /* zero-shot forest buffers, sized on use (zs_work_floats) */
    size_t zs_work_floats;
} Caption;

static Objective *caption_create(ObjectiveSections cfg, const Dataset *ds, int max_batch, Tensors *params,
                                 Tensors *acts, Err *err) {
    Caption *c = callocCheck(1, sizeof *c);
    c->max_batch = max_batch;
    c->V = dataset_vocab_size(ds);
    objective_data_dims(ds, &c->T, &c->image_floats);
    c->P = cfg.objective->prefix_tokens;
    c->C = cfg.model->text.width;
    c->img = objective_image_tower(&cfg.model->image, ds, max_batch, params, acts, err);
    if (!c->img) {
        free(c);
        return NULL;
    }
    c->F = image_tower_dim(c->img);
    TransformerConfig tc = {.vocab = c->V, .context = c->T, .width = c->C, .layers = cfg.model->text.layers,
                            .heads = cfg.model->text.heads, .n_prefix = c->P,
                            .n_blocks_built = cfg.model->text.layers};
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
    rng_fill_normal(rng, c->pw, (long)c->P * c->C * c->F, BUILD_INIT_STD);
    memset(c->pb, 0, (size_t)c->P * c->C * sizeof(float));
    rng_fill_normal(rng, c->lm, (long)c->V * c->C, BUILD_INIT_STD);
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

static float caption_forward_backward(Objective *o, const Batch *batch, const Comm *comm) {
    Caption *c = (Caption *)o;
    int B = batch->B, T = c->T, P = c->P, C = c->C, Tm = T - 1, PC = P * C;
    const float *feat = image_tower_forward(c->img, batch->images, B);
    ops_linear_forward(c->prefix, feat, c->pw, c->pb, B, c->F, PC);
    /* the loss is the mean over the global batch's predicted tokens: their count is summed over ranks */
    double count = caption_decode(c, batch->tokens, batch->lengths, B);
    comm->ops->allreduce_f64(comm, &count, 1);
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

/* Forest rows per decoder call when scoring: enough rows for efficient products, few enough that
 * the [rows, V] logits stay a few MB. */
#define ZS_FOREST_ROWS 4096

static void tree_free(SentenceTree *st) {
    free(st->token);
    free(st->parent);
    free(st->path);
    free(st->child);
    free(st->sibling);
    memset(st, 0, sizeof *st);
}

/* The node continuing `parent` (-1: a root) with token, added if new; *first_root heads the roots. */
static int tree_child(SentenceTree *st, int *cap, int *first_root, int parent, int token) {
    for (int n = parent < 0 ? *first_root : st->child[parent]; n >= 0; n = st->sibling[n])
        if (st->token[n] == token) return n;
    if (st->n_nodes == *cap) {
        *cap *= 2;
        st->token = reallocCheck(st->token, (size_t)*cap * sizeof(int));
        st->parent = reallocCheck(st->parent, (size_t)*cap * sizeof(int));
        st->child = reallocCheck(st->child, (size_t)*cap * sizeof(int));
        st->sibling = reallocCheck(st->sibling, (size_t)*cap * sizeof(int));
    }
    int n = st->n_nodes++;
    int *head = parent < 0 ? first_root : &st->child[parent];
    st->token[n] = token;
    st->parent[n] = parent;
    st->child[n] = -1;
    st->sibling[n] = *head;
    *head = n;
    return n;
}

static void tree_build(SentenceTree *st, const ZeroShotTask *task, int T) {
    tree_free(st);
    int cap = 64, first_root = -1, Tm = T - 1;
    st->token = mallocCheck((size_t)cap * sizeof(int));
    st->parent = mallocCheck((size_t)cap * sizeof(int));
    st->child = mallocCheck((size_t)cap * sizeof(int));
    st->sibling = mallocCheck((size_t)cap * sizeof(int));
    st->path = mallocCheck((size_t)task->n_gen * Tm * sizeof(int));
    for (int k = 0; k < task->n_gen; k++) {
        const int *tok = task->gen_tokens + (size_t)k * T;
        for (int t = 0, node = -1; t < Tm; t++) {
            if (t < task->gen_lengths[k] - 1) node = tree_child(st, &cap, &first_root, node, tok[t]);
            st->path[(size_t)k * Tm + t] = t < task->gen_lengths[k] - 1 ? node : -1;
        }
    }
}

/* Buffers of one forest call over G images of rpi rows each (N = G * rpi), carved from zs_work:
 * prefix rows, hidden states, logits [N, V], log-sum-exps [N], the decoder's work; token and
 * parent [N] after them as ints (same size as floats). */
typedef struct {
    float *prefix, *hidden, *logits, *lse, *work;
    int *token, *parent;
} ForestBufs;

static ForestBufs forest_bufs(Caption *c, int N) {
    size_t NC = (size_t)N * c->C, NV = (size_t)N * c->V, nw = transformer_forest_work_floats(c->dec, N);
    size_t need = 2 * NC + NV + (size_t)N + nw + 2 * (size_t)N;
    _Static_assert(sizeof(int) == sizeof(float), "ints share the float buffer");
    if (c->zs_work_floats < need) {
        c->zs_work = reallocCheck(c->zs_work, need * sizeof(float));
        c->zs_work_floats = need;
    }
    ForestBufs b;
    b.prefix = c->zs_work;
    b.hidden = b.prefix + NC;
    b.logits = b.hidden + NC;
    b.lse = b.logits + NV;
    b.work = b.lse + N;
    b.token = (int *)(b.work + nw);
    b.parent = b.token + N;
    return b;
}

/* out [n, n_gen] = log p(sentence k | image i) for the n image prefixes [n, P*C], by the forest
 * decode: per image, P prefix rows then one row per tree node. */
static void tree_logprobs(Caption *c, const ZeroShotTask *task, const float *prefixes, int n, float *out) {
    const SentenceTree *st = &c->tree;
    int P = c->P, C = c->C, V = c->V, T = c->T, Tm = T - 1, rpi = P + st->n_nodes;
    int G = ZS_FOREST_ROWS / rpi > 1 ? ZS_FOREST_ROWS / rpi : 1;
    if (G > n) G = n;
    ForestBufs b = forest_bufs(c, G * rpi);
    for (int g = 0; g < G; g++) {
        int base = g * rpi;
        for (int j = 0; j < P; j++) {
            b.token[base + j] = -1;
            b.parent[base + j] = j > 0 ? base + j - 1 : -1;
        }
        for (int nd = 0; nd < st->n_nodes; nd++) {
            int up = st->parent[nd] >= 0 ? P + st->parent[nd] : P - 1;
            b.token[base + P + nd] = st->token[nd];
            b.parent[base + P + nd] = up >= 0 ? base + up : -1;
        }
    }
    for (int i0 = 0; i0 < n; i0 += G) {
        int m = n - i0 < G ? n - i0 : G, N = m * rpi;
        for (int g = 0; g < m; g++)
            memcpy(b.prefix + (size_t)g * rpi * C, prefixes + (size_t)(i0 + g) * P * C, (size_t)P * C * sizeof(float));
        transformer_forest_forward(c->dec, b.hidden, b.work, b.prefix, b.token, b.parent, N);
        ops_linear_forward(b.logits, b.hidden, c->lm, NULL, N, C, V);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < N; r++) b.lse[r] = ops_logsumexp_row(b.logits + (size_t)r * V, V);
        for (int g = 0; g < m; g++)
            for (int k = 0; k < task->n_gen; k++) {
                const int *tok = task->gen_tokens + (size_t)k * T, *path = st->path + (size_t)k * Tm;
                double nll = 0; /* summed as the full decode sums its per-token losses */
                for (int t = 0; t < Tm && path[t] >= 0; t++) {
                    size_t r = (size_t)g * rpi + P + path[t];
                    nll += b.lse[r] - b.logits[r * V + tok[t + 1]];
                }
                out[(size_t)(i0 + g) * task->n_gen + k] = (float)-nll;
            }
    }
}

/* The reference for tree_logprobs: every (image, sentence) pair decoded on its own. */
static void full_logprobs(Caption *c, const ZeroShotTask *task, const float *prefixes, int n, float *out) {
    int T = c->T, Tm = T - 1, PC = c->P * c->C, ng = task->n_gen;
    long n_pairs = (long)n * ng;
    for (long q0 = 0; q0 < n_pairs; q0 += c->max_batch) {
        int m = n_pairs - q0 < c->max_batch ? (int)(n_pairs - q0) : c->max_batch;
        for (int r = 0; r < m; r++) {
            long q = q0 + r;
            memcpy(c->prefix + (size_t)r * PC, prefixes + (size_t)(q / ng) * PC, (size_t)PC * sizeof(float));
            memcpy(c->zs_tokens + (size_t)r * T, task->gen_tokens + (size_t)(q % ng) * T, (size_t)T * sizeof(int));
            c->zs_lengths[r] = task->gen_lengths[q % ng];
        }
        caption_decode(c, c->zs_tokens, c->zs_lengths, m);
        for (int r = 0; r < m; r++) {
            double nll = 0;
            for (int t = 0; t < Tm; t++) nll += c->losses[r * Tm + t];
            out[q0 + r] = (float)-nll;
        }
    }
}

/* Prefixes [n, P*C] of the task's first n images into c->zs_prefix; the tree built for the task. */
static void zs_prepare(Caption *c, const ZeroShotTask *task, int n) {
    int PC = c->P * c->C;
    if (c->zs_prefix_cap < n + 1) { /* + 1: room for the mean prefix */
        c->zs_prefix = reallocCheck(c->zs_prefix, (size_t)(n + 1) * PC * sizeof(float));
        c->zs_prefix_cap = n + 1;
    }
    for (int i0 = 0; i0 < n; i0 += c->max_batch) {
        int m = n - i0 < c->max_batch ? n - i0 : c->max_batch;
        const float *feat = image_tower_forward(c->img, task->images + (size_t)i0 * c->image_floats, m);
        ops_linear_forward(c->zs_prefix + (size_t)i0 * PC, feat, c->pw, c->pb, m, c->F, PC);
    }
    if (c->zs_task != task) {
        tree_build(&c->tree, task, c->T);
        c->zs_task = task;
    }
}

void objective_caption_sentence_logprobs(Objective *o, const ZeroShotTask *task, int n_images, int reference,
                                         float *out) {
    CHECK(o->ops == &objective_caption_ops, "sentence log-probabilities of a '%s' objective", o->ops->name);
    CHECK(n_images >= 1 && n_images <= task->n_images, "%d of %d images", n_images, task->n_images);
    Caption *c = (Caption *)o;
    zs_prepare(c, task, n_images);
    (reference ? full_logprobs : tree_logprobs)(c, task, c->zs_prefix, n_images, out);
}

/* scores [n, nc]: per class, log-sum-exp of logp [n, n_gen] over the sentences naming it. */
static void class_marginals(float *scores, const float *logp, const ZeroShotTask *task, int n) {
    int nc = task->n_classes, ng = task->n_gen;
    for (int i = 0; i < n; i++) {
        const float *lp = logp + (size_t)i * ng;
        float *sc = scores + (size_t)i * nc;
        for (int cl = 0; cl < nc; cl++) sc[cl] = -INFINITY;
        for (int k = 0; k < ng; k++) sc[task->gen_class[k]] = fmaxf(sc[task->gen_class[k]], lp[k]);
        double sum[nc];
        for (int cl = 0; cl < nc; cl++) sum[cl] = 0;
        for (int k = 0; k < ng; k++) sum[task->gen_class[k]] += exp((double)lp[k] - sc[task->gen_class[k]]);
        for (int cl = 0; cl < nc; cl++) sc[cl] += (float)log(sum[cl]); /* -inf stays for a class with no sentence */
    }
}

/* scores [2, n_images, nc]: the marginal rule, then pmi = marginal - marginal under the mean prefix. */
static void caption_zeroshot_scores(Objective *o, const ZeroShotTask *task, float *scores) {
    Caption *c = (Caption *)o;
    int ni = task->n_images, nc = task->n_classes, ng = task->n_gen, PC = c->P * c->C;
    zs_prepare(c, task, ni);
    float *logp = mallocCheck((size_t)ni * ng * sizeof(float)), *mean = c->zs_prefix + (size_t)ni * PC;
    tree_logprobs(c, task, c->zs_prefix, ni, logp);
    class_marginals(scores, logp, task, ni);
    for (int j = 0; j < PC; j++) {
        double s = 0;
        for (int i = 0; i < ni; i++) s += c->zs_prefix[(size_t)i * PC + j];
        mean[j] = (float)(s / ni);
    }
    float null_scores[nc];
    tree_logprobs(c, task, mean, 1, logp);
    class_marginals(null_scores, logp, task, 1);
    float *pmi = scores + (size_t)ni * nc;
    for (int i = 0; i < ni; i++)
        for (int cl = 0; cl < nc; cl++) pmi[(size_t)i * nc + cl] = scores[(size_t)i * nc + cl] - null_scores[cl];
    free(logp);
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
    free(c->zs_work);
    tree_free(&c->tree);
    free(c);
}

const ObjectiveOps objective_caption_ops = {
    .name = "caption",
    .create = caption_create,
    .init = caption_init,
    .forward_backward = caption_forward_backward,
    .zeroshot_scores = caption_zeroshot_scores,
    .zeroshot_second_rule = "pmi",
    .image_features = caption_image_features,
    .text_embeddings = NULL,
    .log_scalars = NULL,
    .free = caption_free,
};
