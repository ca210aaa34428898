/* text_tower.h — text encoders behind one vtable: tokens [B, T] -> features [B, dim].
 *
 * Kinds (registry in text_tower.c):
 *  - "transformer": transformer.h with no prefix; features = final-LN hidden state at the EOS
 *    position lengths[b]-1 (CLIP's EOT token). Taps "txt.blockK" (1-based; "" = last block): the
 *    blocks above K are not built, the final LN follows block K.
 *  - "cbow": mean of word embeddings over the positions t < lengths[b] (BOS and EOS included: they
 *    are in every caption, so they only add a length-dependent offset the linear layer can use;
 *    PAD positions are masked out), then a linear layer width -> width with bias. No taps ("" only).
 *  - "ngram": mean of unigram and hashed-bigram embeddings, then a linear layer (text_ngram.c).
 * Parameter names start with "txt.".
 * Deliberately left out: tokenisation (data/), pooling choices other than EOS / mean.
 */
#ifndef CLIPLAB_TOWERS_TEXT_TOWER_H
#define CLIPLAB_TOWERS_TEXT_TOWER_H

#include "common/check.h"
#include "common/rng.h"
#include "common/tensors.h"

#define TEXT_TOWER_NAME_MAX 24 /* kind names, with the NUL */
#define TEXT_TOWER_TAP_MAX 32  /* "txt.blockK" */

/* The model.text section of the Config, which is all a text tower reads of it; the vocabulary and
 * the context come from the dataset (TextTowerDims). */
typedef struct {
    char kind[TEXT_TOWER_NAME_MAX]; /* a kind of the registry (text_tower.c) */
    int width, layers, heads;
    char tap[TEXT_TOWER_TAP_MAX]; /* the layer the head reads; "" = the last */
} TextTowerConfig;

typedef struct {
    int vocab, context; /* token ids in [0, vocab); tokens per caption */
} TextTowerDims;

typedef struct TextTower TextTower;

typedef struct TextTowerOps {
    const char *name;
    /* validates cfg and its tap (user input: NULL + err), declares params/acts for max_batch */
    TextTower *(*create)(const TextTowerConfig *cfg, TextTowerDims dims, int max_batch, Tensors *params,
                         Tensors *acts, Err *err);
    void (*init)(TextTower *t, Rng *rng);
    const float *(*forward)(TextTower *t, const int *tokens, const int *lengths, int B);
    void (*backward)(TextTower *t, const float *dfeat, int B);
    void (*free)(TextTower *t);
} TextTowerOps;

/* Instances start with this struct; dim = feature width. */
struct TextTower {
    const TextTowerOps *ops;
    int dim;
};

/* The registry (text_tower.c): the i-th kind's name, NULL past the last. */
const char *text_tower_kind_name(int i);
/* Unknown kind -> NULL + "unknown text tower kind 'rnn'; valid: cbow, transformer". */
const TextTowerOps *text_tower_lookup(const char *kind, Err *err);
TextTower *text_tower_create(const TextTowerConfig *cfg, TextTowerDims dims, int max_batch, Tensors *params,
                             Tensors *acts, Err *err);
void text_tower_init(TextTower *t, Rng *rng);
int text_tower_dim(const TextTower *t);
/* tokens [B, T], lengths [B] in 1..T (EOS at lengths[b]-1) -> features [B, dim] owned by the
 * activations; tokens and lengths must stay valid until the matching backward. */
const float *text_tower_forward(TextTower *t, const int *tokens, const int *lengths, int B);
/* dfeat [B, dim] -> accumulates (+=) the parameter gradients */
void text_tower_backward(TextTower *t, const float *dfeat, int B);
void text_tower_free(TextTower *t);

/* Shared by the kinds: positive sizes; one-line err naming the bad field. */
int text_tower_check_sizes(const TextTowerConfig *cfg, TextTowerDims dims, Err *err);

#endif
