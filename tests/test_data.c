/* test_data.c — the data module: shapes determinism, attribute coverage, compositional hold-out,
 * caption diversity, rendering geometry, tokenizer, batches, zero-shot tasks, and Fashion-MNIST
 * IDX loading (real files and every class of corrupt file). */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "data/data.h"
#include "data/shapes.h"

static Dataset *open_or_fail(const DataConfig *cfg) {
    Err err = {{0}};
    Dataset *ds = dataset_open(cfg, &err);
    if (!ds) fail_msg("dataset_open: %s", err.msg);
    return ds;
}

static Dataset *open_shapes(float noise, int eval_images) {
    DataConfig cfg;
    data_config_default(&cfg);
    cfg.caption_noise = noise;
    cfg.eval_images = eval_images;
    return open_or_fail(&cfg);
}

static size_t row_floats(const Batch *b) { return (size_t)b->R * b->R * 3; }

/* Row k of a equals row j of b (image, tokens, length, bow). */
static void assert_rows_equal(const Batch *a, int k, const Batch *b, int j) {
    assert_memory_equal(a->images + k * row_floats(a), b->images + j * row_floats(b), row_floats(a) * sizeof(float));
    assert_memory_equal(a->tokens + (size_t)k * a->T, b->tokens + (size_t)j * b->T, (size_t)a->T * sizeof(int));
    assert_int_equal(a->lengths[k], b->lengths[j]);
    assert_memory_equal(a->bow + (size_t)k * a->V, b->bow + (size_t)j * b->V, (size_t)a->V * sizeof(float));
}

static void check_determinism(Dataset *ds, uint64_t first) {
    enum { N = 48 };
    Batch a, b, c;
    batch_alloc(&a, ds, N);
    batch_alloc(&b, ds, N);
    batch_alloc(&c, ds, N);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    dataset_fill_batch(ds, &a, first, N);
    omp_set_num_threads(2);
    dataset_fill_batch(ds, &b, first, N);
    assert_int_equal(a.B, N);
    for (int k = 0; k < N; k++) assert_rows_equal(&a, k, &b, k);
    /* another batch size, another offset, and one sample at a time in reverse order */
    dataset_fill_batch(ds, &c, first + 16, 13);
    for (int k = 0; k < 13; k++) assert_rows_equal(&a, 16 + k, &c, k);
    for (int k = N - 1; k >= 0; k--) {
        dataset_fill_batch(ds, &c, first + (uint64_t)k, 1);
        assert_rows_equal(&a, k, &c, 0);
    }
    /* and different samples really differ */
    assert_memory_not_equal(a.images, a.images + row_floats(&a), row_floats(&a) * sizeof(float));
    omp_set_num_threads(threads);
    batch_free(&a);
    batch_free(&b);
    batch_free(&c);
}

static void test_shapes_deterministic_across_threads_and_order(void **state) {
    (void)state;
    Dataset *ds = open_shapes(0.7f, 8);
    check_determinism(ds, 123456789);
    dataset_free(ds);
}

static void test_fmnist_deterministic_across_threads_and_order(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "fashion-mnist");
    Dataset *ds = open_or_fail(&cfg);
    check_determinism(ds, 59990); /* crosses the epoch boundary at 60000 */
    dataset_free(ds);
}

static void test_shapes_image_independent_of_caption_noise(void **state) {
    (void)state;
    Dataset *d0 = open_shapes(0.0f, 8), *d1 = open_shapes(1.0f, 8);
    int R = 32;
    float *a = malloc(sizeof(float) * R * R * 3), *b = malloc(sizeof(float) * R * R * 3);
    char ca[512], cb[512];
    dataset_sample_raw(d0, 77, a, ca, sizeof ca);
    dataset_sample_raw(d1, 77, b, cb, sizeof cb);
    assert_memory_equal(a, b, sizeof(float) * R * R * 3);
    free(a);
    free(b);
    dataset_free(d0);
    dataset_free(d1);
}

static void test_every_attribute_value_occurs(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    ShapesWorld w;
    Err err;
    assert_int_equal(shapes_world_init(&w, &cfg, &err), 0);
    int colour[SHAPES_N_COLOURS] = {0}, shape[SHAPES_N_SHAPES] = {0}, size[SHAPES_N_SIZES] = {0};
    int pos[SHAPES_N_POSITIONS] = {0}, tex[SHAPES_N_TEXTURES] = {0}, count[SHAPES_MAX_OBJECTS] = {0};
    int pair[SHAPES_N_COLOURS][SHAPES_N_SHAPES] = {{0}};
    for (int i = 0; i < 6000; i++) {
        Rng sr, cr;
        shapes_training_rngs(&w, (uint64_t)i, &sr, &cr);
        ShapesScene s;
        shapes_scene_sample(&s, &w, &sr, NULL);
        count[s.n_objects - 1]++;
        for (int k = 0; k < s.n_objects; k++) {
            const ShapesObject *o = &s.obj[k];
            colour[o->colour]++, shape[o->shape]++, size[o->size]++, pos[o->position]++, tex[o->texture]++;
            pair[o->colour][o->shape]++;
            assert_true(o->cx - o->radius > -1.0f && o->cx + o->radius < 33.0f);
            assert_true(o->cy - o->radius > -1.0f && o->cy + o->radius < 33.0f);
            for (int j = 0; j < k; j++) assert_int_not_equal(s.obj[j].position, o->position);
        }
    }
    for (int i = 0; i < SHAPES_N_COLOURS; i++) assert_true(colour[i] > 0);
    for (int i = 0; i < SHAPES_N_SHAPES; i++) assert_true(shape[i] > 0);
    for (int i = 0; i < SHAPES_N_SIZES; i++) assert_true(size[i] > 0);
    for (int i = 0; i < SHAPES_N_POSITIONS; i++) assert_true(pos[i] > 0);
    for (int i = 0; i < SHAPES_N_TEXTURES; i++) assert_true(tex[i] > 0);
    for (int i = 0; i < SHAPES_MAX_OBJECTS; i++) assert_true(count[i] > 0);
    for (int c = 0; c < SHAPES_N_COLOURS; c++)
        for (int s = 0; s < SHAPES_N_SHAPES; s++) assert_true(w.held_out[c][s] ? pair[c][s] == 0 : pair[c][s] > 0);
}

