/* test_towers.c — image CNN, transformer (with prefix) and text towers: forwards against plain-loop
 * references, end-to-end finite-difference checks of every parameter tensor (loss = sum(out * R)),
 * thread-count reproducibility of the image tower and the transformer, tap truncation, the cbow PAD mask, EOS causality, and the exact user-facing error messages. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/check.h"
#include "common/rng.h"
#include "common/tensors.h"
#include "ops/ops.h"
#include "gradcheck.h"
#include "towers/image_cnn.h"
#include "towers/text_tower.h"
#include "towers/transformer.h"

/* fp32 forwards, central differences; an element passes when |num - ana| <= atol + rtol * max.
 * Smooth models (transformer, cbow): eps 1e-2 keeps the fp32 round-off of the loss (~1e-6, divided
 * by 2 eps) well below atol, and the O(eps^2) truncation error is ~1e-4. ReLU CNNs: eps 3e-4 makes
 * a pre-activation crossing 0 inside the stencil rare, and the rare crossings are detected from the
 * one-sided slopes and not compared (gradcheck.h); the tests bound how many. */
static const GradcheckTol TOL_SMOOTH = {.eps = 1e-2f, .rtol = 1e-2, .atol = 1e-3, .samples = 6};
static const GradcheckTol TOL_RELU = {.eps = 3e-4f, .rtol = 1e-2, .atol = 1e-3, .samples = 6, .skip_kinks = 1};
/* The same tolerances with a wider step for towers of 16 channels: each output sums ~5x more fp32
 * terms than at 3-4 channels, and at eps 3e-4 their rounding moved a small weight gradient's
 * central difference by 7% (0.0188 vs 0.0171 under -O1; both one-sided differences were off too,
 * so no kink). A ReLU tower is piecewise linear, so a wider step adds no truncation error; kinks are
 * still caught one-sidedly (at 1e-3 the one kink's good side agrees to 3e-4). */
static const GradcheckTol TOL_RELU_WIDE = {.eps = 1e-3f, .rtol = 1e-2, .atol = 1e-3, .samples = 6, .skip_kinks = 1};

/* gradcheck_model on the tensors of params, with the tests' bound on skipped kinks */
static GradcheckStats harness_check(GradcheckModel *h, Tensors *params, const GradcheckTol *tol, Rng *rng) {
    h->R = malloc(h->n_out * sizeof(float));
    GradcheckStats st = gradcheck_model(h, params, tol, rng);
    print_message("gradcheck: %d elements of %d tensors, worst %.3f (%s), %d flat, %d kinks skipped\n", st.n_checked,
                  params->n, st.worst, st.worst_name, st.n_flat, st.n_kinks);
    assert_true(st.n_kinks * 10 <= st.n_checked); /* the check kept its power */
    return st;
}

static void fill_images(float *x, size_t n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    rng_fill_uniform(&r, x, (long)n, -1.0f, 1.0f);
}

/* ---- image tower ---- */

typedef struct {
    ImageTower *t;
    const float *images;
    int B;
} ImgModel;

static const float *img_fwd(void *m) {
    ImgModel *im = m;
    return image_tower_forward(im->t, im->images, im->B);
}
static void img_bwd(void *m, const float *dout) {
    ImgModel *im = m;
    image_tower_backward(im->t, dout, im->B);
}

static ImageTower *img_build(const ImageTowerConfig *cfg, const char *tap, int B, Tensors *p, Tensors *a, uint64_t seed) {
    tensors_init(p, 4);
    tensors_init(a, 2);
    Err err = {""};
    ImageTower *t = image_tower_create(cfg, tap, B, p, a, &err);
    assert_non_null(t);
    tensors_alloc(p);
    tensors_alloc(a);
    Rng r;
    rng_init(&r, seed);
    image_tower_init(t, &r);
    return t;
}

/* Plain-loop reference of the whole tower (naive conv, explicit LN / residual / ReLU / mean pool)
 * for sample-batch x; returns the pooled features of every stage into feats[k]. */
static void img_reference(float **feats, const ImageTowerConfig *cfg, const Tensors *p, const float *x, int B) {
    int C = cfg->in_channels, H = cfg->image_size;
    float *cur = malloc((size_t)B * H * H * C * sizeof(float));
    memcpy(cur, x, (size_t)B * H * H * C * sizeof(float));
    char name[64];
    for (int s = 0; s < cfg->n_stages; s++) {
        for (int j = 0; j < cfg->convs_per_stage; j++) {
            int OC = cfg->widths[s], stride = (s > 0 && j == 0) ? 2 : 1, OH = (H - 1) / stride + 1;
            size_t n = (size_t)B * OH * OH * OC;
            float *y = malloc(n * sizeof(float));
            snprintf(name, sizeof name, "img.stage%d.conv%d.weight", s + 1, j + 1);
            const float *w = tensors_ptr(p, TBUF_VALUE, tensors_find(p, name));
            snprintf(name, sizeof name, "img.stage%d.conv%d.bias", s + 1, j + 1);
            const float *bias = cfg->norm ? NULL : tensors_ptr(p, TBUF_VALUE, tensors_find(p, name));
            ops_conv2d_forward_naive(y, cur, w, bias, B, H, H, C, OC, 3, stride, 1);
            if (cfg->norm) {
                snprintf(name, sizeof name, "img.stage%d.conv%d.norm.weight", s + 1, j + 1);
                const float *g = tensors_ptr(p, TBUF_VALUE, tensors_find(p, name));
                snprintf(name, sizeof name, "img.stage%d.conv%d.norm.bias", s + 1, j + 1);
                const float *be = tensors_ptr(p, TBUF_VALUE, tensors_find(p, name));
                for (size_t r = 0; r < n / OC; r++) {
                    double m = 0, v = 0;
                    for (int c = 0; c < OC; c++) m += y[r * OC + c];
                    m /= OC;
                    for (int c = 0; c < OC; c++) v += (y[r * OC + c] - m) * (y[r * OC + c] - m);
                    double rs = 1.0 / sqrt(v / OC + 1e-5);
                    for (int c = 0; c < OC; c++) y[r * OC + c] = (float)((y[r * OC + c] - m) * rs * g[c] + be[c]);
                }
            }
            for (size_t i = 0; i < n; i++) {
                float v = y[i] + ((cfg->residual && j > 0) ? cur[i] : 0.0f);
                y[i] = v > 0 ? v : 0;
            }
            free(cur);
            cur = y;
            C = OC;
            H = OH;
        }
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                double m = 0;
                for (int i = 0; i < H * H; i++) m += cur[((size_t)b * H * H + i) * C + c];
                feats[s][b * C + c] = (float)(m / (H * H));
            }
    }
    free(cur);
}

