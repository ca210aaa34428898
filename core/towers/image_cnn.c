/* image_cnn.c — the staged CNN image tower (see image_cnn.h for the architecture).
 *
 * Every conv is one ImageConv record: its parameters, its activations (ReLU output; with norm the
 * conv output and the normalised output with saved statistics) and the gradients of the ReLU's
 * input. Without norm the conv writes into the ReLU output's buffer and the residual add and the
 * ReLU run in place there: the ReLU backward needs only its output (out > 0 exactly where its
 * input was), so nothing else is kept.
 * On T OpenMP threads the tower is data-parallel (build.h: one batch slice per thread, private
 * parameter gradients summed in thread order). Splitting every small product across both cores
 * instead left them waiting at a barrier per op.
 * Deliberately left out: in-place activations (memory is traded for simple, separately checked
 * kernels).
 */
#include "towers/image_cnn.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "ops/ops.h"
#include "towers/build.h"

#define IMAGE_LN_EPS 1e-5f
#define IMAGE_TAP_STEM "img.stage"

typedef struct {
    int C, OC, H, OH, stride; /* input [B, H, H, C] -> output [B, OH, OH, OC] */
    int residual;             /* out = relu(normed + input) */
    int norm;
    size_t grad_off; /* offset of this conv's gradients in a thread's private copy */
    /* weight [OC, 3, 3, C]; bias [OC] (only without norm: a norm's bias replaces it); norm gain/bias [OC] */
    float *w, *b, *nw, *nb;
    float *dw, *db, *dnw, *dnb;
    /* conv (value with norm only), normed, out [B, OH, OH, OC]; mean, rstd [B, OH, OH] */
    float *conv, *normed, *mean, *rstd, *out;
    float *dconv, *dnormed, *dout; /* dout: the last conv's only */
} ImageConv;

struct ImageTower {
    ImageTowerConfig cfg;
    int n_built; /* stages built = the tap's stage */
    int n_convs;
    ImageConv *convs;
    float *pooled[IMAGE_TOWER_MAX_STAGES]; /* [B, widths[k]] */
    char tap_names[IMAGE_TOWER_MAX_STAGES][TENSOR_NAME_MAX];
    /* conv scratch: thread k of a slice from sample b0 owns scratch_fixed floats at
     * k * scratch_fixed + b0 * scratch_ps (its part independent of the batch) and scratch_ps floats
     * per sample after them (ops_conv2d_scratch_floats is affine in N); the largest conv's parts,
     * for scratch_threads threads, so slices never overlap */
    float *scratch;
    size_t scratch_fixed, scratch_ps;
    int scratch_threads;
    size_t grad_floats; /* parameter gradients of all convs, laid out at their grad_off */
    float *priv;        /* [n_priv, grad_floats]: threads 1.. accumulate their slice's gradients here */
    int n_priv;
    const float *images;
    BuildActs acts;
};

static int image_config_check(const ImageTowerConfig *cfg, Err *err) {
    if (cfg->n_stages < 1 || cfg->n_stages > IMAGE_TOWER_MAX_STAGES)
        return err_set(err, "image tower: n_stages must be in 1..%d, got %d", IMAGE_TOWER_MAX_STAGES, cfg->n_stages);
    for (int k = 0; k < cfg->n_stages; k++)
        if (cfg->widths[k] < 1)
            return err_set(err, "image tower: width of stage %d must be >= 1, got %d", k + 1, cfg->widths[k]);
    if (cfg->convs_per_stage < 1)
        return err_set(err, "image tower: convs_per_stage must be >= 1, got %d", cfg->convs_per_stage);
    if (cfg->norm != IMAGE_NORM_NONE && cfg->norm != IMAGE_NORM_LAYER)
        return err_set(err, "image tower: norm must be 0 (none) or 1 (layer), got %d", cfg->norm);
    if (cfg->image_size < 1 || cfg->in_channels < 1)
        return err_set(err, "image tower: image_size and in_channels must be >= 1, got %d and %d", cfg->image_size,
                       cfg->in_channels);
    return 0;
}

