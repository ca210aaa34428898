/* transformer.c — GPT-2-style pre-LN causal transformer with optional prefix vectors (llm.c layout).
 *
 * Each block keeps the llm.c activation set; the residual stream's gradient is carried in the
 * gradients of res2/res3 (the proj linears read them directly as their output gradient), so the
 * projection outputs need no gradient buffers. The attention backward's dpreatt/datt scratch is the
 * gradient storage of preatt/att. Gradients that are written before they are read (those two, and
 * res2/res3's, each begun as a copy of the gradient that flows past its block) are not zeroed per
 * step, and the MLP's GELU output gradient has no buffer: it is made fch's in place. Of the
 * backward's memory traffic, that removes about half the zeroing.
 * A thread's slice of the batch runs through the blocks in chunks of about 256 tokens (forward,
 * then backward), so one op's output is still in L2 when the next op reads it.
 * The forest forward (inference only) reuses one set of work buffers across blocks.
 * Deliberately left out: dropout, fused kernels, an incremental KV cache for generation.
 */
#include "towers/transformer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "ops/ops.h"
#include "towers/build.h"

#define TRANSFORMER_LN_EPS 1e-5f

typedef struct {
    /* ln1w, ln1b, ln2w, ln2b [C]; qkvw [3C, C], qkvb [3C]; projw [C, C], projb [C];
     * fcw [4C, C], fcb [4C]; fcprojw [C, 4C], fcprojb [C] */
    float *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
} BlockParams;

typedef struct {
    /* per sample, S = P + T: ln1, atty, attproj, res2, ln2, fcproj, res3 [S, C]; qkv [S, 3C];
     * preatt, att [NH, S, S]; fch, fch_gelu [S, 4C]; ln1_mean/rstd, ln2_mean/rstd [S] */
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *preatt, *att, *attproj, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *res3;
} BlockActs;

typedef struct {
    BlockParams p, dp;
    BlockActs a, da;
} Block;

struct Transformer {
    TransformerConfig cfg;
    int S; /* sequence length P + T */
    float *wte, *wpe, *lnfw, *lnfb;     /* wte [V, C], wpe [S, C], lnfw/lnfb [C] */
    float *dwte, *dwpe, *dlnfw, *dlnfb;
    float *encoded, *dencoded;          /* [B, S, C] */
    float *lnf, *lnf_mean, *lnf_rstd;   /* [B, S, C], [B, S], [B, S] */
    Block *blocks;
    BlockParams *dp_model; /* [n_blocks_built]: copies of blocks[l].dp, the model's gradients */
    /* data parallelism (build.h): threads 1.. accumulate into priv [n_priv, grad_floats], whose
     * blocks' fields are priv_dp [n_priv, n_blocks_built] */
    float *priv;
    BlockParams *priv_dp;
    size_t grad_floats;
    int n_priv;
    const float *prefix;
    const int *tokens;
    BuildActs acts;
};