static void img_forward_matches_reference(const ImageTowerConfig *cfg) {
    int B = 3;
    Tensors p, a;
    ImageTower *t = img_build(cfg, "", B, &p, &a, 7);
    size_t nx = (size_t)B * cfg->image_size * cfg->image_size * cfg->in_channels;
    float *x = malloc(nx * sizeof(float));
    fill_images(x, nx, 3);
    float *feats[IMAGE_TOWER_MAX_STAGES];
    for (int s = 0; s < cfg->n_stages; s++) feats[s] = malloc((size_t)B * cfg->widths[s] * sizeof(float));
    img_reference(feats, cfg, &p, x, B);
    image_tower_forward(t, x, B);
    assert_int_equal(image_tower_n_taps(t), cfg->n_stages);
    for (int s = 0; s < cfg->n_stages; s++) {
        const float *f = image_tower_tap_features(t, s);
        double ref_norm = 0;
        for (int i = 0; i < B * cfg->widths[s]; i++) {
            assert_true(fabsf(f[i] - feats[s][i]) <= 1e-4f + 1e-4f * fabsf(feats[s][i]));
            ref_norm += fabs(feats[s][i]);
        }
        assert_true(ref_norm > 1e-3); /* the features are not trivially zero */
        free(feats[s]);
    }
    free(x);
    image_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_image_forward_plain_matches_reference(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 3, .widths = {3, 4, 4}, .convs_per_stage = 1, .image_size = 8, .in_channels = 3};
    img_forward_matches_reference(&cfg);
}

static void test_image_forward_residual_layernorm_matches_reference(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 2, .widths = {4, 5}, .convs_per_stage = 3, .residual = 1,
                            .norm = IMAGE_NORM_LAYER, .image_size = 7, .in_channels = 2};
    img_forward_matches_reference(&cfg);
}

static void img_gradcheck(const ImageTowerConfig *cfg, int B, const GradcheckTol *tol) {
    Tensors p, a;
    ImageTower *t = img_build(cfg, "", B, &p, &a, 11);
    size_t nx = (size_t)B * cfg->image_size * cfg->image_size * cfg->in_channels;
    float *x = malloc(nx * sizeof(float));
    fill_images(x, nx, 5);
    ImgModel m = {t, x, B};
    GradcheckModel h = {img_fwd, img_bwd, &m, (size_t)B * image_tower_dim(t), NULL};
    Rng r;
    rng_init(&r, 99);
    GradcheckStats st = harness_check(&h, &p, tol, &r);
    assert_int_equal(st.n_failed, 0);
    assert_int_equal(st.n_flat, 0);
    free(h.R);
    free(x);
    image_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_image_gradcheck_plain(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 3, .widths = {3, 4, 4}, .convs_per_stage = 1, .image_size = 8, .in_channels = 3};
    img_gradcheck(&cfg, 2, &TOL_RELU);
}

static void test_image_gradcheck_residual(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 2, .widths = {3, 4}, .convs_per_stage = 2, .residual = 1, .image_size = 8,
                            .in_channels = 3};
    img_gradcheck(&cfg, 2, &TOL_RELU);
}

static void test_image_gradcheck_layernorm_residual(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 2, .widths = {3, 4}, .convs_per_stage = 2, .residual = 1,
                            .norm = IMAGE_NORM_LAYER, .image_size = 8, .in_channels = 3};
    img_gradcheck(&cfg, 3, &TOL_RELU);
}

/* Widths of 16 take the direct kernels, whose input gradient overwrites the previous ReLU input's
 * gradient (OPS_OVERWRITE) instead of accumulating into a zeroed one: with a residual the skip path
 * adds into the same buffer after it, and a LayerNorm's dconv is still accumulated. */
static void test_image_gradcheck_direct_residual(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 2, .widths = {16, 16}, .convs_per_stage = 2, .residual = 1, .image_size = 6,
                            .in_channels = 3};
    assert_true(ops_conv2d_direct_dinp_ok(3, 1, 1, cfg.widths[0]));
    img_gradcheck(&cfg, 2, &TOL_RELU_WIDE);
    cfg.norm = IMAGE_NORM_LAYER;
    img_gradcheck(&cfg, 2, &TOL_RELU_WIDE);
}

/* The tower runs one batch slice per OpenMP thread and sums the threads' parameter gradients in
 * thread order: two runs on 2 threads are bitwise equal, and agree with 1 thread up to summation
 * order. B = 5 splits unevenly (2 + 3); with residual + LayerNorm every gradient kind is summed. */