/* Stage index (1-based) named by tap, "" meaning the last; 0 after setting err. */
static int image_tap_resolve(const ImageTowerConfig *cfg, const char *tap, Err *err) {
    if (!tap[0]) return cfg->n_stages;
    int k = build_parse_numbered(tap, IMAGE_TAP_STEM, cfg->n_stages);
    if (!k) {
        char valid[ERR_MSG_MAX / 2];
        build_numbered_list(valid, sizeof valid, IMAGE_TAP_STEM, cfg->n_stages);
        build_err_unknown(err, "tap", tap, valid);
    }
    return k;
}

static void image_conv_declare(ImageConv *cv, int s, int j, int last, Tensors *params, BuildActs *ba) {
    size_t n_out = (size_t)cv->OH * cv->OH * cv->OC;
    build_param(params, &cv->w, &cv->dw, 0, 4, (int[]){cv->OC, 3, 3, cv->C}, "img.stage%d.conv%d.weight", s, j);
    if (cv->norm) {
        build_param(params, &cv->nw, &cv->dnw, TENSOR_NO_DECAY, 1, &cv->OC, "img.stage%d.conv%d.norm.weight", s, j);
        build_param(params, &cv->nb, &cv->dnb, TENSOR_NO_DECAY, 1, &cv->OC, "img.stage%d.conv%d.norm.bias", s, j);
    } else {
        build_param(params, &cv->b, &cv->db, TENSOR_NO_DECAY, 1, &cv->OC, "img.stage%d.conv%d.bias", s, j);
    }
    /* the conv output's value is kept only as the LayerNorm's input; otherwise the conv writes
     * straight into out, and the residual add and the ReLU run in place there. The gradient of the
     * ReLU's input (dconv, or dnormed after a LayerNorm) is written whole by the next conv's
     * backward (OPS_OVERWRITE), so only the last conv's, which the pool's accumulates into, and the
     * LayerNorm's dconv are zeroed each step */
    if (!cv->norm && !last)
        build_act_written(ba, NULL, &cv->dconv, n_out, "img.stage%d.conv%d.conv", s, j);
    else
        build_act(ba, cv->norm ? &cv->conv : NULL, &cv->dconv, n_out, "img.stage%d.conv%d.conv", s, j);
    if (cv->norm) {
        if (!last) build_act_written(ba, &cv->normed, &cv->dnormed, n_out, "img.stage%d.conv%d.normed", s, j);
        else build_act(ba, &cv->normed, &cv->dnormed, n_out, "img.stage%d.conv%d.normed", s, j);
        build_act(ba, &cv->mean, NULL, (size_t)cv->OH * cv->OH, "img.stage%d.conv%d.mean", s, j);
        build_act(ba, &cv->rstd, NULL, (size_t)cv->OH * cv->OH, "img.stage%d.conv%d.rstd", s, j);
    }
    /* only the last conv's output gradient is stored (from the pool); the others go straight to
     * the ReLU inputs (ops_conv2d_relu_backward) */
    build_act(ba, &cv->out, last ? &cv->dout : NULL, n_out, "img.stage%d.conv%d.out", s, j);
}

/* The conv scratch for slices on up to nt threads, faulted in now rather than in a step. */
static void image_scratch_reserve(ImageTower *t, int nt) {
    if (t->scratch && nt <= t->scratch_threads) return;
    size_t n = (size_t)nt * t->scratch_fixed + (size_t)t->acts.max_batch * t->scratch_ps;
    free(t->scratch);
    t->scratch = mallocCheck((n ? n : 1) * sizeof(float));
    memset(t->scratch, 0, (n ? n : 1) * sizeof(float));
    t->scratch_threads = nt;
}

/* Thread k's conv scratch for its slice from sample b0 (see ImageTower). */
static float *image_scratch(const ImageTower *t, int k, int b0) {
    return t->scratch + (size_t)k * t->scratch_fixed + (size_t)b0 * t->scratch_ps;
}

