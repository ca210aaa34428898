/* transformer.h — a GPT-2-style causal transformer, shared by the text tower and caption decoders.
 *
 * Token + position embeddings, L pre-LN blocks (causal multi-head self-attention with qkv/proj
 * linears, GELU MLP 4x), final LayerNorm. Optional prefix: P vectors per sample [B, P, C] are
 * placed before the T token embeddings (positions cover P + T), which is how a caption decoder
 * conditions on the image (CLIP App. A.2). Only the first n_blocks_built blocks are built and run
 * (a tap "block K" = n_blocks_built K); the final LayerNorm follows the last built block.
 * Parameter names: "<prefix>.wte", "<prefix>.wpe", "<prefix>.blockK.{ln1,attn.qkv,attn.proj,ln2,
 * mlp.fc,mlp.proj}.{weight,bias}", "<prefix>.ln_f.{weight,bias}".
 * transformer_forest_forward scores many sequences that share prefixes (a prefix tree: the image
 * prefix and common prompt words computed once), for zero-shot scoring.
 * Deliberately left out: dropout, KV caching for generation, the LM head (callers own it, e.g. tied
 * to the "<prefix>.wte" embedding).
 */
#ifndef CLIPLAB_TOWERS_TRANSFORMER_H
#define CLIPLAB_TOWERS_TRANSFORMER_H

#include "common/rng.h"
#include "common/tensors.h"

typedef struct {
    int vocab, context /* T */, width /* C */, layers, heads;
    int n_prefix;       /* P, 0 for the text tower */
    int n_blocks_built; /* blocks actually built/computed (tap), 1..layers */
} TransformerConfig;

typedef struct Transformer Transformer;

/* A bad config (non-positive sizes, width % heads != 0, n_blocks_built outside 1..layers) is a
 * programmer error (CHECK): user-facing callers validate first. */
Transformer *transformer_create(const TransformerConfig *cfg, const char *prefix, int max_batch, Tensors *params,
                                Tensors *acts);
/* GPT-2 init: weights and embeddings N(0, 0.02), the two residual projections of each block
 * N(0, 0.02 / sqrt(2 * layers)), biases 0, LayerNorm gains 1. Uses cfg.layers (not the built
 * count), so a truncated model initialised from the same seed has the same weights. */
void transformer_init(Transformer *tr, Rng *rng);
/* prefix [B, P, C] or NULL when P = 0; tokens [B, T] in [0, vocab). Returns the hidden states after
 * the final LN [B, P+T, C], owned by the activations. prefix and tokens must stay valid until the
 * matching backward. */
const float *transformer_forward(Transformer *tr, const float *prefix, const int *tokens, int B);
/* dhidden [B, P+T, C]; accumulates (+=) parameter grads; if dprefix != NULL, += gradient w.r.t. the
 * prefix [B, P, C]. Zeroes its own activation grads first. */
void transformer_backward(Transformer *tr, float *dprefix, const float *dhidden, int B);
/* Inference only: hidden states after the final LN, hidden [N, C], of N rows that form a forest:
 * row r continues row parent[r] (< r; -1 starts a sequence) at position depth(r) < P + T, and
 * its input is prefix[r] ([N, C], read only where token[r] < 0) or the embedding of token[r],
 * plus the position embedding. Each root-to-row path computes what transformer_forward computes
 * for that sequence (the same kernels, in the same order per row). work: at least
 * transformer_forest_work_floats(tr, N) floats. No activations or gradients are touched. */
size_t transformer_forest_work_floats(const Transformer *tr, int N);
void transformer_forest_forward(const Transformer *tr, float *hidden, float *work, const float *prefix, const int *token,
                                const int *parent, int N);
const float *transformer_wte(const Transformer *tr); /* [V, C] */
float *transformer_dwte(const Transformer *tr);      /* [V, C], its gradient, for a tied LM head */
void transformer_free(Transformer *tr);

#endif