static void img_step(ImageTower *t, Tensors *p, const float *x, const float *dfeat, int B, int threads, float *feat,
                     float *grads) {
    omp_set_num_threads(threads);
    tensors_zero(p, TBUF_GRAD);
    size_t nf = (size_t)B * image_tower_dim(t);
    memcpy(feat, image_tower_forward(t, x, B), nf * sizeof(float));
    image_tower_backward(t, dfeat, B);
    memcpy(grads, p->buf[TBUF_GRAD], p->total * sizeof(float));
}

static void test_image_threads_reproducible(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 2, .widths = {3, 4}, .convs_per_stage = 2, .residual = 1,
                            .norm = IMAGE_NORM_LAYER, .image_size = 8, .in_channels = 3};
    const int B = 5, saved = omp_get_max_threads();
    Tensors p, a;
    ImageTower *t = img_build(&cfg, "", B, &p, &a, 11);
    size_t nx = (size_t)B * 8 * 8 * 3, nf = (size_t)B * image_tower_dim(t);
    float *x = malloc(nx * sizeof(float)), *dfeat = malloc(nf * sizeof(float)), *f[3], *g[3];
    fill_images(x, nx, 5);
    fill_images(dfeat, nf, 6);
    for (int k = 0; k < 3; k++) {
        f[k] = malloc(nf * sizeof(float));
        g[k] = malloc(p.total * sizeof(float));
        img_step(t, &p, x, dfeat, B, k == 2 ? 1 : 2, f[k], g[k]);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(f[0], f[1], nf * sizeof(float));
    assert_memory_equal(g[0], g[1], p.total * sizeof(float));
    for (size_t i = 0; i < nf; i++) assert_true(fabsf(f[0][i] - f[2][i]) <= 1e-5f + 1e-5f * fabsf(f[2][i]));
    for (size_t i = 0; i < p.total; i++) assert_true(fabsf(g[0][i] - g[2][i]) <= 1e-5f + 1e-4f * fabsf(g[2][i]));
    for (int k = 0; k < 3; k++) free(f[k]), free(g[k]);
    free(x);
    free(dfeat);
    image_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_image_tap_truncation(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 3, .widths = {3, 4, 6}, .convs_per_stage = 2, .residual = 1,
                            .image_size = 8, .in_channels = 3};
    int B = 2;
    Tensors pf, af, pt, at;
    ImageTower *full = img_build(&cfg, "img.stage3", B, &pf, &af, 1);
    ImageTower *trunc = img_build(&cfg, "img.stage2", B, &pt, &at, 2);
    assert_int_equal(image_tower_n_taps(trunc), 2);
    assert_int_equal(image_tower_dim(trunc), 4);
    assert_string_equal(image_tower_tap_name(trunc, 1), "img.stage2");
    assert_int_equal(image_tower_tap_dim(full, 2), 6);
    assert_int_equal(pt.n, 8); /* 2 stages x 2 convs x (weight, bias) */
    assert_int_equal(tensors_find(&pt, "img.stage3.conv1.weight"), -1);
    /* same weights by name (the truncated model was initialised from another seed) */
    for (int i = 0; i < pt.n; i++) {
        int j = tensors_find(&pf, pt.info[i].name);
        assert_true(j >= 0);
        memcpy(tensors_ptr(&pt, TBUF_VALUE, i), tensors_ptr(&pf, TBUF_VALUE, j), pt.info[i].count * sizeof(float));
    }
    size_t nx = (size_t)B * 8 * 8 * 3;
    float *x = malloc(nx * sizeof(float));
    fill_images(x, nx, 9);
    image_tower_forward(full, x, B);
    const float *ft = image_tower_forward(trunc, x, B);
    assert_memory_equal(ft, image_tower_tap_features(full, 1), (size_t)B * 4 * sizeof(float));
    assert_memory_equal(image_tower_tap_features(trunc, 0), image_tower_tap_features(full, 0), (size_t)B * 3 * sizeof(float));
    free(x);
    image_tower_free(full);
    image_tower_free(trunc);
    tensors_free(&pf);
    tensors_free(&af);
    tensors_free(&pt);
    tensors_free(&at);
}