ImageTower *image_tower_create(const ImageTowerConfig *cfg, const char *tap, int max_batch, Tensors *params,
                               Tensors *acts, Err *err) {
    CHECK(max_batch > 0, "max_batch = %d", max_batch);
    if (image_config_check(cfg, err)) return NULL;
    int n_built = image_tap_resolve(cfg, tap, err);
    if (!n_built) return NULL;

    ImageTower *t = callocCheck(1, sizeof *t);
    t->cfg = *cfg;
    t->n_built = n_built;
    t->n_convs = n_built * cfg->convs_per_stage;
    t->convs = callocCheck((size_t)t->n_convs, sizeof *t->convs);
    build_acts_init(&t->acts, acts, max_batch);
    int C = cfg->in_channels, H = cfg->image_size;
    for (int s = 0; s < n_built; s++) {
        for (int j = 0; j < cfg->convs_per_stage; j++) {
            ImageConv *cv = &t->convs[s * cfg->convs_per_stage + j];
            cv->C = C;
            cv->OC = cfg->widths[s];
            cv->H = H;
            cv->stride = (s > 0 && j == 0) ? 2 : 1;
            cv->OH = (H + 2 - 3) / cv->stride + 1;
            cv->residual = cfg->residual && j > 0;
            cv->norm = cfg->norm == IMAGE_NORM_LAYER;
            image_conv_declare(cv, s + 1, j + 1, s == n_built - 1 && j == cfg->convs_per_stage - 1, params,
                               &t->acts);
            size_t fixed = ops_conv2d_scratch_floats(0, H, H, C, cv->OC, 3, cv->stride, 1);
            size_t ps = ops_conv2d_scratch_floats(1, H, H, C, cv->OC, 3, cv->stride, 1) - fixed;
            if (fixed > t->scratch_fixed) t->scratch_fixed = fixed;
            if (ps > t->scratch_ps) t->scratch_ps = ps;
            cv->grad_off = t->grad_floats;
            t->grad_floats += (size_t)cv->OC * 9 * C + 2 * (size_t)cv->OC;
            C = cv->OC;
            H = cv->OH;
        }
        snprintf(t->tap_names[s], sizeof t->tap_names[s], IMAGE_TAP_STEM "%d", s + 1);
        build_act(&t->acts, &t->pooled[s], NULL, (size_t)C, "img.stage%d.pooled", s + 1);
    }
    image_scratch_reserve(t, omp_get_max_threads());
    return t;
}

void image_tower_init(ImageTower *t, Rng *rng) {
    for (int i = 0; i < t->n_convs; i++) {
        ImageConv *cv = &t->convs[i];
        /* Kaiming normal, fan-in, ReLU gain: keeps activation scale through depth */
        rng_fill_normal(rng, cv->w, (long)cv->OC * 9 * cv->C, sqrtf(2.0f / (9.0f * cv->C)));
        if (cv->norm) {
            build_fill_const(cv->nw, (size_t)cv->OC, 1.0f);
            build_fill_const(cv->nb, (size_t)cv->OC, 0.0f);
        } else {
            build_fill_const(cv->b, (size_t)cv->OC, 0.0f);
        }
    }
}

int image_tower_dim(const ImageTower *t) { return t->cfg.widths[t->n_built - 1]; }
int image_tower_n_taps(const ImageTower *t) { return t->n_built; }

const char *image_tower_tap_name(const ImageTower *t, int k) {
    CHECK(k >= 0 && k < t->n_built, "tap %d of %d", k, t->n_built);
    return t->tap_names[k];
}

int image_tower_tap_dim(const ImageTower *t, int k) {
    CHECK(k >= 0 && k < t->n_built, "tap %d of %d", k, t->n_built);
    return t->cfg.widths[k];
}

const float *image_tower_tap_features(const ImageTower *t, int k) {
    CHECK(k >= 0 && k < t->n_built, "tap %d of %d", k, t->n_built);
    return t->pooled[k];
}

/* base + b0 samples of per_sample floats (NULL stays NULL): a slice of a batch-first buffer. */
static float *slice(float *base, int b0, size_t per_sample) { return base ? base + (size_t)b0 * per_sample : NULL; }

/* Samples [b0, b0 + nb) through every built conv. Each sample's chain is independent of the
 * others', so slices of one batch can run on different threads with no synchronisation. */