static void block_declare(Block *bk, const char *pfx, int l, int S, int C, int NH, Tensors *params, BuildActs *ba) {
    BlockParams *p = &bk->p, *dp = &bk->dp;
    BlockActs *a = &bk->a, *da = &bk->da;
    const int nd = TENSOR_NO_DECAY;
    build_param(params, &p->ln1w, &dp->ln1w, nd, 1, &C, "%s.block%d.ln1.weight", pfx, l);
    build_param(params, &p->ln1b, &dp->ln1b, nd, 1, &C, "%s.block%d.ln1.bias", pfx, l);
    build_param(params, &p->qkvw, &dp->qkvw, 0, 2, (int[]){3 * C, C}, "%s.block%d.attn.qkv.weight", pfx, l);
    build_param(params, &p->qkvb, &dp->qkvb, nd, 1, (int[]){3 * C}, "%s.block%d.attn.qkv.bias", pfx, l);
    build_param(params, &p->projw, &dp->projw, 0, 2, (int[]){C, C}, "%s.block%d.attn.proj.weight", pfx, l);
    build_param(params, &p->projb, &dp->projb, nd, 1, &C, "%s.block%d.attn.proj.bias", pfx, l);
    build_param(params, &p->ln2w, &dp->ln2w, nd, 1, &C, "%s.block%d.ln2.weight", pfx, l);
    build_param(params, &p->ln2b, &dp->ln2b, nd, 1, &C, "%s.block%d.ln2.bias", pfx, l);
    build_param(params, &p->fcw, &dp->fcw, 0, 2, (int[]){4 * C, C}, "%s.block%d.mlp.fc.weight", pfx, l);
    build_param(params, &p->fcb, &dp->fcb, nd, 1, (int[]){4 * C}, "%s.block%d.mlp.fc.bias", pfx, l);
    build_param(params, &p->fcprojw, &dp->fcprojw, 0, 2, (int[]){C, 4 * C}, "%s.block%d.mlp.proj.weight", pfx, l);
    build_param(params, &p->fcprojb, &dp->fcprojb, nd, 1, &C, "%s.block%d.mlp.proj.bias", pfx, l);

    size_t SC = (size_t)S * C, SS = (size_t)NH * S * S;
    /* res2, res3's gradients are written by a copy before anything adds to them, preatt, att's are
     * the attention backward's scratch (build_act_written: not zeroed), and fch_gelu's is never
     * stored (ops_gelu_backward overwrites d(fch) in place) */
    build_act(ba, &a->ln1, &da->ln1, SC, "%s.block%d.ln1", pfx, l);
    build_act(ba, &a->ln1_mean, NULL, (size_t)S, "%s.block%d.ln1_mean", pfx, l);
    build_act(ba, &a->ln1_rstd, NULL, (size_t)S, "%s.block%d.ln1_rstd", pfx, l);
    build_act(ba, &a->qkv, &da->qkv, 3 * SC, "%s.block%d.qkv", pfx, l);
    build_act(ba, &a->atty, &da->atty, SC, "%s.block%d.atty", pfx, l);
    build_act_written(ba, &a->preatt, &da->preatt, SS, "%s.block%d.preatt", pfx, l);
    build_act_written(ba, &a->att, &da->att, SS, "%s.block%d.att", pfx, l);
    build_act(ba, &a->attproj, NULL, SC, "%s.block%d.attproj", pfx, l);
    build_act_written(ba, &a->res2, &da->res2, SC, "%s.block%d.res2", pfx, l);
    build_act(ba, &a->ln2, &da->ln2, SC, "%s.block%d.ln2", pfx, l);
    build_act(ba, &a->ln2_mean, NULL, (size_t)S, "%s.block%d.ln2_mean", pfx, l);
    build_act(ba, &a->ln2_rstd, NULL, (size_t)S, "%s.block%d.ln2_rstd", pfx, l);
    build_act(ba, &a->fch, &da->fch, 4 * SC, "%s.block%d.fch", pfx, l);
    build_act(ba, &a->fch_gelu, NULL, 4 * SC, "%s.block%d.fch_gelu", pfx, l);
    build_act(ba, &a->fcproj, NULL, SC, "%s.block%d.fcproj", pfx, l);
    build_act_written(ba, &a->res3, &da->res3, SC, "%s.block%d.res3", pfx, l);
}

Transformer *transformer_create(const TransformerConfig *cfg, const char *prefix, int max_batch, Tensors *params,
                                Tensors *acts) {
    CHECK(cfg->vocab > 0 && cfg->context > 0 && cfg->width > 0 && cfg->layers > 0 && cfg->heads > 0 &&
              cfg->n_prefix >= 0,
          "transformer '%s': bad sizes", prefix);
    CHECK(cfg->width % cfg->heads == 0, "transformer '%s': width %d %% heads %d", prefix, cfg->width, cfg->heads);
    CHECK(cfg->n_blocks_built >= 1 && cfg->n_blocks_built <= cfg->layers, "transformer '%s': %d of %d blocks", prefix,
          cfg->n_blocks_built, cfg->layers);
    Transformer *tr = callocCheck(1, sizeof *tr);
    tr->cfg = *cfg;
    int C = cfg->width, S = cfg->n_prefix + cfg->context;
    tr->S = S;
    build_acts_init(&tr->acts, acts, max_batch);
    build_param(params, &tr->wte, &tr->dwte, 0, 2, (int[]){cfg->vocab, C}, "%s.wte", prefix);
    build_param(params, &tr->wpe, &tr->dwpe, 0, 2, (int[]){S, C}, "%s.wpe", prefix);
    build_act_written(&tr->acts, &tr->encoded, &tr->dencoded, (size_t)S * C, "%s.encoded", prefix);
    tr->blocks = callocCheck((size_t)cfg->n_blocks_built, sizeof *tr->blocks);
    tr->dp_model = callocCheck((size_t)cfg->n_blocks_built, sizeof *tr->dp_model);
    for (int l = 0; l < cfg->n_blocks_built; l++)
        block_declare(&tr->blocks[l], prefix, l + 1, S, C, cfg->heads, params, &tr->acts);
    build_param(params, &tr->lnfw, &tr->dlnfw, TENSOR_NO_DECAY, 1, &C, "%s.ln_f.weight", prefix);
    build_param(params, &tr->lnfb, &tr->dlnfb, TENSOR_NO_DECAY, 1, &C, "%s.ln_f.bias", prefix);
    build_act(&tr->acts, &tr->lnf, NULL, (size_t)S * C, "%s.ln_f", prefix);
    build_act(&tr->acts, &tr->lnf_mean, NULL, (size_t)S, "%s.ln_f_mean", prefix);
    build_act(&tr->acts, &tr->lnf_rstd, NULL, (size_t)S, "%s.ln_f_rstd", prefix);
    return tr;
}