/* Colour / shape attribute of every word of a token sequence (-1 if none). */
static void word_attributes(const Tokenizer *tok, const int *t, int n, int *col, int *shp, char words[][TOKENIZER_WORD_MAX]) {
    for (int i = 0; i < n; i++) {
        snprintf(words[i], TOKENIZER_WORD_MAX, "%s", tokenizer_word(tok, t[i]));
        col[i] = shapes_word_colour(words[i]);
        shp[i] = shapes_word_shape(words[i]);
    }
}

static int is_connector(const char *w) { return !strcmp(w, "that") || !strcmp(w, "which") || !strcmp(w, "is") || !strcmp(w, "painted"); }

/* A caption's mentions agree with its scene, and no phrase pairs a held-out colour with a
 * held-out shape ("red circle", "red striped circle", "circle that is red"). */
static void check_caption(const Tokenizer *tok, const ShapesWorld *w, const ShapesScene *s, const int *t, int n) {
    int col[128], shp[128];
    char words[128][TOKENIZER_WORD_MAX];
    word_attributes(tok, t, n, col, shp, words);
    for (int i = 0; i < n; i++) {
        assert_int_not_equal(t[i], TOKEN_UNK);
        int found = col[i] < 0 && shp[i] < 0;
        for (int k = 0; k < s->n_objects && !found; k++) found = s->obj[k].colour == col[i] || s->obj[k].shape == shp[i];
        if (!found) fail_msg("caption word '%s' matches no object of the scene", words[i]);
        if (col[i] >= 0) {
            int j = i + 1;
            while (j < n && shapes_word_is_modifier(words[j])) j++;
            if (j < n && shp[j] >= 0 && w->held_out[col[i]][shp[j]]) fail_msg("held-out pair '%s ... %s' in a caption", words[i], words[j]);
        }
        if (shp[i] >= 0) {
            int j = i + 1;
            while (j < n && is_connector(words[j])) j++;
            if (j > i + 1 && j < n && col[j] >= 0 && w->held_out[col[j]][shp[i]])
                fail_msg("held-out pair '%s ... %s' in a caption", words[i], words[j]);
        }
    }
}

static void test_holdout_never_leaks(void **state) {
    (void)state;
    Dataset *ds = open_shapes(1.0f, 64);
    const Tokenizer *tok = dataset_tokenizer(ds);
    DataConfig cfg = *dataset_config(ds);
    ShapesWorld w;
    assert_int_equal(shapes_world_init(&w, &cfg, NULL), 0);
    int n_held = 0;
    for (int c = 0; c < SHAPES_N_COLOURS; c++)
        for (int s = 0; s < SHAPES_N_SHAPES; s++) n_held += w.held_out[c][s];
    assert_int_equal(n_held, 3);
    /* 100k training samples: objects by their metadata, captions by their words (T = 128, so
     * nothing is hidden by truncation) */
    int tokens[128];
    for (int i = 0; i < 100000; i++) {
        Rng sr, cr;
        shapes_training_rngs(&w, (uint64_t)i, &sr, &cr);
        ShapesScene s;
        shapes_scene_sample(&s, &w, &sr, NULL);
        for (int k = 0; k < s.n_objects; k++) assert_false(w.held_out[s.obj[k].colour][s.obj[k].shape]);
        char caption[512];
        shapes_caption(caption, sizeof caption, &s, w.caption_noise, &cr);
        int n = tokenizer_encode(tok, caption, tokens, 128);
        assert_true(n < 128);
        check_caption(tok, &w, &s, tokens + 1, n - 2);
    }
    /* the batches carry exactly those captions */
    Batch b;
    batch_alloc(&b, ds, 256);
    dataset_fill_batch(ds, &b, 0, 256);
    for (int k = 0; k < 256; k++) {
        Rng sr, cr;
        shapes_training_rngs(&w, (uint64_t)k, &sr, &cr);
        ShapesScene s;
        shapes_scene_sample(&s, &w, &sr, NULL);
        char caption[512];
        shapes_caption(caption, sizeof caption, &s, w.caption_noise, &cr);
        tokenizer_encode(tok, caption, tokens, b.T);
        assert_memory_equal(tokens, b.tokens + (size_t)k * b.T, sizeof(int) * b.T);
    }
    batch_free(&b);
    /* ... while the held-out zero-shot set is made of exactly the held-out pairs */
    int n_tasks;
    const ZeroShotTask *tasks = dataset_zeroshot_tasks(ds, &n_tasks);
    const ZeroShotTask *h = NULL;
    for (int t = 0; t < n_tasks; t++)
        if (!strcmp(tasks[t].name, "colour_shape_heldout")) h = &tasks[t];
    assert_non_null(h);
    int seen_label[SHAPES_N_COLOURS * SHAPES_N_SHAPES] = {0};
    for (int k = 0; k < h->n_images; k++) {
        int l = h->labels[k];
        assert_true(w.held_out[l / SHAPES_N_SHAPES][l % SHAPES_N_SHAPES]);
        seen_label[l]++;
        char expect[48];
        snprintf(expect, sizeof expect, "%s %s", SHAPES_COLOUR_NAMES[l / SHAPES_N_SHAPES], SHAPES_SHAPE_NAMES[l % SHAPES_N_SHAPES]);
        assert_string_equal(h->class_names[l], expect);
    }
    for (int c = 0; c < SHAPES_N_COLOURS; c++)
        for (int s = 0; s < SHAPES_N_SHAPES; s++)
            if (w.held_out[c][s]) assert_true(seen_label[c * SHAPES_N_SHAPES + s] > 0);
    dataset_free(ds);
}