static void image_forward_slice(ImageTower *t, const float *images, int b0, int nb, float *scratch) {
    int per_stage = t->cfg.convs_per_stage;
    for (int i = 0; i < t->n_convs; i++) {
        ImageConv *cv = &t->convs[i];
        size_t in_ps = (size_t)cv->H * cv->H * cv->C, out_ps = (size_t)cv->OH * cv->OH * cv->OC;
        size_t n = (size_t)nb * out_ps;
        const float *x = i == 0 ? images + (size_t)b0 * in_ps : slice(t->convs[i - 1].out, b0, in_ps);
        float *out = slice(cv->out, b0, out_ps), *conv = cv->norm ? slice(cv->conv, b0, out_ps) : out;
        /* with nothing between the conv and its ReLU, the conv applies it as it stores */
        const int fused = !cv->norm && !cv->residual;
        ops_conv2d_forward(conv, scratch, x, cv->w, cv->b, nb, cv->H, cv->H, cv->C, cv->OC, 3, cv->stride, 1,
                           fused ? OPS_RELU : OPS_IDENTITY);
        const float *a = conv;
        if (cv->norm) {
            float *normed = slice(cv->normed, b0, out_ps);
            ops_layernorm_forward(normed, slice(cv->mean, b0, out_ps / cv->OC), slice(cv->rstd, b0, out_ps / cv->OC),
                                  conv, cv->nw, cv->nb, nb * cv->OH * cv->OH, cv->OC, IMAGE_LN_EPS);
            a = normed;
        }
        if (cv->residual) {
            ops_add_forward(out, a, x, n);
            a = out;
        }
        if (!fused) ops_relu_forward(out, a, n); /* in place unless a is the normed output */
        if (i % per_stage == per_stage - 1)
            ops_global_avgpool_forward(slice(t->pooled[i / per_stage], b0, (size_t)cv->OC), out, nb, cv->OH, cv->OH,
                                       cv->OC);
    }
}

/* Where one thread's parameter gradients go: the model's own (thread 0), or the thread's private
 * copy (priv, laid out at each conv's grad_off), summed into the model's after the slices. */
typedef struct {
    float *dw, *db, *dnw, *dnb;
} ConvGrads;

static ConvGrads conv_grads(const ImageConv *cv, float *priv) {
    if (!priv) return (ConvGrads){cv->dw, cv->db, cv->dnw, cv->dnb};
    float *w = priv + cv->grad_off, *rest = w + (size_t)cv->OC * 9 * cv->C;
    return cv->norm ? (ConvGrads){w, NULL, rest, rest + cv->OC} : (ConvGrads){w, rest, NULL, NULL};
}

/* The gradient of conv i's ReLU input (its sum, normed or conv output, whichever the ReLU read). */
static float *relu_input_grad(const ImageConv *cv) { return cv->norm ? cv->dnormed : cv->dconv; }

/* The backward of samples [b0, b0 + nb), dfeat being the whole batch's [B, dim]; zeroes the slice's
 * accumulated activation gradients first (build_act_written ones are overwritten instead). Only the last conv runs a ReLU backward of its
 * own: every other conv's ReLU is differentiated inside the next conv's col2im
 * (ops_conv2d_relu_backward), which writes the gradient of that ReLU's input directly. */
static void image_backward_slice(ImageTower *t, const float *dfeat, int b0, int nb, float *priv, float *scratch) {
    ImageConv *last = &t->convs[t->n_convs - 1];
    size_t last_ps = (size_t)last->OH * last->OH * last->OC;
    build_acts_zero_grads_slice(&t->acts, b0, nb);
    float *dlast = slice(last->dout, b0, last_ps);
    ops_global_avgpool_backward(dlast, dfeat + (size_t)b0 * last->OC, nb, last->OH, last->OH, last->OC);
    ops_relu_backward(slice(relu_input_grad(last), b0, last_ps), dlast, slice(last->out, b0, last_ps),
                      (size_t)nb * last_ps);
    for (int i = t->n_convs - 1; i >= 0; i--) {
        ImageConv *cv = &t->convs[i];
        size_t in_ps = (size_t)cv->H * cv->H * cv->C, out_ps = (size_t)cv->OH * cv->OH * cv->OC;
        size_t n = (size_t)nb * out_ps;
        const float *x = i == 0 ? t->images + (size_t)b0 * in_ps : slice(t->convs[i - 1].out, b0, in_ps);
        float *dx = i == 0 ? NULL : slice(relu_input_grad(&t->convs[i - 1]), b0, in_ps);
        float *dconv = slice(cv->dconv, b0, out_ps), *dnormed = slice(cv->dnormed, b0, out_ps);
        ConvGrads g = conv_grads(cv, priv);
        /* da (d of this conv's ReLU input) is complete here: the next conv and its skip path wrote it */
        const float *da = cv->norm ? dnormed : dconv;
        if (cv->norm)
            ops_layernorm_backward(dconv, g.dnw, g.dnb, dnormed, slice(cv->conv, b0, out_ps), cv->nw,
                                   slice(cv->mean, b0, out_ps / cv->OC), slice(cv->rstd, b0, out_ps / cv->OC),
                                   nb * cv->OH * cv->OH, cv->OC);
        if (i == 0) /* the images are no ReLU output and need no gradient */
            ops_conv2d_backward(NULL, g.dw, g.db, scratch, dconv, x, cv->w, nb, cv->H,
                                cv->H, cv->C, cv->OC, 3, cv->stride, 1);
        else
            ops_conv2d_relu_backward(dx, g.dw, g.db, scratch, dconv, x, cv->w, nb,
                                     cv->H, cv->H, cv->C, cv->OC, 3, cv->stride, 1, OPS_OVERWRITE);
        /* the residual's skip path: d(input) += d(sum), through the previous ReLU (input = its
         * output); after the conv's backward, which overwrites dx */
        if (cv->residual)
            for (size_t k = 0; k < n; k++) dx[k] += x[k] > 0.0f ? da[k] : 0.0f;
    }
}