void transformer_init(Transformer *tr, Rng *rng) {
    int C = tr->cfg.width;
    float std = BUILD_INIT_STD, res_std = BUILD_INIT_STD / sqrtf(2.0f * tr->cfg.layers);
    rng_fill_normal(rng, tr->wte, (long)tr->cfg.vocab * C, std);
    rng_fill_normal(rng, tr->wpe, (long)tr->S * C, std);
    for (int l = 0; l < tr->cfg.n_blocks_built; l++) {
        BlockParams *p = &tr->blocks[l].p;
        build_fill_const(p->ln1w, (size_t)C, 1.0f);
        build_fill_const(p->ln1b, (size_t)C, 0.0f);
        rng_fill_normal(rng, p->qkvw, 3L * C * C, std);
        build_fill_const(p->qkvb, 3 * (size_t)C, 0.0f);
        rng_fill_normal(rng, p->projw, (long)C * C, res_std);
        build_fill_const(p->projb, (size_t)C, 0.0f);
        build_fill_const(p->ln2w, (size_t)C, 1.0f);
        build_fill_const(p->ln2b, (size_t)C, 0.0f);
        rng_fill_normal(rng, p->fcw, 4L * C * C, std);
        build_fill_const(p->fcb, 4 * (size_t)C, 0.0f);
        rng_fill_normal(rng, p->fcprojw, 4L * C * C, res_std);
        build_fill_const(p->fcprojb, (size_t)C, 0.0f);
    }
    build_fill_const(tr->lnfw, (size_t)C, 1.0f);
    build_fill_const(tr->lnfb, (size_t)C, 0.0f);
}

/* Activations of the samples from b0 on: every batch-first field shifted by b0 samples (NULL stays
 * NULL), so one slice of the batch runs the same code as the whole batch. */
static float *at(float *base, int b0, size_t per_sample) { return base ? base + (size_t)b0 * per_sample : NULL; }

static BlockActs block_acts_at(const BlockActs *a, int b0, int S, int C, int NH) {
    size_t SC = (size_t)S * C, SS = (size_t)NH * S * S;
    return (BlockActs){at(a->ln1, b0, SC),      at(a->ln1_mean, b0, S),     at(a->ln1_rstd, b0, S),
                       at(a->qkv, b0, 3 * SC),  at(a->atty, b0, SC),        at(a->preatt, b0, SS),
                       at(a->att, b0, SS),      at(a->attproj, b0, SC),     at(a->res2, b0, SC),
                       at(a->ln2, b0, SC),      at(a->ln2_mean, b0, S),     at(a->ln2_rstd, b0, S),
                       at(a->fch, b0, 4 * SC),  at(a->fch_gelu, b0, 4 * SC), at(a->fcproj, b0, SC),
                       at(a->res3, b0, SC)};
}

/* Where one thread's parameter gradients go: the model's own, or a private copy (see build.h). */
typedef struct {
    BlockParams *dp; /* [n_blocks_built] */
    float *dwte, *dwpe, *dlnfw, *dlnfb;
} TransformerGrads;

enum { BLOCK_N_PARAMS = 12 };

