/* gated.c — the "gated" head: a gated linear unit (GLU) MLP, out = W2 (act(W1 h + b1) * (V h + c)).
 *
 * Shazeer 2020 ("GLU Variants Improve Transformer"): with act = relu this is ReGLU, with gelu
 * GEGLU. One gated hidden layer of width `hidden` (model.head.hidden); depth must be 2, the number
 * of linear maps from the representation to the embedding, as for the mlp head. The output layer
 * has no bias (the L2 normalisation that follows makes it a direction shift, as in the mlp head).
 * Parameters "<prefix>.fc1.weight/.bias" (value branch), "<prefix>.gate.weight/.bias" and
 * "<prefix>.fc2.weight".
 * Init: W1 N(0, gain^2 / in) with gain sqrt(2) before a ReLU (1 otherwise), V N(0, 1 / in), W2
 * N(0, 1 / hidden), biases 0.
 * Deliberately left out: deeper stacks of gated layers, norms, dropout.
 */
#include <math.h>
#include <stdlib.h>

#include "heads/head.h"
#include "ops/ops.h"
#include "towers/build.h"

extern const HeadOps head_gated_ops; /* defined at the end; listed in head.c */

#define GATED_DEPTH 2 /* linear maps from the representation to the embedding */

typedef struct {
    Head base;
    int hidden, activation;
    float *w1, *b1, *v, *c, *w2;      /* w1, v [hidden, in]; b1, c [hidden]; w2 [out, hidden] */
    float *dw1, *db1, *dv, *dc, *dw2;
    float *pre, *act, *gate, *prod;    /* [B, hidden]: W1 h + b1, act(pre), V h + c, act * gate */
    float *dpre, *dact, *dgate, *dprod;
    float *out;                        /* [B, out] */
    const float *input;
    BuildActs acts;
} GatedHead;

static int gated_check(const HeadConfig *cfg, int in_dim, int out_dim, Err *err) {
    (void)in_dim, (void)out_dim;
    if (cfg->depth != GATED_DEPTH)
        return err_set(err, "gated head: depth must be %d (one gated hidden layer), got %d", GATED_DEPTH, cfg->depth);
    if (cfg->hidden < 1) return err_set(err, "gated head: hidden must be >= 1, got %d", cfg->hidden);
    return head_activation(cfg, err) < 0 ? -1 : 0;
}

static Head *gated_create(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch,
                          Tensors *params, Tensors *acts) {
    GatedHead *h = callocCheck(1, sizeof *h);
    h->base = (Head){&head_gated_ops, in_dim, out_dim};
    h->hidden = cfg->hidden;
    h->activation = head_activation(cfg, NULL);
    int H = h->hidden;
    build_param(params, &h->w1, &h->dw1, 0, 2, (int[]){H, in_dim}, "%s.fc1.weight", prefix);
    build_param(params, &h->b1, &h->db1, TENSOR_NO_DECAY, 1, &H, "%s.fc1.bias", prefix);
    build_param(params, &h->v, &h->dv, 0, 2, (int[]){H, in_dim}, "%s.gate.weight", prefix);
    build_param(params, &h->c, &h->dc, TENSOR_NO_DECAY, 1, &H, "%s.gate.bias", prefix);
    build_param(params, &h->w2, &h->dw2, 0, 2, (int[]){out_dim, H}, "%s.fc2.weight", prefix);
    build_acts_init(&h->acts, acts, max_batch);
    build_act(&h->acts, &h->pre, &h->dpre, (size_t)H, "%s.fc1.out", prefix);
    build_act(&h->acts, &h->act, &h->dact, (size_t)H, "%s.fc1.act", prefix);
    build_act(&h->acts, &h->gate, &h->dgate, (size_t)H, "%s.gate.out", prefix);
    build_act(&h->acts, &h->prod, &h->dprod, (size_t)H, "%s.gated", prefix);
    build_act(&h->acts, &h->out, NULL, (size_t)out_dim, "%s.fc2.out", prefix);
    return &h->base;
}

static void gated_init(Head *base, Rng *rng) {
    GatedHead *h = (GatedHead *)base;
    int in = base->in_dim, H = h->hidden;
    float gain = h->activation == HEAD_ACT_RELU ? sqrtf(2.0f) : 1.0f;
    rng_fill_normal(rng, h->w1, (long)H * in, gain / sqrtf((float)in));
    rng_fill_normal(rng, h->v, (long)H * in, 1.0f / sqrtf((float)in));
    rng_fill_normal(rng, h->w2, (long)base->out_dim * H, 1.0f / sqrtf((float)H));
    build_fill_const(h->b1, (size_t)H, 0.0f);
    build_fill_const(h->c, (size_t)H, 0.0f);
}

/* in [B, in] -> out [B, out] */
static const float *gated_forward(Head *base, const float *in, int B) {
    GatedHead *h = (GatedHead *)base;
    CHECK(B > 0 && B <= h->acts.max_batch, "batch %d, max %d", B, h->acts.max_batch);
    int H = h->hidden;
    size_t n = (size_t)B * H;
    h->input = in;
    ops_linear_forward(h->pre, in, h->w1, h->b1, B, base->in_dim, H);
    if (h->activation == HEAD_ACT_GELU) ops_gelu_forward(h->act, h->pre, n);
    else ops_relu_forward(h->act, h->pre, n);
    ops_linear_forward(h->gate, in, h->v, h->c, B, base->in_dim, H);
    for (size_t i = 0; i < n; i++) h->prod[i] = h->act[i] * h->gate[i];
    ops_linear_forward(h->out, h->prod, h->w2, NULL, B, H, base->out_dim);
    return h->out;
}

/* din [B, in] += (may be NULL), dout [B, out]; parameter grads += */
static void gated_backward(Head *base, float *din, const float *dout, int B) {
    GatedHead *h = (GatedHead *)base;
    int H = h->hidden;
    size_t n = (size_t)B * H;
    build_acts_zero_grads(&h->acts, B);
    ops_linear_backward(h->dprod, h->dw2, NULL, dout, h->prod, h->w2, B, H, base->out_dim);
    for (size_t i = 0; i < n; i++) {
        h->dact[i] += h->dprod[i] * h->gate[i];
        h->dgate[i] += h->dprod[i] * h->act[i];
    }
    if (h->activation == HEAD_ACT_GELU) ops_gelu_backward(h->dpre, h->dact, h->pre, n, OPS_ACCUMULATE);
    else ops_relu_backward(h->dpre, h->dact, h->pre, n);
    ops_linear_backward(din, h->dw1, h->db1, h->dpre, h->input, h->w1, B, base->in_dim, H);
    ops_linear_backward(din, h->dv, h->dc, h->dgate, h->input, h->v, B, base->in_dim, H);
}

static void gated_free(Head *base) {
    GatedHead *h = (GatedHead *)base;
    build_acts_free(&h->acts);
    free(h);
}

const HeadOps head_gated_ops = {
    .name = "gated",
    .check = gated_check,
    .create = gated_create,
    .init = gated_init,
    .forward = gated_forward,
    .backward = gated_backward,
    .free = gated_free,
};
