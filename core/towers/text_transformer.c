/* text_transformer.c — the "transformer" text tower: transformer.h, features at the EOS token.
 * Deliberately left out: pooling over all positions (CLIP reads the EOT token only). */
#include <stdlib.h>
#include <string.h>

#include "towers/build.h"
#include "towers/text_tower.h"
#include "towers/transformer.h"

extern const TextTowerOps text_tower_transformer_ops; /* defined at the end; listed in text_tower.c */

#define TEXT_TAP_STEM "txt.block"

typedef struct {
    TextTower base;
    Transformer *tr;
    int T, C;
    float *feat;    /* [B, C] final-LN hidden at EOS */
    float *dhidden; /* [B, T, C] dfeat scattered to the EOS positions, zero elsewhere */
    const int *lengths;
    BuildActs acts;
} TextTransformer;

static TextTower *text_transformer_create(const TextTowerConfig *cfg, TextTowerDims dims, int max_batch,
                                          Tensors *params, Tensors *acts, Err *err) {
    if (text_tower_check_sizes(cfg, dims, err)) return NULL;
    const char *tap = cfg->tap;
    if (cfg->layers < 1) return err_set(err, "text tower: layers must be >= 1, got %d", cfg->layers), NULL;
    if (cfg->heads < 1 || cfg->width % cfg->heads)
        return err_set(err, "text tower: width %d must be a multiple of heads %d", cfg->width, cfg->heads), NULL;
    int built = tap[0] ? build_parse_numbered(tap, TEXT_TAP_STEM, cfg->layers) : cfg->layers;
    if (!built) {
        char valid[ERR_MSG_MAX / 2];
        build_numbered_list(valid, sizeof valid, TEXT_TAP_STEM, cfg->layers);
        build_err_unknown(err, "tap", tap, valid);
        return NULL;
    }
    TextTransformer *t = callocCheck(1, sizeof *t);
    t->base = (TextTower){&text_tower_transformer_ops, cfg->width};
    t->T = dims.context;
    t->C = cfg->width;
    TransformerConfig tc = {dims.vocab, dims.context, cfg->width, cfg->layers, cfg->heads, 0, built};
    t->tr = transformer_create(&tc, "txt", max_batch, params, acts);
    build_acts_init(&t->acts, acts, max_batch);
    build_act(&t->acts, &t->feat, NULL, (size_t)t->C, "txt.eos");
    build_act(&t->acts, &t->dhidden, NULL, (size_t)t->T * t->C, "txt.dhidden");
    return &t->base;
}

static void text_transformer_init(TextTower *base, Rng *rng) {
    transformer_init(((TextTransformer *)base)->tr, rng);
}

static const float *text_transformer_forward(TextTower *base, const int *tokens, const int *lengths, int B) {
    TextTransformer *t = (TextTransformer *)base;
    const float *hidden = transformer_forward(t->tr, NULL, tokens, B);
    t->lengths = lengths;
    for (int b = 0; b < B; b++) {
        CHECK(lengths[b] >= 1 && lengths[b] <= t->T, "length %d of sample %d, context %d", lengths[b], b, t->T);
        memcpy(t->feat + (size_t)b * t->C, hidden + ((size_t)b * t->T + lengths[b] - 1) * t->C, t->C * sizeof(float));
    }
    return t->feat;
}

static void text_transformer_backward(TextTower *base, const float *dfeat, int B) {
    TextTransformer *t = (TextTransformer *)base;
    memset(t->dhidden, 0, (size_t)B * t->T * t->C * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(t->dhidden + ((size_t)b * t->T + t->lengths[b] - 1) * t->C, dfeat + (size_t)b * t->C,
               t->C * sizeof(float));
    transformer_backward(t->tr, NULL, t->dhidden, B);
}

static void text_transformer_free(TextTower *base) {
    TextTransformer *t = (TextTransformer *)base;
    transformer_free(t->tr);
    build_acts_free(&t->acts);
    free(t);
}

const TextTowerOps text_tower_transformer_ops = {
    .name = "transformer",
    .create = text_transformer_create,
    .init = text_transformer_init,
    .forward = text_transformer_forward,
    .backward = text_transformer_backward,
    .free = text_transformer_free,
};