/* The fields of a block's parameters (or gradients) and their sizes, in declaration order. */
static void block_fields(BlockParams *p, int C, float **f[BLOCK_N_PARAMS], size_t n[BLOCK_N_PARAMS]) {
    float **ff[BLOCK_N_PARAMS] = {&p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->projw,  &p->projb,
                                  &p->ln2w, &p->ln2b, &p->fcw,  &p->fcb,  &p->fcprojw, &p->fcprojb};
    size_t c = (size_t)C, nn[BLOCK_N_PARAMS] = {c, c, 3 * c * c, 3 * c, c * c, c, c, c, 4 * c * c, 4 * c, 4 * c * c, c};
    memcpy(f, ff, sizeof ff);
    memcpy(n, nn, sizeof nn);
}

/* Every gradient field of g and its size, blocks first: the layout of a private copy. Returns the count. */
static int grad_fields(const Transformer *tr, TransformerGrads *g, float **f[], size_t n[]) {
    int k = 0, C = tr->cfg.width;
    for (int l = 0; l < tr->cfg.n_blocks_built; l++, k += BLOCK_N_PARAMS) block_fields(&g->dp[l], C, f + k, n + k);
    float **top[4] = {&g->dwte, &g->dwpe, &g->dlnfw, &g->dlnfb};
    size_t ntop[4] = {(size_t)tr->cfg.vocab * C, (size_t)tr->S * C, (size_t)C, (size_t)C};
    for (int i = 0; i < 4; i++, k++) f[k] = top[i], n[k] = ntop[i];
    return k;
}

/* The model's own gradients (their fields are bound at tensors_alloc, after create: re-read here). */
static TransformerGrads model_grads(Transformer *tr) {
    for (int l = 0; l < tr->cfg.n_blocks_built; l++) tr->dp_model[l] = tr->blocks[l].dp;
    return (TransformerGrads){tr->dp_model, tr->dwte, tr->dwpe, tr->dlnfw, tr->dlnfb};
}

static void forward_chunk(Transformer *tr, int b0, int nb) {
    const TransformerConfig *cfg = &tr->cfg;
    int C = cfg->width, P = cfg->n_prefix, T = cfg->context, S = tr->S, NH = cfg->heads, BS = nb * S;
    for (int b = b0; b < b0 + nb; b++) {
        float *enc = tr->encoded + (size_t)b * S * C;
        for (int i = 0; i < P * C; i++) enc[i] = tr->prefix[(size_t)b * P * C + i] + tr->wpe[i];
        ops_embedding_forward(enc + (size_t)P * C, tr->tokens + (size_t)b * T, tr->wte, tr->wpe + (size_t)P * C, 1, T,
                              C, cfg->vocab);
    }
    const float *residual = at(tr->encoded, b0, (size_t)S * C);
    for (int l = 0; l < cfg->n_blocks_built; l++) {
        const BlockParams *p = &tr->blocks[l].p;
        BlockActs a = block_acts_at(&tr->blocks[l].a, b0, S, C, NH);
        ops_layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, residual, p->ln1w, p->ln1b, BS, C, TRANSFORMER_LN_EPS);
        ops_linear_forward(a.qkv, a.ln1, p->qkvw, p->qkvb, BS, C, 3 * C);
        ops_attention_forward(a.atty, a.preatt, a.att, a.qkv, nb, S, C, NH);
        ops_linear_forward(a.attproj, a.atty, p->projw, p->projb, BS, C, C);
        ops_add_forward(a.res2, residual, a.attproj, (size_t)BS * C);
        ops_layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res2, p->ln2w, p->ln2b, BS, C, TRANSFORMER_LN_EPS);
        ops_linear_forward(a.fch, a.ln2, p->fcw, p->fcb, BS, C, 4 * C);
        ops_gelu_forward(a.fch_gelu, a.fch, (size_t)BS * 4 * C);
        ops_linear_forward(a.fcproj, a.fch_gelu, p->fcprojw, p->fcprojb, BS, 4 * C, C);
        ops_add_forward(a.res3, a.res2, a.fcproj, (size_t)BS * C);
        residual = a.res3;
    }
    ops_layernorm_forward(at(tr->lnf, b0, (size_t)S * C), at(tr->lnf_mean, b0, S), at(tr->lnf_rstd, b0, S), residual,
                          tr->lnfw, tr->lnfb, BS, C, TRANSFORMER_LN_EPS);
}