static int count_distinct(char (*caps)[512], int n) {
    int d = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = !strcmp(caps[i], caps[j]);
        d += !dup;
    }
    return d;
}

static void test_caption_diversity_grows_with_noise(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    ShapesWorld w;
    assert_int_equal(shapes_world_init(&w, &cfg, NULL), 0);
    ShapesScene s;
    Rng r;
    rng_init(&r, 5);
    shapes_scene_sample(&s, &w, &r, &(ShapesConstraint){3, -1, -1, -1});
    enum { N = 1500 };
    char(*caps)[512] = malloc(sizeof *caps * N);
    const float noise[] = {0.0f, 0.2f, 0.5f, 1.0f};
    int prev = 0;
    for (int q = 0; q < 4; q++) {
        for (int i = 0; i < N; i++) {
            rng_init(&r, 1000 + (uint64_t)i);
            shapes_caption(caps[i], 512, &s, noise[q], &r);
        }
        int d = count_distinct(caps, N);
        if (q == 0) {
            assert_int_equal(d, 1);
            char expect[512];
            const ShapesObject *o = s.obj;
            snprintf(expect, sizeof expect, "a photo of a %s %s, a %s %s and a %s %s.", SHAPES_COLOUR_NAMES[o[0].colour],
                     SHAPES_SHAPE_NAMES[o[0].shape], SHAPES_COLOUR_NAMES[o[1].colour], SHAPES_SHAPE_NAMES[o[1].shape],
                     SHAPES_COLOUR_NAMES[o[2].colour], SHAPES_SHAPE_NAMES[o[2].shape]);
            /* articles: "a orange" -> "an orange" */
            char fixed[512];
            int j = 0;
            for (int i = 0; expect[i]; i++) {
                fixed[j++] = expect[i];
                if ((i == 0 || expect[i - 1] == ' ') && expect[i] == 'a' && expect[i + 1] == ' ' && strchr("aeiou", expect[i + 2]))
                    fixed[j++] = 'n';
            }
            fixed[j] = '\0';
            assert_string_equal(caps[0], fixed);
        } else {
            assert_true(d > prev + 20);
        }
        prev = d;
    }
    free(caps);
}

static void test_render_geometry_and_antialiasing(void **state) {
    (void)state;
    enum { R = 64, G = 600 };
    float *img = malloc(sizeof(float) * R * R * 3);
    const double exact[SHAPES_N_SHAPES] = {M_PI, 1.7 * 1.7, 1.9 * 1.7 / 2, 5 * 0.45 * sin(M_PI / 5), 1.8, -1, 1.6, 3 * sqrt(3) / 2,
                                           M_PI * (1 - 0.55 * 0.55), -1};
    for (int sh = 0; sh < SHAPES_N_SHAPES; sh++) {
        /* area of the inside test by midpoint integration over [-1.5, 1.5]^2 */
        long in = 0;
        for (int i = 0; i < G; i++)
            for (int j = 0; j < G; j++) in += shapes_inside(sh, -1.5f + 3.0f * (i + 0.5f) / G, -1.5f + 3.0f * (j + 0.5f) / G);
        double area = 9.0 * (double)in / ((double)G * G);
        if (exact[sh] > 0) assert_true(fabs(area - exact[sh]) < 0.01 * exact[sh]);
        assert_true(area > 0.5 && area < 4.0);
        /* the rendered coverage integrates to the same area */
        ShapesScene s = {.n_objects = 1, .bg = {0, 0, 0}, .noise = 0};
        s.obj[0] = (ShapesObject){.shape = sh, .texture = 0, .cx = 31.3f, .cy = 32.6f, .radius = 12.0f, .rgb = {1, 1, 1}};
        Rng r;
        rng_init(&r, 1);
        shapes_render(img, &s, R, &r);
        double sum = 0;
        int partial = 0;
        for (int p = 0; p < R * R; p++) {
            sum += img[p * 3];
            partial += img[p * 3] > 0.05f && img[p * 3] < 0.95f;
        }
        assert_true(fabs(sum - area * 144.0) < 0.01 * area * 144.0);
        assert_true(partial > 10); /* anti-aliased edges */
    }
    /* the ring has a hole, the circle not */
    ShapesScene s = {.n_objects = 1, .bg = {0, 0, 0}, .noise = 0};
    s.obj[0] = (ShapesObject){.shape = 8, .cx = 32, .cy = 32, .radius = 12, .rgb = {1, 0.5f, 0}};
    Rng r;
    rng_init(&r, 1);
    shapes_render(img, &s, R, &r);
    assert_true(img[(32 * R + 32) * 3] < 0.01f);
    assert_true(fabsf(img[(32 * R + 21) * 3 + 1] - 0.5f) < 0.01f);
    free(img);
}