static void expect_image_error(const ImageTowerConfig *cfg, const char *tap, const char *msg) {
    Tensors p, a;
    tensors_init(&p, 4);
    tensors_init(&a, 2);
    Err err = {""};
    assert_null(image_tower_create(cfg, tap, 2, &p, &a, &err));
    assert_string_equal(err.msg, msg);
    assert_int_equal(p.n, 0); /* nothing declared on error */
    assert_int_equal(a.n, 0);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_image_errors(void **state) {
    (void)state;
    ImageTowerConfig cfg = {.n_stages = 4, .widths = {32, 64, 128, 256}, .convs_per_stage = 1, .image_size = 32,
                            .in_channels = 3};
    expect_image_error(&cfg, "img.stage9", "unknown tap 'img.stage9'; valid: img.stage1, img.stage2, img.stage3, img.stage4");
    expect_image_error(&cfg, "img.stage0", "unknown tap 'img.stage0'; valid: img.stage1, img.stage2, img.stage3, img.stage4");
    expect_image_error(&cfg, "txt.block1", "unknown tap 'txt.block1'; valid: img.stage1, img.stage2, img.stage3, img.stage4");
    ImageTowerConfig bad = cfg;
    bad.n_stages = 9;
    expect_image_error(&bad, "", "image tower: n_stages must be in 1..8, got 9");
    bad = cfg;
    bad.widths[2] = 0;
    expect_image_error(&bad, "", "image tower: width of stage 3 must be >= 1, got 0");
    bad = cfg;
    bad.norm = 2;
    expect_image_error(&bad, "", "image tower: norm must be 0 (none) or 1 (layer), got 2");
    bad = cfg;
    bad.convs_per_stage = 0;
    expect_image_error(&bad, "", "image tower: convs_per_stage must be >= 1, got 0");
    bad = cfg;
    bad.image_size = 0;
    expect_image_error(&bad, "", "image tower: image_size and in_channels must be >= 1, got 0 and 3");
}

/* ---- transformer with prefix ---- */

typedef struct {
    Transformer *tr;
    const float *prefix;
    const int *tokens;
    float *dprefix;
    int B;
} TrModel;

static const float *tr_fwd(void *m) {
    TrModel *tm = m;
    return transformer_forward(tm->tr, tm->prefix, tm->tokens, tm->B);
}
static void tr_bwd(void *m, const float *dout) {
    TrModel *tm = m;
    transformer_backward(tm->tr, tm->dprefix, dout, tm->B);
}

/* Adds N(0, 0.3^2) to every parameter: weights far larger than GPT-2's 0.02 init and LayerNorm
 * gains away from 1, so attention, LayerNorm and GELU are exercised away from their near-linear
 * regime and every gain/bias visibly matters. */
static void perturb_params(Tensors *p, Rng *r) {
    for (int i = 0; i < p->n; i++) {
        float *v = tensors_ptr(p, TBUF_VALUE, i);
        for (size_t k = 0; k < p->info[i].count; k++) v[k] += 0.3f * rng_normal(r);
    }
}

static Transformer *tr_build(const TransformerConfig *cfg, const char *prefix, int B, Tensors *p, Tensors *a,
                             Rng *r) {
    tensors_init(p, 4);
    tensors_init(a, 2);
    Transformer *tr = transformer_create(cfg, prefix, B, p, a);
    tensors_alloc(p);
    tensors_alloc(a);
    transformer_init(tr, r);
    perturb_params(p, r);
    return tr;
}

static void fill_tokens(int *tokens, int n, int V, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (int i = 0; i < n; i++) tokens[i] = (int)rng_below(&r, (uint32_t)V);
}

/* Data-parallel like the image tower (build.h): with a prefix (its gradient is per sample) and
 * B = 5 split 2 + 3, two runs on 2 threads are bitwise equal and agree with 1 thread up to the
 * order of the gradient sums. */
static void tr_step(Transformer *tr, Tensors *p, const float *prefix, const int *tokens, const float *dh, int B,
                    int threads, float *hidden, float *dprefix, float *grads, size_t nh, size_t np) {
    omp_set_num_threads(threads);
    tensors_zero(p, TBUF_GRAD);
    memcpy(hidden, transformer_forward(tr, prefix, tokens, B), nh * sizeof(float));
    memset(dprefix, 0, np * sizeof(float));
    transformer_backward(tr, dprefix, dh, B);
    memcpy(grads, p->buf[TBUF_GRAD], p->total * sizeof(float));
}

static void test_transformer_threads_reproducible(void **state) {
    (void)state;
    TransformerConfig cfg = {.vocab = 11, .context = 5, .width = 8, .layers = 2, .heads = 2, .n_prefix = 2,
                             .n_blocks_built = 2};
    const int B = 5, S = 7, C = 8, saved = omp_get_max_threads();
    size_t nh = (size_t)B * S * C, np = (size_t)B * 2 * C;
    Tensors p, a;
    Rng r;
    rng_init(&r, 23);
    Transformer *tr = tr_build(&cfg, "cap", B, &p, &a, &r);
    float *prefix = malloc(np * sizeof(float)), *dh = malloc(nh * sizeof(float)), *h[3], *dp[3], *g[3];
    int tokens[5 * 5];
    fill_images(prefix, np, 7);
    fill_images(dh, nh, 8);
    fill_tokens(tokens, B * 5, 11, 9);
    for (int k = 0; k < 3; k++) {
        h[k] = malloc(nh * sizeof(float));
        dp[k] = malloc(np * sizeof(float));
        g[k] = malloc(p.total * sizeof(float));
        tr_step(tr, &p, prefix, tokens, dh, B, k == 2 ? 1 : 2, h[k], dp[k], g[k], nh, np);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(h[0], h[1], nh * sizeof(float));
    assert_memory_equal(dp[0], dp[1], np * sizeof(float));
    assert_memory_equal(g[0], g[1], p.total * sizeof(float));
    for (size_t i = 0; i < nh; i++) assert_true(fabsf(h[0][i] - h[2][i]) <= 1e-5f + 1e-5f * fabsf(h[2][i]));
    for (size_t i = 0; i < np; i++) assert_true(fabsf(dp[0][i] - dp[2][i]) <= 1e-5f + 1e-4f * fabsf(dp[2][i]));
    for (size_t i = 0; i < p.total; i++) assert_true(fabsf(g[0][i] - g[2][i]) <= 1e-5f + 1e-4f * fabsf(g[2][i]));
    for (int k = 0; k < 3; k++) free(h[k]), free(dp[k]), free(g[k]);
    free(prefix);
    free(dh);
    transformer_free(tr);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_transformer_prefix_gradcheck(void **state) {
    (void)state;
    TransformerConfig cfg = {.vocab = 11, .context = 5, .width = 8, .layers = 2, .heads = 2, .n_prefix = 2,
                             .n_blocks_built = 2};
    int B = 2, S = 7, C = 8;
    Tensors p, a;
    Rng r;
    rng_init(&r, 21);
    Transformer *tr = tr_build(&cfg, "cap", B, &p, &a, &r);
    assert_int_equal(p.n, 2 + 2 * 12 + 2);
    assert_true(tensors_find(&p, "cap.block2.mlp.proj.weight") >= 0);
    assert_int_equal(p.info[tensors_find(&p, "cap.wpe")].shape[0], S);
    float prefix[2 * 2 * 8], dprefix[2 * 2 * 8] = {0};
    rng_fill_normal(&r, prefix, 2 * 2 * 8, 1.0f);
    int tokens[2 * 5];
    fill_tokens(tokens, 10, 11, 4);
    TrModel m = {tr, prefix, tokens, dprefix, B};
    GradcheckModel h = {tr_fwd, tr_bwd, &m, (size_t)B * S * C, NULL};
    GradcheckStats st = harness_check(&h, &p, &TOL_SMOOTH, &r);
    assert_int_equal(st.n_failed, 0);
    assert_int_equal(st.n_flat, 0);
    /* the prefix gradient, every element */
    GradcheckTol all = TOL_SMOOTH;
    all.samples = 2 * 2 * 8;
    GradcheckStats sp = {0};
    gradcheck_array(&sp, "prefix", prefix, dprefix, 2 * 2 * 8, gradcheck_model_loss, &h, &all, &r);
    assert_int_equal(sp.n_checked, 32);
    assert_int_equal(sp.n_failed, 0);
    assert_int_equal(sp.n_flat, 0);
    free(h.R);
    transformer_free(tr);
    tensors_free(&p);
    tensors_free(&a);
}

/* Plain-loop reference of one forward (naive linear/attention, explicit LN, tanh GELU, adds). */
static void layernorm_ref(float *out, const float *x, const float *g, const float *b, int rows, int C) {
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[r * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
        double rs = 1.0 / sqrt(v / C + 1e-5);
        for (int c = 0; c < C; c++) out[r * C + c] = (float)((x[r * C + c] - m) * rs * g[c] + b[c]);
    }
}

static const float *pv(const Tensors *p, const char *fmt, int l) {
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    int i = tensors_find(p, name);
    assert_true(i >= 0);
    return tensors_ptr(p, TBUF_VALUE, i);
}

static void transformer_reference(float *out, const Tensors *p, const TransformerConfig *cfg, const float *prefix,
                                  const int *tokens, int B) {
    int C = cfg->width, P = cfg->n_prefix, T = cfg->context, S = P + T, BS = B * S;
    float *x = calloc((size_t)BS * C, sizeof(float)), *ln = malloc((size_t)BS * C * sizeof(float));
    float *qkv = malloc((size_t)BS * 3 * C * sizeof(float)), *y = malloc((size_t)BS * C * sizeof(float));
    float *h = malloc((size_t)BS * 4 * C * sizeof(float)), *o = malloc((size_t)BS * C * sizeof(float));
    const float *wte = pv(p, "t.wte", 0), *wpe = pv(p, "t.wpe", 0);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++)
            for (int c = 0; c < C; c++)
                x[((size_t)b * S + s) * C + c] = (s < P ? prefix[((size_t)b * P + s) * C + c]
                                                        : wte[(size_t)tokens[b * T + s - P] * C + c]) + wpe[s * C + c];
    for (int l = 1; l <= cfg->n_blocks_built; l++) {
        layernorm_ref(ln, x, pv(p, "t.block%d.ln1.weight", l), pv(p, "t.block%d.ln1.bias", l), BS, C);
        ops_linear_forward_naive(qkv, ln, pv(p, "t.block%d.attn.qkv.weight", l), pv(p, "t.block%d.attn.qkv.bias", l), BS, C, 3 * C);
        ops_attention_forward_naive(y, qkv, B, S, C, cfg->heads);
        ops_linear_forward_naive(o, y, pv(p, "t.block%d.attn.proj.weight", l), pv(p, "t.block%d.attn.proj.bias", l), BS, C, C);
        for (int i = 0; i < BS * C; i++) x[i] += o[i];
        layernorm_ref(ln, x, pv(p, "t.block%d.ln2.weight", l), pv(p, "t.block%d.ln2.bias", l), BS, C);
        ops_linear_forward_naive(h, ln, pv(p, "t.block%d.mlp.fc.weight", l), pv(p, "t.block%d.mlp.fc.bias", l), BS, C, 4 * C);
        for (int i = 0; i < BS * 4 * C; i++) {
            double u = h[i];
            h[i] = (float)(0.5 * u * (1.0 + tanh(sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u))));
        }
        ops_linear_forward_naive(o, h, pv(p, "t.block%d.mlp.proj.weight", l), pv(p, "t.block%d.mlp.proj.bias", l), BS, 4 * C, C);
        for (int i = 0; i < BS * C; i++) x[i] += o[i];
    }
    layernorm_ref(out, x, pv(p, "t.ln_f.weight", 0), pv(p, "t.ln_f.bias", 0), BS, C);
    free(x), free(ln), free(qkv), free(y), free(h), free(o);
}

static void test_transformer_forward_matches_reference(void **state) {
    (void)state;
    for (int built = 1; built <= 2; built++) {
        TransformerConfig cfg = {.vocab = 11, .context = 5, .width = 8, .layers = 2, .heads = 2, .n_prefix = 3,
                                 .n_blocks_built = built};
        int B = 2, S = 8, C = 8;
        Tensors p, a;
        Rng r;
        rng_init(&r, 5);
        Transformer *tr = tr_build(&cfg, "t", B, &p, &a, &r);
        float prefix[2 * 3 * 8], ref[2 * 8 * 8];
        rng_fill_normal(&r, prefix, 2 * 3 * 8, 1.0f);
        int tokens[10];
        fill_tokens(tokens, 10, 11, 8);
        const float *out = transformer_forward(tr, prefix, tokens, B);
        transformer_reference(ref, &p, &cfg, prefix, tokens, B);
        for (int i = 0; i < B * S * C; i++) assert_true(fabsf(out[i] - ref[i]) < 1e-4f);
        /* causal: a later token never changes earlier positions (prefix included) */
        float before[2 * 8 * 8];
        memcpy(before, out, sizeof before);
        tokens[3] = (tokens[3] + 1) % 11; /* sample 0, token 3 = position P + 3 = 6 */
        out = transformer_forward(tr, prefix, tokens, B);
        assert_memory_equal(out, before, 6 * C * sizeof(float));
        assert_true(memcmp(out + 6 * C, before + 6 * C, C * sizeof(float)) != 0);
        assert_memory_equal(out + S * C, before + S * C, S * C * sizeof(float));
        transformer_free(tr);
        tensors_free(&p);
        tensors_free(&a);
    }
}

/* The forest forward against transformer_forward of each sequence: sequence 1 shares its prefix
 * and first two tokens with sequence 0, sequence 2 shares nothing (a second root). Same kernels,
 * same order per row: only the products' blocking may differ, so the tolerance is fp32 round-off. */
static void test_transformer_forest_matches_forward(void **state) {
    (void)state;
    enum { B = 3, P = 2, T = 5, C = 8, S = P + T, SHARED1 = P + 2 };
    TransformerConfig cfg = {.vocab = 11, .context = T, .width = C, .layers = 2, .heads = 2, .n_prefix = P,
                             .n_blocks_built = 2};
    Tensors p, a;
    Rng r;
    rng_init(&r, 9);
    Transformer *tr = tr_build(&cfg, "t", B, &p, &a, &r);
    float prefix[B * P * C];
    rng_fill_normal(&r, prefix, B * P * C, 1.0f);
    memcpy(prefix + P * C, prefix, P * C * sizeof(float));
    int tokens[B * T];
    fill_tokens(tokens, B * T, 11, 3);
    memcpy(tokens + T, tokens, (SHARED1 - P) * sizeof(int));
    const float *ref = transformer_forward(tr, prefix, tokens, B);
    float rows_prefix[B * S * C], hidden[B * S * C];
    int token[B * S], parent[B * S], row_of[B][S], N = 0;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            if (b == 1 && s < SHARED1) {
                row_of[b][s] = row_of[0][s];
                continue;
            }
            token[N] = s < P ? -1 : tokens[b * T + s - P];
            if (s < P) memcpy(rows_prefix + (size_t)N * C, prefix + ((size_t)b * P + s) * C, C * sizeof(float));
            parent[N] = s > 0 ? row_of[b][s - 1] : -1;
            row_of[b][s] = N++;
        }
    assert_int_equal(N, S + (S - SHARED1) + S);
    float *work = malloc(transformer_forest_work_floats(tr, N) * sizeof(float));
    transformer_forest_forward(tr, hidden, work, rows_prefix, token, parent, N);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++)
            for (int c = 0; c < C; c++)
                assert_true(fabsf(hidden[(size_t)row_of[b][s] * C + c] - ref[((size_t)b * S + s) * C + c]) < 1e-5f);
    free(work);
    transformer_free(tr);
    tensors_free(&p);
    tensors_free(&a);
}