/* Samples per chunk: a thread's slice of the batch runs through the blocks (forward, then backward)
 * TRANSFORMER_CHUNK_TOKENS tokens at a time, so what an op writes is still in L2 when the next op
 * reads it. At the whole batch's sizes the ops between the products are memory-bound (a [B S, 4C]
 * buffer is 12.6 MB at B = 256, a bias fill, the product's pass over its output and the GELU each
 * a trip to memory). Contrastive-transformer and caption B = 256 one-thread steps, CPU ms, 3 runs
 * each: whole slices 351-365 / 388-402, chunks of 128 tokens 342-357 / 385-386, 256 335-339 /
 * 375-380, 512 337-368 / 375-416 (a busy machine in the slow ones): the smaller the chunk, the
 * more the products' per-call packing costs. The forward's outputs are the same; the backward's
 * parameter gradients are sums over chunks, so their rounding depends on the chunk size. */
#define TRANSFORMER_CHUNK_TOKENS 256
static int chunk_samples(const Transformer *tr) {
    return TRANSFORMER_CHUNK_TOKENS / tr->S > 1 ? TRANSFORMER_CHUNK_TOKENS / tr->S : 1;
}

static void transformer_forward_slice(Transformer *tr, int b0, int nb) {
    const int ch = chunk_samples(tr);
    for (int c = b0; c < b0 + nb; c += ch) forward_chunk(tr, c, b0 + nb - c < ch ? b0 + nb - c : ch);
}

const float *transformer_forward(Transformer *tr, const float *prefix, const int *tokens, int B) {
    CHECK(B > 0 && B <= tr->acts.max_batch, "batch %d, max %d", B, tr->acts.max_batch);
    CHECK(tr->cfg.n_prefix == 0 || prefix, "transformer with %d prefix vectors needs a prefix", tr->cfg.n_prefix);
    tr->prefix = prefix;
    tr->tokens = tokens;
    int nt = build_threads(B);
    if (nt == 1) {
        transformer_forward_slice(tr, 0, B);
    } else {
#pragma omp parallel num_threads(nt)
        {
            int k = omp_get_thread_num(), n = omp_get_num_threads(), b0 = build_slice_start(B, k, n);
            transformer_forward_slice(tr, b0, build_slice_start(B, k + 1, n) - b0);
        }
    }
    return tr->lnf;
}

/* The backward of samples [b0, b0 + nb) (dprefix, dhidden: the whole batch's), gradients into g. */
static void backward_chunk(Transformer *tr, const TransformerGrads *g, float *dprefix, const float *dhidden, int b0,
                           int nb) {
    const TransformerConfig *cfg = &tr->cfg;
    int C = cfg->width, P = cfg->n_prefix, T = cfg->context, S = tr->S, NH = cfg->heads, BS = nb * S;
    int L = cfg->n_blocks_built;
    size_t n = (size_t)BS * C, SC = (size_t)S * C;
    build_acts_zero_grads_slice(&tr->acts, b0, nb);
    BlockActs last = block_acts_at(&tr->blocks[L - 1].a, b0, S, C, NH);
    BlockActs dlast = block_acts_at(&tr->blocks[L - 1].da, b0, S, C, NH);
    memset(dlast.res3, 0, n * sizeof(float)); /* the one residual gradient that is not a copy first */
    ops_layernorm_backward(dlast.res3, g->dlnfw, g->dlnfb, dhidden + (size_t)b0 * SC, last.res3, tr->lnfw,
                           at(tr->lnf_mean, b0, S), at(tr->lnf_rstd, b0, S), BS, C);
    for (int l = L - 1; l >= 0; l--) {
        const BlockParams *p = &tr->blocks[l].p;
        BlockParams *dp = &g->dp[l];
        BlockActs a = block_acts_at(&tr->blocks[l].a, b0, S, C, NH), da = block_acts_at(&tr->blocks[l].da, b0, S, C, NH);
        const float *residual = l == 0 ? at(tr->encoded, b0, SC) : at(tr->blocks[l - 1].a.res3, b0, SC);
        float *dresidual = l == 0 ? at(tr->dencoded, b0, SC) : at(tr->blocks[l - 1].da.res3, b0, SC);
        /* res3 = res2 + fcproj: the MLP branch reads d(res3) as its output gradient; the GELU's
         * output gradient goes straight into d(fch), made fch's own in place */
        ops_linear_backward(da.fch, dp->fcprojw, dp->fcprojb, da.res3, a.fch_gelu, p->fcprojw, BS, 4 * C, C);
        ops_gelu_backward(da.fch, da.fch, a.fch, (size_t)BS * 4 * C, OPS_OVERWRITE);
        ops_linear_backward(da.ln2, dp->fcw, dp->fcb, da.fch, a.ln2, p->fcw, BS, C, 4 * C);
        /* d(res2) = d(res3) + LN2's part: the copy, then the backward's +=, is the sum of the two
         * (a + b = b + a) without zeroing d(res2) and without a pass that adds d(res3) after */
        memcpy(da.res2, da.res3, n * sizeof(float));
        ops_layernorm_backward(da.res2, dp->ln2w, dp->ln2b, da.ln2, a.res2, p->ln2w, a.ln2_mean, a.ln2_rstd, BS, C);
        /* res2 = residual + attproj: likewise for the attention branch */
        ops_linear_backward(da.atty, dp->projw, dp->projb, da.res2, a.atty, p->projw, BS, C, C);
        ops_attention_backward(da.qkv, da.preatt, da.att, da.atty, a.qkv, a.att, nb, S, C, NH);
        ops_linear_backward(da.ln1, dp->qkvw, dp->qkvb, da.qkv, a.ln1, p->qkvw, BS, C, 3 * C);
        memcpy(dresidual, da.res2, n * sizeof(float));
        ops_layernorm_backward(dresidual, dp->ln1w, dp->ln1b, da.ln1, residual, p->ln1w, a.ln1_mean, a.ln1_rstd, BS,
                               C);
    }
    for (int b = b0; b < b0 + nb; b++) {
        const float *denc = tr->dencoded + (size_t)b * SC;
        for (int i = 0; i < P * C; i++) g->dwpe[i] += denc[i];
        if (dprefix)
            for (int i = 0; i < P * C; i++) dprefix[(size_t)b * P * C + i] += denc[i];
        ops_embedding_backward(g->dwte, g->dwpe + (size_t)P * C, denc + (size_t)P * C, tr->tokens + (size_t)b * T, 1,
                               T, C, cfg->vocab);
    }
}