static void test_tokenizer_round_trip_truncation_bow(void **state) {
    (void)state;
    Dataset *ds = open_shapes(1.0f, 8);
    const Tokenizer *tok = dataset_tokenizer(ds);
    int V = tokenizer_vocab_size(tok);
    assert_string_equal(tokenizer_word(tok, TOKEN_PAD), "<pad>");
    assert_int_equal(TOKEN_PAD, 0);
    /* every word of every caption is known, and decode(encode(c)) is c's word sequence */
    int t[128];
    char caption[512], dec[512];
    float *img = malloc(sizeof(float) * 32 * 32 * 3);
    for (int i = 0; i < 1000; i++) {
        dataset_sample_raw(ds, (uint64_t)i, img, caption, sizeof caption);
        int n = tokenizer_encode(tok, caption, t, 128);
        assert_int_equal(n, tokenizer_count_words(caption) + 2);
        for (int k = 1; k < n - 1; k++) assert_int_not_equal(t[k], TOKEN_UNK);
        tokenizer_decode(tok, t, 128, dec, sizeof dec);
        char norm[512] = "", w[TOKENIZER_WORD_MAX];
        const char *p = caption;
        while (tokenizer_next_word(&p, w)) {
            if (norm[0]) strcat(norm, " ");
            strcat(norm, w);
        }
        assert_string_equal(dec, norm);
    }
    free(img);
    /* lower-casing, punctuation, unknown words, padding */
    int n = tokenizer_encode(tok, "A Photo, of a RED circle!! zzzq", t, 12);
    assert_int_equal(n, 9);
    assert_int_equal(t[0], TOKEN_BOS);
    assert_int_equal(t[2], tokenizer_lookup(tok, "photo"));
    assert_int_equal(t[5], tokenizer_lookup(tok, "red"));
    assert_int_equal(t[7], TOKEN_UNK);
    assert_int_equal(t[8], TOKEN_EOS);
    for (int k = 9; k < 12; k++) assert_int_equal(t[k], TOKEN_PAD);
    tokenizer_decode(tok, t, 12, dec, sizeof dec);
    assert_string_equal(dec, "a photo of a red circle <unk>");
    assert_int_equal(tokenizer_lookup(tok, "t-shirt") != TOKEN_UNK, 1);
    /* truncation keeps EOS last */
    n = tokenizer_encode(tok, "a red circle and a blue star and a pink heart", t, 6);
    assert_int_equal(n, 6);
    assert_int_equal(t[4], tokenizer_lookup(tok, "and"));
    assert_int_equal(t[5], TOKEN_EOS);
    /* bag of words: distinct content words only, mass 1/K */
    float *bow = malloc(sizeof(float) * V);
    n = tokenizer_encode(tok, "a photo of a red circle and a red star", t, 16);
    assert_int_equal(tokenizer_bow(tok, t, n, bow), 3);
    double sum = 0;
    for (int v = 0; v < V; v++) sum += bow[v];
    assert_true(fabs(sum - 1.0) < 1e-6);
    assert_true(fabsf(bow[tokenizer_lookup(tok, "red")] - 1.0f / 3) < 1e-6f);
    assert_true(bow[tokenizer_lookup(tok, "photo")] == 0.0f && bow[tokenizer_lookup(tok, "a")] == 0.0f);
    assert_false(tokenizer_is_content(tok, TOKEN_EOS));
    free(bow);
    /* the vocabulary does not depend on the dataset */
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "fashion-mnist");
    Dataset *fm = open_or_fail(&cfg);
    const Tokenizer *ft = dataset_tokenizer(fm);
    assert_int_equal(tokenizer_vocab_size(ft), V);
    for (int v = 0; v < V; v++) {
        assert_string_equal(tokenizer_word(ft, v), tokenizer_word(tok, v));
        assert_int_equal(tokenizer_is_content(ft, v), tokenizer_is_content(tok, v));
    }
    dataset_free(fm);
    dataset_free(ds);
}

static void check_batch_rows(const Batch *b) {
    for (int k = 0; k < b->B; k++) {
        const int *t = b->tokens + (size_t)k * b->T;
        int n = b->lengths[k];
        assert_true(n >= 3 && n <= b->T);
        assert_int_equal(t[0], TOKEN_BOS);
        assert_int_equal(t[n - 1], TOKEN_EOS);
        for (int i = 1; i < n - 1; i++) assert_true(t[i] > TOKEN_EOS);
        for (int i = n; i < b->T; i++) assert_int_equal(t[i], TOKEN_PAD);
        double sum = 0;
        for (int v = 0; v < b->V; v++) sum += b->bow[(size_t)k * b->V + v];
        assert_true(fabs(sum - 1.0) < 1e-5);
    }
    double m = 0, m2 = 0;
    size_t n = (size_t)b->B * row_floats(b);
    for (size_t i = 0; i < n; i++) m += b->images[i], m2 += (double)b->images[i] * b->images[i];
    m /= (double)n;
    double sd = sqrt(m2 / (double)n - m * m);
    assert_true(fabs(m) < 0.3 && sd > 0.6 && sd < 1.5);
}

