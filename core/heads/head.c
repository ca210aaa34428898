/* head.c — the head registry and vtable dispatch (see head.h).
 * Deliberately left out: kinds registered at run time (the table is static and complete). */
#include "heads/head.h"

#include <stdio.h>


/* The registry, the only list of head kinds (the spec, help-spec and error messages read it; the
 * first is the default).
 * To add a head: write heads/<kind>.c defining `const HeadOps head_<kind>_ops` and add one line
 * X(<kind>) here. */
#define HEAD_REGISTRY(X) \
    X(linear)            \
    X(identity)          \
    X(mlp)               \
    X(gated)             \
    /* end of the list: one X(<kind>) line above per kind */

#define HEAD_DECLARE(kind) extern const HeadOps head_##kind##_ops;
HEAD_REGISTRY(HEAD_DECLARE)
#define HEAD_ENTRY(kind) &head_##kind##_ops,
static const HeadOps *const HEADS[] = {HEAD_REGISTRY(HEAD_ENTRY)};
#define N_HEADS ((int)(sizeof HEADS / sizeof HEADS[0]))

const char *head_kind_name(int i) { return i >= 0 && i < N_HEADS ? HEADS[i]->name : NULL; }

const HeadOps *head_lookup(const char *kind, Err *err) {
    int i = names_find(head_kind_name, kind);
    if (i < 0) return err_unknown_name(err, "head kind", kind, head_kind_name), NULL;
    return HEADS[i];
}

/* The activations of the heads' hidden layers, indexed by HEAD_ACT_*. */
static const char *const ACTIVATIONS[] = {[HEAD_ACT_RELU] = "relu", [HEAD_ACT_GELU] = "gelu"};

const char *head_activation_name(int i) {
    return i >= 0 && i < (int)(sizeof ACTIVATIONS / sizeof ACTIVATIONS[0]) ? ACTIVATIONS[i] : NULL;
}

int head_activation(const HeadConfig *cfg, Err *err) {
    int act = names_find(head_activation_name, cfg->activation);
    if (act < 0) {
        char what[64];
        snprintf(what, sizeof what, "%.24s head activation", cfg->kind);
        return err_unknown_name(err, what, cfg->activation, head_activation_name);
    }
    return act;
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
