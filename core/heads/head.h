/* head.h — projection heads behind one vtable: representation [B, in_dim] -> embedding [B, out_dim].
 *
 * Kinds (registry in head.c): "identity" (out_dim must equal in_dim), "linear" (no bias, as CLIP),
 * "mlp" (depth d = number of linear layers: W_d act(... act(W_1 h)), hidden width, bias on the
 * hidden layers only; depth 2 with ReLU is SimCLR's W2 relu(W1 h); depth 1 is the linear head),
 * "gated" (a GLU MLP, gated.c). The registry's first kind is the spec's default.
 * Parameter names "<prefix>.fcK.weight" / "<prefix>.fcK.bias" (K 1-based), e.g. "img.head.fc1.weight".
 * The L2 normalisation into the joint space is the caller's (objectives), not a head's.
 * Deliberately left out: norms and dropout inside the MLP.
 */
#ifndef CLIPLAB_HEADS_HEAD_H
#define CLIPLAB_HEADS_HEAD_H

#include "common/check.h"
#include "common/rng.h"
#include "common/tensors.h"

#define HEAD_MAX_DEPTH 8
#define HEAD_NAME_MAX 24 /* kind and activation names, with the NUL */

enum { HEAD_ACT_RELU = 0, HEAD_ACT_GELU = 1 };

/* The model.head section of the Config, which is all a head reads of it. */
typedef struct {
    char kind[HEAD_NAME_MAX];       /* a kind of the registry (head.c) */
    int depth;                      /* mlp: number of linear layers, 1..HEAD_MAX_DEPTH */
    int hidden;                     /* mlp with depth >= 2: hidden width */
    char activation[HEAD_NAME_MAX]; /* of the hidden layers: head_activation_name */
} HeadConfig;

struct Head;

typedef struct HeadOps {
    const char *name;
    /* user-input validation of cfg and the dims: 0, or -1 with a one-line err */
    int (*check)(const HeadConfig *cfg, int in_dim, int out_dim, Err *err);
    struct Head *(*create)(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch,
                           Tensors *params, Tensors *acts);
    void (*init)(struct Head *h, Rng *rng);
    /* in [B, in_dim] -> [B, out_dim]; `in` must stay valid until the matching backward */
    const float *(*forward)(struct Head *h, const float *in, int B);
    /* din [B, in_dim] += (din may be NULL), dout [B, out_dim]; parameter grads += */
    void (*backward)(struct Head *h, float *din, const float *dout, int B);
    void (*free)(struct Head *h);
} HeadOps;

/* Instances start with this struct. */
typedef struct Head {
    const HeadOps *ops;
    int in_dim, out_dim;
} Head;

/* The registry (head.c): the i-th kind's name, NULL past the last. */
const char *head_kind_name(int i);
/* Unknown kind -> NULL + "unknown head kind 'x'; valid: linear, identity, ...". */
const HeadOps *head_lookup(const char *kind, Err *err);
/* The hidden-layer activations by HEAD_ACT_* index ("relu", "gelu"), NULL past the last. */
const char *head_activation_name(int i);
/* HEAD_ACT_* of cfg->activation, or -1 + "<kind> head: unknown activation 'x'; valid: relu, gelu". */
int head_activation(const HeadConfig *cfg, Err *err);
/* lookup + check + create; NULL with err on bad input (nothing declared then) */
Head *head_create(const HeadConfig *cfg, const char *prefix, int in_dim, int out_dim, int max_batch, Tensors *params,
                  Tensors *acts, Err *err);
void head_init(Head *h, Rng *rng);
const float *head_forward(Head *h, const float *in, int B);
void head_backward(Head *h, float *din, const float *dout, int B);
void head_free(Head *h);

/* The MLP stack that the linear and mlp heads share: `depth` linear layers, the hidden ones with
 * bias and activation. Returns a Head whose ops the caller sets. */
Head *head_mlp_build(const char *prefix, int in_dim, int out_dim, int depth, int hidden, int activation,
                     int max_batch, Tensors *params, Tensors *acts);
void head_mlp_init(Head *h, Rng *rng);
const float *head_mlp_forward(Head *h, const float *in, int B);
void head_mlp_backward(Head *h, float *din, const float *dout, int B);
void head_mlp_free(Head *h);

#endif