static void test_batches_and_eval_pairs(void **state) {
    (void)state;
    Dataset *ds = open_shapes(0.5f, 8);
    Batch b, e;
    batch_alloc(&b, ds, 128);
    batch_alloc(&e, ds, 128);
    dataset_fill_batch(ds, &b, 0, 128);
    check_batch_rows(&b);
    dataset_eval_pairs(ds, &e, 100, 0);
    assert_int_equal(e.B, 100);
    check_batch_rows(&e);
    /* eval pairs come from another seed space: no image equals a training one */
    for (int i = 0; i < 100; i++)
        for (int j = 0; j < 128; j++)
            assert_memory_not_equal(e.images + i * row_floats(&e), b.images + j * row_floats(&b), row_floats(&b) * sizeof(float));
    Batch e2;
    batch_alloc(&e2, ds, 128);
    dataset_eval_pairs(ds, &e2, 100, 0);
    assert_memory_equal(e.images, e2.images, 100 * row_floats(&e) * sizeof(float));
    dataset_eval_pairs(ds, &e2, 100, 1);
    assert_memory_not_equal(e.images, e2.images, row_floats(&e) * sizeof(float));
    batch_free(&b);
    batch_free(&e);
    batch_free(&e2);
    dataset_free(ds);
}

/* The probe's own set: the task's classes and labelling, other images than the zero-shot task's
 * (a separate seed stream), the same images again for the same (name, n), the zero-shot tasks
 * untouched by building it. */
static void test_probe_task_is_its_own_set(void **state) {
    (void)state;
    Dataset *ds = open_shapes(0.5f, 40);
    int n_tasks;
    const ZeroShotTask *tasks = dataset_zeroshot_tasks(ds, &n_tasks);
    const ZeroShotTask *shape = NULL;
    for (int i = 0; i < n_tasks; i++)
        if (!strcmp(tasks[i].name, "shape")) shape = &tasks[i];
    assert_non_null(shape);
    size_t stride = (size_t)dataset_config(ds)->image_size * dataset_config(ds)->image_size * 3;
    float *before = malloc(stride * sizeof(float));
    memcpy(before, shape->images, stride * sizeof(float));
    const ZeroShotTask *p = dataset_probe_task(ds, "shape", 90);
    assert_non_null(p);
    assert_string_equal(p->name, "shape");
    assert_int_equal(p->n_images, 90);
    assert_int_equal(p->n_classes, shape->n_classes);
    int counts[64] = {0};
    for (int k = 0; k < 90; k++) counts[p->labels[k]]++;
    for (int c = 0; c < p->n_classes; c++) assert_int_equal(counts[c], 90 / p->n_classes); /* balanced */
    int same = 0;
    for (int k = 0; k < 40; k++) same += !memcmp(p->images + k * stride, shape->images + k * stride, stride * sizeof(float));
    assert_int_equal(same, 0); /* not the zero-shot task's images */
    assert_true(dataset_probe_task(ds, "shape", 90) == p); /* cached */
    assert_memory_equal(shape->images, before, stride * sizeof(float));
    int n2;
    assert_true(dataset_zeroshot_tasks(ds, &n2) == tasks && n2 == n_tasks);
    assert_null(dataset_probe_task(ds, "nope", 90));
    const ZeroShotTask *again = dataset_probe_task(ds, "shape", 90); /* rebuilt: identical */
    Dataset *ds2 = open_shapes(0.5f, 40);
    const ZeroShotTask *p2 = dataset_probe_task(ds2, "shape", 90);
    assert_memory_equal(again->images, p2->images, 90 * stride * sizeof(float));
    free(before);
    dataset_free(ds);
    dataset_free(ds2);
}

static void test_zeroshot_tasks(void **state) {
    (void)state;
    Dataset *ds = open_shapes(0.5f, 100);
    int n_tasks;
    const ZeroShotTask *tasks = dataset_zeroshot_tasks(ds, &n_tasks);
    const char *names[] = {"colour_shape_seen", "colour_shape_heldout", "shape", "colour", "count", "position"};
    const int classes[] = {100, 100, SHAPES_N_SHAPES, SHAPES_N_COLOURS, 3, SHAPES_N_POSITIONS};
    assert_int_equal(n_tasks, 6);
    const Tokenizer *tok = dataset_tokenizer(ds);
    int T = dataset_config(ds)->context, V = dataset_vocab_size(ds);
    for (int i = 0; i < n_tasks; i++) {
        const ZeroShotTask *t = &tasks[i];
        assert_string_equal(t->name, names[i]);
        assert_int_equal(t->n_classes, classes[i]);
        assert_int_equal(t->n_images, 100);
        assert_true(t->n_templates >= 4);
        for (int k = 0; k < t->n_images; k++) assert_true(t->labels[k] >= 0 && t->labels[k] < t->n_classes);
        if (i >= 2) /* balanced round-robin: every class present */
            for (int c = 0; c < t->n_classes; c++) {
                int found = 0;
                for (int k = 0; k < t->n_images && !found; k++) found = t->labels[k] == c;
                assert_true(found);
            }
        for (int c = 0; c < t->n_classes; c++)
            for (int m = 0; m < t->n_templates; m++) {
                int row = c * t->n_templates + m, n = t->prompt_lengths[row];
                const int *tk = t->prompt_tokens + (size_t)row * T;
                assert_int_equal(tk[0], TOKEN_BOS);
                assert_int_equal(tk[n - 1], TOKEN_EOS);
                /* the class name's words are all in the prompt's bag of words */
                char w[TOKENIZER_WORD_MAX];
                const char *p = t->class_names[c];
                while (tokenizer_next_word(&p, w)) {
                    int id = tokenizer_lookup(tok, w);
                    assert_int_not_equal(id, TOKEN_UNK);
                    if (tokenizer_is_content(tok, id)) assert_true(t->prompt_bow[(size_t)row * V + id] > 0.0f);
                }
            }
    }
    /* built from a fixed seed: a second dataset gives the same sets */
    Dataset *again = open_shapes(0.9f, 100);
    int n2;
    const ZeroShotTask *t2 = dataset_zeroshot_tasks(again, &n2);
    for (int i = 0; i < n_tasks; i++) {
        assert_memory_equal(tasks[i].labels, t2[i].labels, sizeof(int) * 100);
        assert_memory_equal(tasks[i].prompt_tokens, t2[i].prompt_tokens, sizeof(int) * (size_t)tasks[i].n_classes * tasks[i].n_templates * T);
    }
    assert_memory_equal(tasks[2].images, t2[2].images, sizeof(float) * 100 * 32 * 32 * 3);
    dataset_free(again);
    dataset_free(ds);
}

