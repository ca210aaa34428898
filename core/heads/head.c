/* head.c — the head registry and vtable dispatch (see head.h).
 * Deliberately left out: kinds registered at run time (the table is static and complete). */
#include "heads/head.h"

#include <string.h>

#include "towers/build.h"

/* To add a head: implement its HeadOps in heads/<kind>.c, declare it in head.h, append it here. */
static const HeadOps *const HEADS[] = {&head_identity_ops, &head_linear_ops, &head_mlp_ops};
#define N_HEADS ((int)(sizeof HEADS / sizeof HEADS[0]))

const HeadOps *head_lookup(const char *kind, Err *err) {
    char valid[ERR_MSG_MAX / 2] = "";
    for (int i = 0; i < N_HEADS; i++) {
        if (!strcmp(kind, HEADS[i]->name)) return HEADS[i];
        if (i) strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
        strncat(valid, HEADS[i]->name, sizeof valid - strlen(valid) - 1);
    }
    build_err_unknown(err, "head kind", kind, valid);
    return NULL;
}

Head *head_create(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch, Tensors *params,
                  Tensors *acts, Err *err) {
    const HeadOps *ops = head_lookup(cfg->kind, err);
    if (!ops) return NULL;
    if (in_dim < 1 || out_dim < 1) {
        err_set(err, "%s head: dims must be >= 1, got %d -> %d", ops->name, in_dim, out_dim);
        return NULL;
    }
    if (ops->check(cfg, in_dim, out_dim, err)) return NULL;
    return ops->create(cfg, prefix, in_dim, out_dim, max_batch, params, acts);
}

void head_init(Head *h, Rng *rng) { h->ops->init(h, rng); }
const float *head_forward(Head *h, const float *in, int B) { return h->ops->forward(h, in, B); }
void head_backward(Head *h, float *din, const float *dout, int B) { h->ops->backward(h, din, dout, B); }

void head_free(Head *h) {
    if (h) h->ops->free(h);
}