/* ---- text towers ---- */

typedef struct {
    TextTower *t;
    const int *tokens, *lengths;
    int B;
} TxtModel;

static const float *txt_fwd(void *m) {
    TxtModel *tm = m;
    return text_tower_forward(tm->t, tm->tokens, tm->lengths, tm->B);
}
static void txt_bwd(void *m, const float *dout) {
    TxtModel *tm = m;
    text_tower_backward(tm->t, dout, tm->B);
}

static const TextTowerDims TXT_DIMS = {.vocab = 11, .context = 5};

static TextTower *txt_build(const char *kind, const char *tap, int B, Tensors *p, Tensors *a) {
    TextTowerConfig cfg = {"", .width = 8, .layers = 2, .heads = 2};
    snprintf(cfg.kind, sizeof cfg.kind, "%s", kind);
    snprintf(cfg.tap, sizeof cfg.tap, "%s", tap);
    tensors_init(p, 4);
    tensors_init(a, 2);
    Err err = {""};
    TextTower *t = text_tower_create(&cfg, TXT_DIMS, B, p, a, &err);
    assert_non_null(t);
    tensors_alloc(p);
    tensors_alloc(a);
    Rng r;
    rng_init(&r, 17);
    text_tower_init(t, &r);
    perturb_params(p, &r);
    return t;
}

