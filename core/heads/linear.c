/* linear.c — the "linear" head: W h without bias, as CLIP's projections; a depth-1 MLP stack.
 * Deliberately left out: a bias (the L2 normalisation that follows makes it a direction shift
 * CLIP did without). */
#include "heads/head.h"

extern const HeadOps head_linear_ops; /* defined at the end; listed in head.c */

static int linear_check(const HeadConfig *cfg, int in_dim, int out_dim, Err *err) {
    (void)cfg, (void)in_dim, (void)out_dim, (void)err;
    return 0;
}

static Head *linear_create(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch,
                           Tensors *params, Tensors *acts) {
    (void)cfg;
    Head *h = head_mlp_build(prefix, in_dim, out_dim, 1, 0, HEAD_ACT_RELU, max_batch, params, acts);
    h->ops = &head_linear_ops;
    return h;
}

const HeadOps head_linear_ops = {
    .name = "linear",
    .check = linear_check,
    .create = linear_create,
    .init = head_mlp_init,
    .forward = head_mlp_forward,
    .backward = head_mlp_backward,
    .free = head_mlp_free,
};
