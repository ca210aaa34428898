/* text_cbow.c — the "cbow" text tower: masked mean of word embeddings, then linear (width -> width).
 *
 * CLIP's Fig. 2 contrastive arm used a CBOW text encoder. The mean runs over t < lengths[b], BOS
 * and EOS included (see text_tower.h); PAD positions never contribute, whatever their id.
 * Deliberately left out: positions, IDF weighting, n-grams.
 */
#include <math.h>
#include <stdlib.h>

#include "ops/ops.h"
#include "towers/build.h"
#include "towers/text_tower.h"

extern const TextTowerOps text_tower_cbow_ops; /* defined at the end; listed in text_tower.c */

typedef struct {
    TextTower base;
    int V, T, C;
    float *wte, *projw, *projb;    /* wte [V, C], projw [C, C], projb [C] */
    float *dwte, *dprojw, *dprojb;
    float *mean, *dmean, *out;     /* [B, C] */
    const int *tokens, *lengths;
    BuildActs acts;
} TextCbow;

static TextTower *text_cbow_create(const TextTowerConfig *cfg, TextTowerDims dims, int max_batch, Tensors *params,
                                   Tensors *acts, Err *err) {
    if (text_tower_check_sizes(cfg, dims, err)) return NULL;
    if (cfg->tap[0]) return build_err_unknown(err, "tap", cfg->tap, "\"\" (cbow has a single layer)"), NULL;
    TextCbow *t = callocCheck(1, sizeof *t);
    t->base = (TextTower){&text_tower_cbow_ops, cfg->width};
    t->V = dims.vocab;
    t->T = dims.context;
    t->C = cfg->width;
    build_param(params, &t->wte, &t->dwte, 0, 2, (int[]){t->V, t->C}, "txt.wte");
    build_param(params, &t->projw, &t->dprojw, 0, 2, (int[]){t->C, t->C}, "txt.proj.weight");
    build_param(params, &t->projb, &t->dprojb, TENSOR_NO_DECAY, 1, &t->C, "txt.proj.bias");
    build_acts_init(&t->acts, acts, max_batch);
    build_act(&t->acts, &t->mean, &t->dmean, (size_t)t->C, "txt.mean");
    build_act(&t->acts, &t->out, NULL, (size_t)t->C, "txt.out");
    return &t->base;
}

/* Embeddings N(0, 0.02) as the transformer's; the linear layer N(0, 1/C) keeps the scale. */
static void text_cbow_init(TextTower *base, Rng *rng) {
    TextCbow *t = (TextCbow *)base;
    rng_fill_normal(rng, t->wte, (long)t->V * t->C, BUILD_INIT_STD);
    rng_fill_normal(rng, t->projw, (long)t->C * t->C, 1.0f / sqrtf((float)t->C));
    build_fill_const(t->projb, (size_t)t->C, 0.0f);
}

static const float *text_cbow_forward(TextTower *base, const int *tokens, const int *lengths, int B) {
    TextCbow *t = (TextCbow *)base;
    CHECK(B > 0 && B <= t->acts.max_batch, "batch %d, max %d", B, t->acts.max_batch);
    t->tokens = tokens;
    t->lengths = lengths;
    int C = t->C;
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        int n = lengths[b];
        CHECK(n >= 1 && n <= t->T, "length %d of sample %d, context %d", n, b, t->T);
        float *m = t->mean + (size_t)b * C;
        for (int c = 0; c < C; c++) m[c] = 0.0f;
        for (int s = 0; s < n; s++) {
            int id = tokens[(size_t)b * t->T + s];
            CHECK(id >= 0 && id < t->V, "token %d outside vocab %d", id, t->V);
            const float *e = t->wte + (size_t)id * C;
            for (int c = 0; c < C; c++) m[c] += e[c];
        }
        for (int c = 0; c < C; c++) m[c] /= (float)n;
    }
    ops_linear_forward(t->out, t->mean, t->projw, t->projb, B, C, C);
    return t->out;
}

static void text_cbow_backward(TextTower *base, const float *dfeat, int B) {
    TextCbow *t = (TextCbow *)base;
    int C = t->C;
    build_acts_zero_grads(&t->acts, B);
    ops_linear_backward(t->dmean, t->dprojw, t->dprojb, dfeat, t->mean, t->projw, B, C, C);
    /* serial: samples share embedding rows, so a parallel scatter would race */
    for (int b = 0; b < B; b++) {
        int n = t->lengths[b];
        const float *dm = t->dmean + (size_t)b * C;
        for (int s = 0; s < n; s++) {
            float *de = t->dwte + (size_t)t->tokens[(size_t)b * t->T + s] * C;
            for (int c = 0; c < C; c++) de[c] += dm[c] / (float)n;
        }
    }
}

static void text_cbow_free(TextTower *base) {
    TextCbow *t = (TextCbow *)base;
    build_acts_free(&t->acts);
    free(t);
}

const TextTowerOps text_tower_cbow_ops = {
    .name = "cbow",
    .create = text_cbow_create,
    .init = text_cbow_init,
    .forward = text_cbow_forward,
    .backward = text_cbow_backward,
    .free = text_cbow_free,
};