/* 3 captions of lengths 5, 3, 2 over context 5; PAD = 0 after EOS */
static const int LENGTHS[3] = {5, 3, 2};
static void caption_tokens(int *tokens) {
    fill_tokens(tokens, 15, 10, 31);
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 5; t++) tokens[b * 5 + t] = t < LENGTHS[b] ? 1 + tokens[b * 5 + t] : 0;
}

static void txt_gradcheck(const char *kind, const char *tap) {
    int B = 3;
    Tensors p, a;
    TextTower *t = txt_build(kind, tap, B, &p, &a);
    int tokens[15];
    caption_tokens(tokens);
    TxtModel m = {t, tokens, LENGTHS, B};
    GradcheckModel h = {txt_fwd, txt_bwd, &m, (size_t)B * text_tower_dim(t), NULL};
    Rng r;
    rng_init(&r, 77);
    GradcheckStats st = harness_check(&h, &p, &TOL_SMOOTH, &r);
    assert_int_equal(st.n_failed, 0);
    assert_int_equal(st.n_flat, 0);
    free(h.R);
    text_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_text_transformer_gradcheck(void **state) {
    (void)state;
    txt_gradcheck("transformer", "");
}

static void test_text_transformer_tap_gradcheck(void **state) {
    (void)state;
    txt_gradcheck("transformer", "txt.block1");
}

static void test_text_cbow_gradcheck(void **state) {
    (void)state;
    txt_gradcheck("cbow", "");
}

/* ngram's documented bigram bucket: ((a * 0x9E3779B1) ^ (b * 0x85EBCA77)) mod 4096 */
enum { NGRAM_TEST_BUCKETS = 4096 };
static int ngram_bucket(int a, int b) {
    return (int)((((uint32_t)a * 0x9E3779B1u) ^ ((uint32_t)b * 0x85EBCA77u)) % NGRAM_TEST_BUCKETS);
}

/* Sampled elements of the 4096-row bigram table are mostly rows no caption uses (gradient 0, the
 * tensor counts as flat), so every element of the rows the captions do use is checked too. */
static void test_text_ngram_gradcheck(void **state) {
    (void)state;
    int B = 3, C = 8;
    Tensors p, a;
    TextTower *t = txt_build("ngram", "", B, &p, &a);
    int tokens[15];
    caption_tokens(tokens);
    TxtModel m = {t, tokens, LENGTHS, B};
    GradcheckModel h = {txt_fwd, txt_bwd, &m, (size_t)B * C, NULL};
    Rng r;
    rng_init(&r, 77);
    GradcheckStats st = harness_check(&h, &p, &TOL_SMOOTH, &r);
    assert_int_equal(st.n_failed, 0);
    assert_true(st.n_flat <= 1); /* the bigram table's random sample, checked row by row below */
    int ib = tensors_find(&p, "txt.bigram");
    float *rows = tensors_ptr(&p, TBUF_VALUE, ib), *grads = tensors_ptr(&p, TBUF_GRAD, ib);
    GradcheckStats used = {0};
    GradcheckTol all = TOL_SMOOTH;
    all.samples = C;
    for (int b = 0; b < B; b++)
        for (int s = 0; s + 1 < LENGTHS[b]; s++) {
            size_t k = (size_t)ngram_bucket(tokens[b * 5 + s], tokens[b * 5 + s + 1]) * C;
            gradcheck_array(&used, "txt.bigram", rows + k, grads + k, C, gradcheck_model_loss, &h, &all, &r);
        }
    print_message("bigram rows in use: %d elements, worst %.3f\n", used.n_checked, used.worst);
    assert_int_equal(used.n_failed, 0);
    assert_int_equal(used.n_flat, 0);
    assert_true(used.n_checked >= 7 * C);
    free(h.R);
    text_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

/* ngram: proj(mean of the unigram rows and the hashed bigram rows), in double, with the documented
 * bucket; word order changes it. */
static void test_text_ngram_forward_and_order(void **state) {
    (void)state;
    enum { B = 3, C = 8, T = 5 };
    Tensors p, a;
    TextTower *t = txt_build("ngram", "", B, &p, &a);
    const float *wte = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.wte"));
    const float *big = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.bigram"));
    const float *w = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.proj.weight"));
    const float *bias = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.proj.bias"));
    assert_int_equal(p.info[tensors_find(&p, "txt.bigram")].shape[0], NGRAM_TEST_BUCKETS);
    int tokens[B * T];
    caption_tokens(tokens);
    float f[B * C];
    memcpy(f, text_tower_forward(t, tokens, LENGTHS, B), sizeof f);
    for (int b = 0; b < B; b++) {
        const int *tok = tokens + b * T;
        int n = LENGTHS[b];
        double mean[C] = {0};
        for (int s = 0; s < n; s++)
            for (int c = 0; c < C; c++) mean[c] += wte[tok[s] * C + c];
        for (int s = 0; s + 1 < n; s++) {
            int k = ngram_bucket(tok[s], tok[s + 1]);
            for (int c = 0; c < C; c++) mean[c] += big[k * C + c];
        }
        for (int o = 0; o < C; o++) {
            double y = bias[o];
            for (int c = 0; c < C; c++) y += w[o * C + c] * mean[c] / (2 * n - 1);
            assert_true(fabs(f[b * C + o] - y) < 1e-5);
        }
    }
    /* swapping two words of caption 0 keeps its unigrams, changes its bigrams */
    int tmp = tokens[1];
    tokens[1] = tokens[2];
    tokens[2] = tmp;
    assert_true(tokens[1] != tokens[2]);
    const float *g = text_tower_forward(t, tokens, LENGTHS, B);
    assert_true(memcmp(g, f, C * sizeof(float)) != 0);
    assert_memory_equal(g + C, f + C, (B - 1) * C * sizeof(float));
    text_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_text_transformer_eos_and_tap(void **state) {
    (void)state;
    int B = 3;
    Tensors p, a, pt, at;
    TextTower *t = txt_build("transformer", "", B, &p, &a);
    TextTower *t1 = txt_build("transformer", "txt.block1", B, &pt, &at);
    assert_int_equal(text_tower_dim(t), 8);
    assert_true(tensors_find(&p, "txt.block2.attn.qkv.weight") >= 0);
    assert_int_equal(tensors_find(&pt, "txt.block2.attn.qkv.weight"), -1);
    assert_int_equal(pt.n, p.n - 12);
    int tokens[15];
    caption_tokens(tokens);
    float f[3 * 8];
    memcpy(f, text_tower_forward(t, tokens, LENGTHS, B), sizeof f);
    /* tokens after EOS (PAD) cannot reach the EOS position through causal attention */
    tokens[1 * 5 + 4] = 7;
    tokens[2 * 5 + 2] = 9;
    assert_memory_equal(text_tower_forward(t, tokens, LENGTHS, B), f, sizeof f);
    /* a token before EOS does */
    tokens[2 * 5 + 0] = tokens[2 * 5 + 0] % 10 + 1;
    const float *g = text_tower_forward(t, tokens, LENGTHS, B);
    assert_memory_equal(g, f, 2 * 8 * sizeof(float));
    assert_true(memcmp(g + 16, f + 16, 8 * sizeof(float)) != 0);
    text_tower_free(t);
    text_tower_free(t1);
    tensors_free(&p);
    tensors_free(&a);
    tensors_free(&pt);
    tensors_free(&at);
}

static void test_text_cbow_forward_and_mask(void **state) {
    (void)state;
    int B = 3, C = 8;
    Tensors p, a;
    TextTower *t = txt_build("cbow", "", B, &p, &a);
    int tokens[15];
    caption_tokens(tokens);
    float f[3 * 8];
    memcpy(f, text_tower_forward(t, tokens, LENGTHS, B), sizeof f);
    const float *wte = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.wte"));
    const float *w = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.proj.weight"));
    const float *bias = tensors_ptr(&p, TBUF_VALUE, tensors_find(&p, "txt.proj.bias"));
    for (int b = 0; b < B; b++)
        for (int o = 0; o < C; o++) {
            double s = bias[o];
            for (int c = 0; c < C; c++) {
                double m = 0;
                for (int k = 0; k < LENGTHS[b]; k++) m += wte[tokens[b * 5 + k] * C + c];
                s += w[o * C + c] * m / LENGTHS[b];
            }
            assert_true(fabs(f[b * C + o] - s) < 1e-5);
        }
    /* PAD ids change nothing */
    tokens[1 * 5 + 3] = 5;
    tokens[2 * 5 + 4] = 10;
    assert_memory_equal(text_tower_forward(t, tokens, LENGTHS, B), f, sizeof f);
    tokens[1 * 5 + 2] = tokens[1 * 5 + 2] % 10 + 1; /* in-caption: changes sample 1 only */
    const float *g = text_tower_forward(t, tokens, LENGTHS, B);
    assert_true(memcmp(g + C, f + C, C * sizeof(float)) != 0);
    assert_memory_equal(g, f, C * sizeof(float));
    text_tower_free(t);
    tensors_free(&p);
    tensors_free(&a);
}

static void expect_text_error(const char *kind, int heads, const char *tap, const char *msg) {
    TextTowerConfig cfg = {"", .width = 8, .layers = 2, .heads = heads};
    snprintf(cfg.kind, sizeof cfg.kind, "%s", kind);
    snprintf(cfg.tap, sizeof cfg.tap, "%s", tap);
    Tensors p, a;
    tensors_init(&p, 4);
    tensors_init(&a, 2);
    Err err = {""};
    assert_null(text_tower_create(&cfg, TXT_DIMS, 2, &p, &a, &err));
    assert_string_equal(err.msg, msg);
    assert_int_equal(p.n, 0);
    tensors_free(&p);
    tensors_free(&a);
}

static void test_text_errors(void **state) {
    (void)state;
    char valid[256], msg[400];
    names_join(valid, sizeof valid, text_tower_kind_name); /* the registry is the list (test_registry.c) */
    snprintf(msg, sizeof msg, "unknown text tower kind 'rnn'; valid: %s", valid);
    expect_text_error("rnn", 2, "", msg);
    expect_text_error("transformer", 2, "txt.block3", "unknown tap 'txt.block3'; valid: txt.block1, txt.block2");
    expect_text_error("transformer", 2, "img.stage1", "unknown tap 'img.stage1'; valid: txt.block1, txt.block2");
    expect_text_error("transformer", 3, "", "text tower: width 8 must be a multiple of heads 3");
    expect_text_error("cbow", 2, "txt.block1", "unknown tap 'txt.block1'; valid: \"\" (cbow has a single layer)");
    expect_text_error("ngram", 2, "txt.block1", "unknown tap 'txt.block1'; valid: \"\" (ngram has a single layer)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_forward_plain_matches_reference),
        cmocka_unit_test(test_image_forward_residual_layernorm_matches_reference),
        cmocka_unit_test(test_image_gradcheck_plain),
        cmocka_unit_test(test_image_gradcheck_residual),
        cmocka_unit_test(test_image_gradcheck_layernorm_residual),
        cmocka_unit_test(test_image_gradcheck_direct_residual),
        cmocka_unit_test(test_image_threads_reproducible),
        cmocka_unit_test(test_image_tap_truncation),
        cmocka_unit_test(test_image_errors),
        cmocka_unit_test(test_transformer_forward_matches_reference),
        cmocka_unit_test(test_transformer_prefix_gradcheck),
        cmocka_unit_test(test_transformer_threads_reproducible),
        cmocka_unit_test(test_transformer_forest_matches_forward),
        cmocka_unit_test(test_text_transformer_gradcheck),
        cmocka_unit_test(test_text_transformer_tap_gradcheck),
        cmocka_unit_test(test_text_cbow_gradcheck),
        cmocka_unit_test(test_text_ngram_gradcheck),
        cmocka_unit_test(test_text_ngram_forward_and_order),
        cmocka_unit_test(test_text_transformer_eos_and_tap),
        cmocka_unit_test(test_text_cbow_forward_and_mask),
        cmocka_unit_test(test_text_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