/* eval.validation: every task image and eval pair from a third seed space, so a tuning stage
 * never scores a reported test image (nor a training one); labels stay balanced the same way.
 * fashion-mnist has no validation set and says so in one line. */
static void test_validation_sets_disjoint_from_test(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    cfg.eval_images = 64;
    Dataset *test = open_or_fail(&cfg);
    cfg.validation = 1;
    Dataset *val = open_or_fail(&cfg);
    int nt, nv;
    const ZeroShotTask *tt = dataset_zeroshot_tasks(test, &nt), *tv = dataset_zeroshot_tasks(val, &nv);
    assert_int_equal(nt, nv);
    size_t img = (size_t)cfg.image_size * cfg.image_size * 3;
    Batch b;
    batch_alloc(&b, test, 64);
    dataset_fill_batch(test, &b, 0, 64);
    for (int i = 0; i < nt; i++) {
        assert_memory_equal(tt[i].labels, tv[i].labels, sizeof(int) * 64);
        for (int k = 0; k < 64; k++)
            for (int j = 0; j < 64; j++) {
                assert_memory_not_equal(tv[i].images + k * img, tt[i].images + j * img, img * sizeof(float));
                assert_memory_not_equal(tv[i].images + k * img, b.images + j * img, img * sizeof(float));
            }
    }
    Batch et, ev;
    batch_alloc(&et, test, 32);
    batch_alloc(&ev, val, 32);
    dataset_eval_pairs(test, &et, 32, 0);
    dataset_eval_pairs(val, &ev, 32, 0);
    for (int k = 0; k < 32; k++)
        for (int j = 0; j < 32; j++)
            assert_memory_not_equal(ev.images + k * img, et.images + j * img, img * sizeof(float));
    batch_free(&b), batch_free(&et), batch_free(&ev);
    dataset_free(test);
    dataset_free(val);
    strcpy(cfg.dataset, "fashion-mnist");
    Err err = {{0}};
    assert_null(dataset_open(&cfg, &err));
    assert_non_null(strstr(err.msg, "no validation set"));
}

static void test_fmnist_real_files_load(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "fashion-mnist");
    cfg.caption_noise = 0.0f;
    cfg.eval_images = 100000;
    Dataset *ds = open_or_fail(&cfg);
    assert_int_equal(dataset_train_size(ds), 60000);
    int n_tasks;
    const ZeroShotTask *t = dataset_zeroshot_tasks(ds, &n_tasks);
    assert_int_equal(n_tasks, 1);
    assert_string_equal(t->name, "fmnist");
    assert_int_equal(t->n_images, 10000);
    assert_int_equal(t->n_classes, 10);
    int counts[10] = {0};
    for (int k = 0; k < t->n_images; k++) {
        assert_true(t->labels[k] >= 0 && t->labels[k] <= 9);
        counts[t->labels[k]]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(counts[c], 1000);
    /* one epoch of the training stream visits every training image once: at caption_noise 0 the
     * caption names the class, and Fashion-MNIST's train split has 6000 per class */
    int train_counts[10] = {0};
    float *img = malloc(sizeof(float) * 32 * 32 * 3);
    char caption[512];
    for (int i = 0; i < 60000; i++) {
        dataset_sample_raw(ds, (uint64_t)i, img, caption, sizeof caption);
        int c = -1;
        for (int k = 0; k < 10 && c < 0; k++) {
            char expect[96];
            snprintf(expect, sizeof expect, "a photo of a %s.", t->class_names[k]);
            if (!strcmp(caption, expect)) c = k;
            snprintf(expect, sizeof expect, "a photo of an %s.", t->class_names[k]);
            if (!strcmp(caption, expect)) c = k;
        }
        if (c < 0) fail_msg("caption '%s' names no class", caption);
        train_counts[c]++;
        if (i == 0) /* grey replicated to RGB, zero padding 28 -> 32 */
            for (int p = 0; p < 32 * 32; p++) {
                assert_true(img[p * 3] == img[p * 3 + 1] && img[p * 3] == img[p * 3 + 2]);
                int y = p / 32, x = p % 32;
                if (y < 2 || y >= 30 || x < 2 || x >= 30) assert_true(img[p * 3] == 0.0f);
            }
    }
    for (int c = 0; c < 10; c++) assert_int_equal(train_counts[c], 6000);
    free(img);
    dataset_free(ds);
}

