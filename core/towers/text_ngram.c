/* text_ngram.c — the "ngram" text tower: a bag of unigrams and hashed bigrams (fastText, Joulin et
 * al. 2017), then a linear layer width -> width with bias.
 *
 * The caption's n = lengths[b] tokens (BOS and EOS included, as cbow) give n unigrams and n - 1
 * bigrams (t_s, t_s+1). A unigram's embedding is row t of "txt.wte" [vocab, width]; a bigram's is
 * row NGRAM_BUCKET(a, b) of "txt.bigram" [NGRAM_BUCKETS, width]. The features are the mean of the
 * 2n - 1 embeddings through "txt.proj". Unlike cbow, word order reaches the features ("red circle
 * blue square" and "blue circle red square" differ), at the cost of hash collisions between
 * bigrams (a few percent of the grammar's pairs with 4096 buckets).
 * Hyper-parameters: model.text.width; no taps ("" only). Deliberately left out: n > 2, IDF
 * weighting, a bucket count key.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ops/ops.h"
#include "towers/build.h"
#include "towers/text_tower.h"

extern const TextTowerOps text_tower_ngram_ops; /* defined at the end; listed in text_tower.c */

#define NGRAM_BUCKETS 4096 /* rows of the bigram table */
/* The bucket of bigram (a, b): a multiplicative hash of the pair (documented: tests recompute it). */
#define NGRAM_BUCKET(a, b) ((int)((((uint32_t)(a) * 0x9E3779B1u) ^ ((uint32_t)(b) * 0x85EBCA77u)) % NGRAM_BUCKETS))

typedef struct {
    TextTower base;
    int V, T, C;
    float *wte, *bigram, *projw, *projb; /* wte [V, C], bigram [NGRAM_BUCKETS, C], projw [C, C], projb [C] */
    float *dwte, *dbigram, *dprojw, *dprojb;
    float *mean, *dmean, *out;           /* [B, C] */
    const int *tokens, *lengths;
    BuildActs acts;
} TextNgram;

static TextTower *text_ngram_create(const TextTowerConfig *cfg, TextTowerDims dims, int max_batch, Tensors *params,
                                    Tensors *acts, Err *err) {
    if (text_tower_check_sizes(cfg, dims, err)) return NULL;
    if (cfg->tap[0]) return build_err_unknown(err, "tap", cfg->tap, "\"\" (ngram has a single layer)"), NULL;
    TextNgram *t = callocCheck(1, sizeof *t);
    t->base = (TextTower){&text_tower_ngram_ops, cfg->width};
    t->V = dims.vocab;
    t->T = dims.context;
    t->C = cfg->width;
    build_param(params, &t->wte, &t->dwte, 0, 2, (int[]){t->V, t->C}, "txt.wte");
    build_param(params, &t->bigram, &t->dbigram, 0, 2, (int[]){NGRAM_BUCKETS, t->C}, "txt.bigram");
    build_param(params, &t->projw, &t->dprojw, 0, 2, (int[]){t->C, t->C}, "txt.proj.weight");
    build_param(params, &t->projb, &t->dprojb, TENSOR_NO_DECAY, 1, &t->C, "txt.proj.bias");
    build_acts_init(&t->acts, acts, max_batch);
    build_act(&t->acts, &t->mean, &t->dmean, (size_t)t->C, "txt.mean");
    build_act(&t->acts, &t->out, NULL, (size_t)t->C, "txt.out");
    return &t->base;
}

/* Embeddings N(0, 0.02) as cbow's; the linear layer N(0, 1/C) keeps the scale. */
static void text_ngram_init(TextTower *base, Rng *rng) {
    TextNgram *t = (TextNgram *)base;
    rng_fill_normal(rng, t->wte, (long)t->V * t->C, BUILD_INIT_STD);
    rng_fill_normal(rng, t->bigram, (long)NGRAM_BUCKETS * t->C, BUILD_INIT_STD);
    rng_fill_normal(rng, t->projw, (long)t->C * t->C, 1.0f / sqrtf((float)t->C));
    build_fill_const(t->projb, (size_t)t->C, 0.0f);
}

/* The embedding row of n-gram k of caption `tok` (n tokens): unigrams k < n, then bigrams. */
static float *ngram_row(float *wte, float *bigram, const int *tok, int n, int k, int C) {
    if (k < n) return wte + (size_t)tok[k] * C;
    k -= n;
    return bigram + (size_t)NGRAM_BUCKET(tok[k], tok[k + 1]) * C;
}

/* tokens [B, T], lengths [B] -> features [B, C] */
static const float *text_ngram_forward(TextTower *base, const int *tokens, const int *lengths, int B) {
    TextNgram *t = (TextNgram *)base;
    CHECK(B > 0 && B <= t->acts.max_batch, "batch %d, max %d", B, t->acts.max_batch);
    t->tokens = tokens;
    t->lengths = lengths;
    int C = t->C;
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        int n = lengths[b];
        const int *tok = tokens + (size_t)b * t->T;
        CHECK(n >= 1 && n <= t->T, "length %d of sample %d, context %d", n, b, t->T);
        for (int s = 0; s < n; s++) CHECK(tok[s] >= 0 && tok[s] < t->V, "token %d outside vocab %d", tok[s], t->V);
        float *m = t->mean + (size_t)b * C;
        for (int c = 0; c < C; c++) m[c] = 0.0f;
        for (int k = 0; k < 2 * n - 1; k++) {
            const float *e = ngram_row(t->wte, t->bigram, tok, n, k, C);
            for (int c = 0; c < C; c++) m[c] += e[c];
        }
        for (int c = 0; c < C; c++) m[c] /= (float)(2 * n - 1);
    }
    ops_linear_forward(t->out, t->mean, t->projw, t->projb, B, C, C);
    return t->out;
}

/* dfeat [B, C] -> parameter grads += */
static void text_ngram_backward(TextTower *base, const float *dfeat, int B) {
    TextNgram *t = (TextNgram *)base;
    int C = t->C;
    build_acts_zero_grads(&t->acts, B);
    ops_linear_backward(t->dmean, t->dprojw, t->dprojb, dfeat, t->mean, t->projw, B, C, C);
    /* serial: samples share embedding rows, so a parallel scatter would race */
    for (int b = 0; b < B; b++) {
        int n = t->lengths[b];
        const int *tok = t->tokens + (size_t)b * t->T;
        const float *dm = t->dmean + (size_t)b * C;
        for (int k = 0; k < 2 * n - 1; k++) {
            float *de = ngram_row(t->dwte, t->dbigram, tok, n, k, C);
            for (int c = 0; c < C; c++) de[c] += dm[c] / (float)(2 * n - 1);
        }
    }
}

static void text_ngram_free(TextTower *base) {
    TextNgram *t = (TextNgram *)base;
    build_acts_free(&t->acts);
    free(t);
}

const TextTowerOps text_tower_ngram_ops = {
    .name = "ngram",
    .create = text_ngram_create,
    .init = text_ngram_init,
    .forward = text_ngram_forward,
    .backward = text_ngram_backward,
    .free = text_ngram_free,
};