static void transformer_backward_slice(Transformer *tr, const TransformerGrads *g, float *dprefix,
                                       const float *dhidden, int b0, int nb) {
    const int ch = chunk_samples(tr);
    for (int c = b0; c < b0 + nb; c += ch)
        backward_chunk(tr, g, dprefix, dhidden, c, b0 + nb - c < ch ? b0 + nb - c : ch);
}

/* Private gradient copies for threads 1 .. nt-1, carved like grad_fields lists them. */
static void transformer_reserve_private(Transformer *tr, int nt) {
    if (tr->n_priv >= nt - 1) return;
    int L = tr->cfg.n_blocks_built, nf = L * BLOCK_N_PARAMS + 4;
    float **f[nf];
    size_t n[nf];
    TransformerGrads g = model_grads(tr);
    grad_fields(tr, &g, f, n);
    tr->grad_floats = 0;
    for (int i = 0; i < nf; i++) tr->grad_floats += n[i];
    free(tr->priv);
    free(tr->priv_dp);
    tr->priv = mallocCheck((size_t)(nt - 1) * tr->grad_floats * sizeof(float));
    tr->priv_dp = callocCheck((size_t)(nt - 1) * L, sizeof *tr->priv_dp);
    tr->n_priv = nt - 1;
}

static TransformerGrads private_grads(Transformer *tr, int k) {
    int L = tr->cfg.n_blocks_built, nf = L * BLOCK_N_PARAMS + 4;
    TransformerGrads g = {tr->priv_dp + (size_t)(k - 1) * L, NULL, NULL, NULL, NULL};
    float **f[nf];
    size_t n[nf];
    grad_fields(tr, &g, f, n);
    float *base = tr->priv + (size_t)(k - 1) * tr->grad_floats;
    for (int i = 0; i < nf; i++, base += n[i - 1]) *f[i] = base;
    return g;
}