static void test_fmnist_resize_keeps_mean(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "fashion-mnist");
    cfg.image_size = 28;
    Dataset *big = open_or_fail(&cfg);
    cfg.image_size = 16;
    Dataset *small = open_or_fail(&cfg);
    float a[28 * 28 * 3], b[16 * 16 * 3];
    char caption[512];
    for (uint64_t i = 0; i < 20; i++) {
        dataset_sample_raw(big, i, a, caption, sizeof caption);
        dataset_sample_raw(small, i, b, caption, sizeof caption);
        double ma = 0, mb = 0;
        for (int p = 0; p < 28 * 28 * 3; p++) ma += a[p];
        for (int p = 0; p < 16 * 16 * 3; p++) mb += b[p];
        assert_true(fabs(ma / (28 * 28 * 3) - mb / (16 * 16 * 3)) < 1e-4);
    }
    dataset_free(big);
    dataset_free(small);
}

/* ---- corrupt IDX files ---- */

static char tmpdir[64];

static void write_file(const char *name, const uint8_t *data, size_t n, int gzip_times) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (gzip_times == 2) {
        /* gzip in memory first, then gzip that */
        uLong cap = compressBound(n) + 64;
        uint8_t *once = malloc(cap);
        z_stream z = {0};
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (uint8_t *)data;
        z.avail_in = (uInt)n;
        z.next_out = once;
        z.avail_out = (uInt)cap;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        size_t m = z.total_out;
        deflateEnd(&z);
        write_file(name, once, m, 1);
        free(once);
        return;
    }
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
}

static uint8_t *idx_bytes(int ndims, uint32_t n, uint32_t h, uint32_t w, size_t *len) {
    size_t header = 4 + 4 * (size_t)ndims, items = ndims == 3 ? (size_t)n * h * w : n;
    uint8_t *b = calloc(header + items + 64, 1);
    b[2] = 0x08;
    b[3] = (uint8_t)ndims;
    uint32_t dims[3] = {n, h, w};
    for (int d = 0; d < ndims; d++)
        for (int k = 0; k < 4; k++) b[4 + 4 * d + k] = (uint8_t)(dims[d] >> (24 - 8 * k));
    for (size_t i = 0; i < items; i++) b[header + i] = (uint8_t)(ndims == 3 ? i * 7 : i % 10);
    *len = header + items;
    return b;
}

static void write_valid(const char *split) {
    char name[64];
    size_t len;
    uint8_t *b = idx_bytes(3, 6, 28, 28, &len);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", split);
    write_file(name, b, len, 1);
    free(b);
    b = idx_bytes(1, 6, 0, 0, &len);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", split);
    write_file(name, b, len, 1);
    free(b);
}

/* dataset_open on tmpdir fails with one line containing `file` and `what`. */
static void expect_fmnist_error(const char *file, const char *what) {
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "fashion-mnist");
    snprintf(cfg.fmnist_dir, sizeof cfg.fmnist_dir, "%s", tmpdir);
    Err err = {{0}};
    Dataset *ds = dataset_open(&cfg, &err);
    if (ds) fail_msg("%s (%s): dataset_open succeeded", file, what);
    if (!strstr(err.msg, file) || !strstr(err.msg, what) || strchr(err.msg, '\n'))
        fail_msg("expected one line with '%s' and '%s', got '%s'", file, what, err.msg);
    write_valid("train");
    write_valid("t10k");
}

