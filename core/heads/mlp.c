/* mlp.c — the "mlp" head (SimCLR's projection head generalised to depth d) and the stack the
 * linear head reuses.
 *
 * Layer k (0-based) maps in_k -> out_k with in_0 = in_dim, out_{d-1} = out_dim, hidden otherwise;
 * layers before the last have a bias and are followed by the activation.
 * Init: N(0, gain^2 / fan_in) with gain sqrt(2) before a ReLU, 1 otherwise (the last layer is
 * CLIP's width^-0.5 projection init).
 * Deliberately left out: norms between layers, dropout.
 */
#include <math.h>
#include <stdlib.h>

#include "heads/head.h"
#include "ops/ops.h"
#include "towers/build.h"

extern const HeadOps head_mlp_ops; /* defined at the end; listed in head.c */

typedef struct {
    Head base;
    int depth, hidden, activation;
    int in[HEAD_MAX_DEPTH], out[HEAD_MAX_DEPTH];
    /* w[k] [out_k, in_k], b[k] [out_k] (k < depth-1) */
    float *w[HEAD_MAX_DEPTH], *b[HEAD_MAX_DEPTH], *dw[HEAD_MAX_DEPTH], *db[HEAD_MAX_DEPTH];
    /* pre[k] [B, out_k] linear outputs (pre[depth-1] is the head's output); post[k] activations */
    float *pre[HEAD_MAX_DEPTH], *post[HEAD_MAX_DEPTH], *dpre[HEAD_MAX_DEPTH], *dpost[HEAD_MAX_DEPTH];
    const float *input;
    BuildActs acts;
} MlpHead;

static int mlp_check(const HeadConfig *cfg, int in_dim, int out_dim, Err *err) {
    (void)in_dim, (void)out_dim;
    if (cfg->depth < 1 || cfg->depth > HEAD_MAX_DEPTH)
        return err_set(err, "mlp head: depth must be in 1..%d, got %d", HEAD_MAX_DEPTH, cfg->depth);
    if (cfg->depth > 1 && cfg->hidden < 1) return err_set(err, "mlp head: hidden must be >= 1, got %d", cfg->hidden);
    return head_activation(cfg, err) < 0 ? -1 : 0;
}

Head *head_mlp_build(const char *prefix, int in_dim, int out_dim, int depth, int hidden, int activation,
                     int max_batch, Tensors *params, Tensors *acts) {
    CHECK(depth >= 1 && depth <= HEAD_MAX_DEPTH && (depth == 1 || hidden >= 1), "mlp depth %d hidden %d", depth,
          hidden);
    MlpHead *h = callocCheck(1, sizeof *h);
    h->base = (Head){&head_mlp_ops, in_dim, out_dim};
    h->depth = depth;
    h->hidden = hidden;
    h->activation = activation;
    build_acts_init(&h->acts, acts, max_batch);
    for (int k = 0; k < depth; k++) {
        h->in[k] = k == 0 ? in_dim : hidden;
        h->out[k] = k == depth - 1 ? out_dim : hidden;
        build_param(params, &h->w[k], &h->dw[k], 0, 2, (int[]){h->out[k], h->in[k]}, "%s.fc%d.weight", prefix, k + 1);
        int last = k == depth - 1; /* the output's gradient is the caller's dout */
        build_act(&h->acts, &h->pre[k], last ? NULL : &h->dpre[k], (size_t)h->out[k], "%s.fc%d.out", prefix, k + 1);
        if (last) break;
        build_param(params, &h->b[k], &h->db[k], TENSOR_NO_DECAY, 1, &h->out[k], "%s.fc%d.bias", prefix, k + 1);
        build_act(&h->acts, &h->post[k], &h->dpost[k], (size_t)h->out[k], "%s.fc%d.act", prefix, k + 1);
    }
    return &h->base;
}

static Head *mlp_create(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch,
                        Tensors *params, Tensors *acts) {
    return head_mlp_build(prefix, in_dim, out_dim, cfg->depth, cfg->hidden, head_activation(cfg, NULL), max_batch,
                          params, acts);
}

void head_mlp_init(Head *base, Rng *rng) {
    MlpHead *h = (MlpHead *)base;
    for (int k = 0; k < h->depth; k++) {
        int last = k == h->depth - 1;
        float gain = (!last && h->activation == HEAD_ACT_RELU) ? sqrtf(2.0f) : 1.0f;
        rng_fill_normal(rng, h->w[k], (long)h->out[k] * h->in[k], gain / sqrtf((float)h->in[k]));
        if (!last) build_fill_const(h->b[k], (size_t)h->out[k], 0.0f);
    }
}

const float *head_mlp_forward(Head *base, const float *in, int B) {
    MlpHead *h = (MlpHead *)base;
    CHECK(B > 0 && B <= h->acts.max_batch, "batch %d, max %d", B, h->acts.max_batch);
    h->input = in;
    const float *x = in;
    for (int k = 0; k < h->depth; k++) {
        ops_linear_forward(h->pre[k], x, h->w[k], h->b[k], B, h->in[k], h->out[k]);
        if (k == h->depth - 1) break;
        size_t n = (size_t)B * h->out[k];
        if (h->activation == HEAD_ACT_GELU) ops_gelu_forward(h->post[k], h->pre[k], n);
        else ops_relu_forward(h->post[k], h->pre[k], n);
        x = h->post[k];
    }
    return h->pre[h->depth - 1];
}

void head_mlp_backward(Head *base, float *din, const float *dout, int B) {
    MlpHead *h = (MlpHead *)base;
    build_acts_zero_grads(&h->acts, B);
    const float *g = dout;
    for (int k = h->depth - 1; k >= 0; k--) {
        const float *x = k == 0 ? h->input : h->post[k - 1];
        float *dx = k == 0 ? din : h->dpost[k - 1];
        ops_linear_backward(dx, h->dw[k], h->db[k], g, x, h->w[k], B, h->in[k], h->out[k]);
        if (k == 0) break;
        size_t n = (size_t)B * h->out[k - 1];
        if (h->activation == HEAD_ACT_GELU) ops_gelu_backward(h->dpre[k - 1], h->dpost[k - 1], h->pre[k - 1], n, OPS_ACCUMULATE);
        else ops_relu_backward(h->dpre[k - 1], h->dpost[k - 1], h->pre[k - 1], n);
        g = h->dpre[k - 1];
    }
}

void head_mlp_free(Head *base) {
    MlpHead *h = (MlpHead *)base;
    build_acts_free(&h->acts);
    free(h);
}

const HeadOps head_mlp_ops = {
    .name = "mlp",
    .check = mlp_check,
    .create = mlp_create,
    .init = head_mlp_init,
    .forward = head_mlp_forward,
    .backward = head_mlp_backward,
    .free = head_mlp_free,
};