void transformer_backward(Transformer *tr, float *dprefix, const float *dhidden, int B) {
    CHECK(B > 0 && B <= tr->acts.max_batch, "batch %d, max %d", B, tr->acts.max_batch);
    int nt = build_threads(B);
    TransformerGrads model = model_grads(tr);
    if (nt == 1) {
        transformer_backward_slice(tr, &model, dprefix, dhidden, 0, B);
        return;
    }
    transformer_reserve_private(tr, nt);
#pragma omp parallel num_threads(nt)
    {
        int k = omp_get_thread_num(), nth = omp_get_num_threads(), b0 = build_slice_start(B, k, nth);
        TransformerGrads g = k ? private_grads(tr, k) : model;
        if (k) memset(tr->priv + (size_t)(k - 1) * tr->grad_floats, 0, tr->grad_floats * sizeof(float));
        transformer_backward_slice(tr, &g, dprefix, dhidden, b0, build_slice_start(B, k + 1, nth) - b0);
#pragma omp barrier
        int nf = tr->cfg.n_blocks_built * BLOCK_N_PARAMS + 4;
        float **f[nf];
        size_t n[nf], off = 0;
        grad_fields(tr, &model, f, n);
        for (int i = 0; i < nf; off += n[i], i++) build_reduce_private(*f[i], tr->priv, tr->grad_floats, nth - 1, off, n[i]);
    }
}

/* Per row of the forest: residual x, ln, qkv (3), atty, proj, fch and its GELU (4 each) [C each],
 * LayerNorm mean/rstd [1 each]. */
enum { FOREST_FLOATS_PER_C = 1 + 1 + 3 + 1 + 1 + 4 + 4, FOREST_FLOATS_PER_ROW = 2 };

size_t transformer_forest_work_floats(const Transformer *tr, int N) {
    return (size_t)N * ((size_t)FOREST_FLOATS_PER_C * tr->cfg.width + FOREST_FLOATS_PER_ROW);
}

void transformer_forest_forward(const Transformer *tr, float *hidden, float *work, const float *prefix, const int *token,
                                const int *parent, int N) {
    const TransformerConfig *cfg = &tr->cfg;
    int C = cfg->width, NH = cfg->heads;
    size_t NC = (size_t)N * C;
    float *x = work, *ln = x + NC, *qkv = ln + NC, *atty = qkv + 3 * NC, *proj = atty + NC, *fch = proj + NC;
    float *fchg = fch + 4 * NC, *mean = fchg + 4 * NC, *rstd = mean + N;
    int *depth = mallocCheck((size_t)N * sizeof *depth);
    for (int r = 0; r < N; r++) {
        CHECK(parent[r] < r, "forest row %d: parent %d is not an earlier row", r, parent[r]);
        depth[r] = parent[r] < 0 ? 0 : depth[parent[r]] + 1;
        CHECK(depth[r] < tr->S, "forest row %d at position %d, context %d", r, depth[r], tr->S);
        CHECK(token[r] < cfg->vocab, "token id %d outside [0, %d)", token[r], cfg->vocab);
        const float *in = token[r] < 0 ? prefix + (size_t)r * C : tr->wte + (size_t)token[r] * C;
        const float *pos = tr->wpe + (size_t)depth[r] * C;
        for (int i = 0; i < C; i++) x[(size_t)r * C + i] = in[i] + pos[i];
    }
    free(depth);
    for (int l = 0; l < cfg->n_blocks_built; l++) {
        const BlockParams *p = &tr->blocks[l].p;
        ops_layernorm_forward(ln, mean, rstd, x, p->ln1w, p->ln1b, N, C, TRANSFORMER_LN_EPS);
        ops_linear_forward(qkv, ln, p->qkvw, p->qkvb, N, C, 3 * C);
        ops_attention_tree_forward(atty, qkv, parent, N, C, NH);
        ops_linear_forward(proj, atty, p->projw, p->projb, N, C, C);
        ops_add_forward(x, x, proj, NC);
        ops_layernorm_forward(ln, mean, rstd, x, p->ln2w, p->ln2b, N, C, TRANSFORMER_LN_EPS);
        ops_linear_forward(fch, ln, p->fcw, p->fcb, N, C, 4 * C);
        ops_gelu_forward(fchg, fch, 4 * NC);
        ops_linear_forward(proj, fchg, p->fcprojw, p->fcprojb, N, 4 * C, C);
        ops_add_forward(x, x, proj, NC);
    }
    ops_layernorm_forward(hidden, mean, rstd, x, tr->lnfw, tr->lnfb, N, C, TRANSFORMER_LN_EPS);
}

const float *transformer_wte(const Transformer *tr) { return tr->wte; }
float *transformer_dwte(const Transformer *tr) { return tr->dwte; }

void transformer_free(Transformer *tr) {
    if (!tr) return;
    build_acts_free(&tr->acts);
    free(tr->blocks);
    free(tr->dp_model);
    free(tr->priv);
    free(tr->priv_dp);
    free(tr);
}
