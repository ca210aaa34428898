/* identity.c — the "identity" head: the embedding is the representation itself (no parameters).
 * Deliberately left out: a copy (forward returns the input pointer). */
#include <cblas.h>
#include <stdlib.h>

#include "heads/head.h"

extern const HeadOps head_identity_ops; /* defined at the end; listed in head.c */

static int identity_check(const HeadConfig *cfg, int in_dim, int out_dim, Err *err) {
    (void)cfg;
    if (in_dim != out_dim)
        return err_set(err, "identity head: embedding dim %d must equal the representation dim %d", out_dim, in_dim);
    return 0;
}

static Head *identity_create(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch,
                             Tensors *params, Tensors *acts) {
    (void)cfg, (void)prefix, (void)max_batch, (void)params, (void)acts;
    CHECK(in_dim == out_dim, "identity head %d -> %d", in_dim, out_dim);
    Head *h = mallocCheck(sizeof *h);
    *h = (Head){&head_identity_ops, in_dim, out_dim};
    return h;
}

static void identity_init(Head *h, Rng *rng) { (void)h, (void)rng; }

static const float *identity_forward(Head *h, const float *in, int B) {
    (void)h, (void)B;
    return in;
}

static void identity_backward(Head *h, float *din, const float *dout, int B) {
    if (din) cblas_saxpy(B * h->in_dim, 1.0f, dout, 1, din, 1);
}

static void identity_free(Head *h) { free(h); }

const HeadOps head_identity_ops = {
    .name = "identity",
    .check = identity_check,
    .create = identity_create,
    .init = identity_init,
    .forward = identity_forward,
    .backward = identity_backward,
    .free = identity_free,
};
