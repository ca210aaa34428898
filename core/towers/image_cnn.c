/* image_cnn.c — the staged CNN image tower (see image_cnn.h for the architecture).
 *
 * Every conv is one ImageConv record: its parameters, its activations (conv output, optional
 * normalised output with saved statistics, optional residual sum, ReLU output) and their
 * gradients. Buffers that a config does not need are not declared; the forward/backward alias
 * them away (no norm: "normed" is the conv output; no residual: "sum" is the normed output).
 * Deliberately left out: fused conv+ReLU kernels and in-place activations (memory is traded for
 * simple, separately checked kernels).
 */
#include "towers/image_cnn.h"

#include <cblas.h>
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
    /* weight [OC, 3, 3, C]; bias [OC] (only without norm: a norm's bias replaces it); norm gain/bias [OC] */
    float *w, *b, *nw, *nb;
    float *dw, *db, *dnw, *dnb;
    /* conv, normed, sum, out [B, OH, OH, OC]; mean, rstd [B, OH, OH] */
    float *conv, *normed, *mean, *rstd, *sum, *out;
    float *dconv, *dnormed, *dout;
} ImageConv;

struct ImageTower {
    ImageTowerConfig cfg;
    int n_built; /* stages built = the tap's stage */
    int n_convs;
    ImageConv *convs;
    float *pooled[IMAGE_TOWER_MAX_STAGES]; /* [B, widths[k]] */
    char tap_names[IMAGE_TOWER_MAX_STAGES][TENSOR_NAME_MAX];
    float *scratch; /* conv im2col scratch, sized for the largest conv at max_batch */
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

static void image_conv_declare(ImageConv *cv, int s, int j, Tensors *params, BuildActs *ba) {
    size_t n_out = (size_t)cv->OH * cv->OH * cv->OC;
    build_param(params, &cv->w, &cv->dw, 0, 4, (int[]){cv->OC, 3, 3, cv->C}, "img.stage%d.conv%d.weight", s, j);
    if (cv->norm) {
        build_param(params, &cv->nw, &cv->dnw, TENSOR_NO_DECAY, 1, &cv->OC, "img.stage%d.conv%d.norm.weight", s, j);
        build_param(params, &cv->nb, &cv->dnb, TENSOR_NO_DECAY, 1, &cv->OC, "img.stage%d.conv%d.norm.bias", s, j);
    } else {
        build_param(params, &cv->b, &cv->db, TENSOR_NO_DECAY, 1, &cv->OC, "img.stage%d.conv%d.bias", s, j);
    }
    build_act(ba, &cv->conv, &cv->dconv, n_out, "img.stage%d.conv%d.conv", s, j);
    if (cv->norm) {
        build_act(ba, &cv->normed, &cv->dnormed, n_out, "img.stage%d.conv%d.normed", s, j);
        build_act(ba, &cv->mean, NULL, (size_t)cv->OH * cv->OH, "img.stage%d.conv%d.mean", s, j);
        build_act(ba, &cv->rstd, NULL, (size_t)cv->OH * cv->OH, "img.stage%d.conv%d.rstd", s, j);
    }
    /* the ReLU's gradient goes straight to the normed output, so the sum needs no gradient */
    if (cv->residual) build_act(ba, &cv->sum, NULL, n_out, "img.stage%d.conv%d.sum", s, j);
    build_act(ba, &cv->out, &cv->dout, n_out, "img.stage%d.conv%d.out", s, j);
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
    size_t scratch = 0;
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
            image_conv_declare(cv, s + 1, j + 1, params, &t->acts);
            size_t need = ops_conv2d_scratch_floats(max_batch, H, H, C, cv->OC, 3, cv->stride, 1);
            if (need > scratch) scratch = need;
            C = cv->OC;
            H = cv->OH;
        }
        snprintf(t->tap_names[s], sizeof t->tap_names[s], IMAGE_TAP_STEM "%d", s + 1);
        build_act(&t->acts, &t->pooled[s], NULL, (size_t)C, "img.stage%d.pooled", s + 1);
    }
    t->scratch = mallocCheck((scratch ? scratch : 1) * sizeof(float));
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

const float *image_tower_forward(ImageTower *t, const float *images, int B) {
    CHECK(B > 0 && B <= t->acts.max_batch, "batch %d, max %d", B, t->acts.max_batch);
    t->images = images;
    int per_stage = t->cfg.convs_per_stage;
    for (int i = 0; i < t->n_convs; i++) {
        ImageConv *cv = &t->convs[i];
        const float *x = i == 0 ? images : t->convs[i - 1].out;
        size_t n = (size_t)B * cv->OH * cv->OH * cv->OC;
        ops_conv2d_forward(cv->conv, t->scratch, x, cv->w, cv->b, B, cv->H, cv->H, cv->C, cv->OC, 3, cv->stride, 1);
        const float *a = cv->conv;
        if (cv->norm) {
            ops_layernorm_forward(cv->normed, cv->mean, cv->rstd, cv->conv, cv->nw, cv->nb, B * cv->OH * cv->OH,
                                  cv->OC, IMAGE_LN_EPS);
            a = cv->normed;
        }
        if (cv->residual) {
            ops_add_forward(cv->sum, a, x, n);
            a = cv->sum;
        }
        ops_relu_forward(cv->out, a, n);
        if (i % per_stage == per_stage - 1)
            ops_global_avgpool_forward(t->pooled[i / per_stage], cv->out, B, cv->OH, cv->OH, cv->OC);
    }
    return t->pooled[t->n_built - 1];
}

void image_tower_backward(ImageTower *t, const float *dfeat, int B) {
    CHECK(B > 0 && B <= t->acts.max_batch, "batch %d, max %d", B, t->acts.max_batch);
    build_acts_zero_grads(&t->acts, B);
    ImageConv *last = &t->convs[t->n_convs - 1];
    ops_global_avgpool_backward(last->dout, dfeat, B, last->OH, last->OH, last->OC);
    for (int i = t->n_convs - 1; i >= 0; i--) {
        ImageConv *cv = &t->convs[i];
        const float *x = i == 0 ? t->images : t->convs[i - 1].out;
        float *dx = i == 0 ? NULL : t->convs[i - 1].dout;
        size_t n = (size_t)B * cv->OH * cv->OH * cv->OC;
        const float *a = cv->norm ? cv->normed : cv->conv;
        float *da = cv->norm ? cv->dnormed : cv->dconv;
        ops_relu_backward(da, cv->dout, cv->residual ? cv->sum : a, n);
        /* the residual's skip path: d(input) += d(sum), and d(sum) is what da holds so far */
        if (cv->residual) cblas_saxpy((int)n, 1.0f, da, 1, dx, 1);
        if (cv->norm)
            ops_layernorm_backward(cv->dconv, cv->dnw, cv->dnb, cv->dnormed, cv->conv, cv->nw, cv->mean, cv->rstd,
                                   B * cv->OH * cv->OH, cv->OC);
        ops_conv2d_backward(dx, cv->dw, cv->db, t->scratch, cv->dconv, x, cv->w, B, cv->H, cv->H, cv->C, cv->OC, 3,
                            cv->stride, 1);
    }
}

void image_tower_free(ImageTower *t) {
    if (!t) return;
    build_acts_free(&t->acts);
    free(t->convs);
    free(t->scratch);
    free(t);
}

const char *image_tower_norm_name(int i) {
    static const char *const NORMS[] = {[IMAGE_NORM_NONE] = "none", [IMAGE_NORM_LAYER] = "layer"};
    return i >= 0 && i < (int)(sizeof NORMS / sizeof NORMS[0]) ? NORMS[i] : NULL;
}