const float *image_tower_forward(ImageTower *t, const float *images, int B) {
    CHECK(B > 0 && B <= t->acts.max_batch, "batch %d, max %d", B, t->acts.max_batch);
    t->images = images;
    int nt = build_threads(B);
    image_scratch_reserve(t, nt);
    if (nt == 1) {
        image_forward_slice(t, images, 0, B, t->scratch);
    } else {
#pragma omp parallel num_threads(nt)
        {
            int k = omp_get_thread_num(), n = omp_get_num_threads();
            int b0 = build_slice_start(B, k, n);
            image_forward_slice(t, images, b0, build_slice_start(B, k + 1, n) - b0, image_scratch(t, k, b0));
        }
    }
    return t->pooled[t->n_built - 1];
}

void image_tower_backward(ImageTower *t, const float *dfeat, int B) {
    CHECK(B > 0 && B <= t->acts.max_batch, "batch %d, max %d", B, t->acts.max_batch);
    int nt = build_threads(B);
    image_scratch_reserve(t, nt);
    if (nt == 1) {
        image_backward_slice(t, dfeat, 0, B, NULL, t->scratch);
        return;
    }
    if (t->n_priv < nt - 1) {
        free(t->priv);
        t->priv = mallocCheck((size_t)(nt - 1) * t->grad_floats * sizeof(float));
        t->n_priv = nt - 1;
    }
#pragma omp parallel num_threads(nt)
    {
        int k = omp_get_thread_num(), n = omp_get_num_threads(), b0 = build_slice_start(B, k, n);
        float *priv = k ? t->priv + (size_t)(k - 1) * t->grad_floats : NULL;
        if (priv) memset(priv, 0, t->grad_floats * sizeof(float));
        image_backward_slice(t, dfeat, b0, build_slice_start(B, k + 1, n) - b0, priv, image_scratch(t, k, b0));
#pragma omp barrier
        for (int i = 0; i < t->n_convs; i++) {
            const ImageConv *cv = &t->convs[i];
            size_t nw = (size_t)cv->OC * 9 * cv->C, G = t->grad_floats;
            build_reduce_private(cv->dw, t->priv, G, n - 1, cv->grad_off, nw);
            build_reduce_private(cv->db, t->priv, G, n - 1, cv->grad_off + nw, (size_t)cv->OC);
            build_reduce_private(cv->dnw, t->priv, G, n - 1, cv->grad_off + nw, (size_t)cv->OC);
            build_reduce_private(cv->dnb, t->priv, G, n - 1, cv->grad_off + nw + cv->OC, (size_t)cv->OC);
        }
    }
}

void image_tower_free(ImageTower *t) {
    if (!t) return;
    build_acts_free(&t->acts);
    free(t->convs);
    free(t->scratch);
    free(t->priv);
    free(t);
}

const char *image_tower_norm_name(int i) {
    static const char *const NORMS[] = {[IMAGE_NORM_NONE] = "none", [IMAGE_NORM_LAYER] = "layer"};
    return i >= 0 && i < (int)(sizeof NORMS / sizeof NORMS[0]) ? NORMS[i] : NULL;
}