static void test_fmnist_corrupt_files_rejected(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cliplab-test-data-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    write_valid("train");
    write_valid("t10k");
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "fashion-mnist");
    snprintf(cfg.fmnist_dir, sizeof cfg.fmnist_dir, "%s", tmpdir);
    Dataset *ds = open_or_fail(&cfg); /* the valid miniature loads */
    assert_int_equal(dataset_train_size(ds), 6);
    dataset_free(ds);

    const char *IMG = "train-images-idx3-ubyte.gz", *LAB = "train-labels-idx1-ubyte.gz";
    size_t len;
    uint8_t *b = idx_bytes(3, 6, 28, 28, &len);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, LAB);
    unlink(path);
    expect_fmnist_error(LAB, "cannot open");

    b[0] = 0x12, b[1] = 0x34;
    write_file(IMG, b, len, 1);
    expect_fmnist_error(IMG, "bad IDX magic");
    b[0] = 0x03, b[1] = 0x08, b[2] = 0, b[3] = 0;
    write_file(IMG, b, len, 1);
    expect_fmnist_error(IMG, "byte-swapped");
    b[0] = 0, b[1] = 0, b[2] = 0x0D, b[3] = 3;
    write_file(IMG, b, len, 1);
    expect_fmnist_error(IMG, "not unsigned byte");
    b[2] = 0x08, b[3] = 2;
    write_file(IMG, b, len, 1);
    expect_fmnist_error(IMG, "2 dimensions, expected 3");
    b[3] = 3;
    write_file(IMG, b, len, 2);
    expect_fmnist_error(IMG, "still gzipped");
    write_file(IMG, b, len - 10, 1);
    expect_fmnist_error(IMG, "truncated");
    write_file(IMG, b, 10, 1);
    expect_fmnist_error(IMG, "truncated");
    write_file(IMG, b, 2, 1);
    expect_fmnist_error(IMG, "truncated");
    write_file(IMG, b, len + 5, 1);
    expect_fmnist_error(IMG, "trailing data");
    free(b);

    b = idx_bytes(3, 6, 27, 28, &len);
    write_file(IMG, b, len, 1);
    expect_fmnist_error(IMG, "images are 27x28");
    free(b);
    b = idx_bytes(3, 0, 28, 28, &len);
    write_file(IMG, b, len, 1);
    expect_fmnist_error(IMG, "no items");
    free(b);

    b = idx_bytes(1, 5, 0, 0, &len);
    write_file(LAB, b, len, 1);
    expect_fmnist_error(LAB, "has 5 labels");
    free(b);
    b = idx_bytes(1, 6, 0, 0, &len);
    b[8 + 3] = 10;
    write_file(LAB, b, len, 1);
    expect_fmnist_error(LAB, "label 10 of item 3 out of range");
    /* a damaged gzip stream: flip bytes of the compressed data */
    write_file(LAB, b, len, 1);
    snprintf(path, sizeof path, "%s/%s", tmpdir, LAB);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -6, SEEK_END);
    fputc(0xAB, f);
    fputc(0xCD, f);
    fclose(f);
    expect_fmnist_error(LAB, "corrupt gzip stream");
    /* a stream cut inside or before its 8-byte trailer (CRC-32, length) loads silently in zlib's
     * gzread; every cut is refused, and the intact file still loads */
    b[8 + 3] = 3;
    write_file(LAB, b, len, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    for (int cut = 1; cut <= 12; cut++) {
        write_file(LAB, b, len, 1);
        assert_int_equal(truncate(path, st.st_size - cut), 0);
        expect_fmnist_error(LAB, cut <= 8 ? "truncated gzip stream: it ends before its CRC-32 and length trailer"
                                          : "truncated gzip stream");
    }
    write_file(LAB, b, len, 1);
    ds = open_or_fail(&cfg);
    dataset_free(ds);
    free(b);

    const char *names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

static void expect_config_error(DataConfig *cfg, const char *what) {
    Err err = {{0}};
    Dataset *ds = dataset_open(cfg, &err);
    if (ds) fail_msg("expected '%s', dataset_open succeeded", what);
    if (!strstr(err.msg, what)) fail_msg("expected '%s', got '%s'", what, err.msg);
    data_config_default(cfg);
}

static void test_bad_config_rejected(void **state) {
    (void)state;
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, "imagenet");
    char valid[128], msg[256];
    names_join(valid, sizeof valid, dataset_name); /* the registry is the list (test_registry.c) */
    snprintf(msg, sizeof msg, "unknown dataset 'imagenet'; valid: %s", valid);
    expect_config_error(&cfg, msg);
    cfg.image_size = 8;
    expect_config_error(&cfg, "data.image_size 8 out of range");
    cfg.caption_noise = 1.5f;
    expect_config_error(&cfg, "data.caption_noise");
    cfg.context = 2;
    expect_config_error(&cfg, "data.context 2");
    cfg.max_objects = 4;
    expect_config_error(&cfg, "data.max_objects 4");
    strcpy(cfg.holdout[1][0], "mauve");
    expect_config_error(&cfg, "data.holdout[1]: unknown colour 'mauve'");
    strcpy(cfg.holdout[0][1], "blob");
    expect_config_error(&cfg, "unknown shape 'blob'");
    cfg.n_holdout = SHAPES_N_COLOURS;
    for (int c = 0; c < SHAPES_N_COLOURS; c++) {
        strcpy(cfg.holdout[c][0], SHAPES_COLOUR_NAMES[c]);
        strcpy(cfg.holdout[c][1], "star");
    }
    expect_config_error(&cfg, "shape 'star' is held out with every colour");
    strcpy(cfg.dataset, "fashion-mnist");
    strcpy(cfg.fmnist_dir, "/nonexistent/dir");
    expect_config_error(&cfg, "/nonexistent/dir/train-images-idx3-ubyte.gz: cannot open");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_deterministic_across_threads_and_order),
        cmocka_unit_test(test_fmnist_deterministic_across_threads_and_order),
        cmocka_unit_test(test_shapes_image_independent_of_caption_noise),
        cmocka_unit_test(test_every_attribute_value_occurs),
        cmocka_unit_test(test_holdout_never_leaks),
        cmocka_unit_test(test_caption_diversity_grows_with_noise),
        cmocka_unit_test(test_render_geometry_and_antialiasing),
        cmocka_unit_test(test_tokenizer_round_trip_truncation_bow),
        cmocka_unit_test(test_batches_and_eval_pairs),
        cmocka_unit_test(test_zeroshot_tasks),
        cmocka_unit_test(test_probe_task_is_its_own_set),
        cmocka_unit_test(test_validation_sets_disjoint_from_test),
        cmocka_unit_test(test_fmnist_real_files_load),
        cmocka_unit_test(test_fmnist_resize_keeps_mean),
        cmocka_unit_test(test_fmnist_corrupt_files_rejected),
        cmocka_unit_test(test_bad_config_rejected),
    };
    return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
