/* test_zeroshot.c — the caption LM's zero-shot rules on a tiny model with perturbed weights:
 * the grammar's sentences per task, the prefix-tree decode against one full decode per
 * (image, sentence), the class marginal against a log-sum-exp of explicitly decoded sentence
 * log-probabilities, and the PMI rule's baseline. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data/shapes.h"
#include "eval/evaluate.h"
#include "spec/spec.h"
#include "model/model.h"

/* Tree vs full decode: the same kernels on the same rows; the products' blocking differs with the
 * number of rows, so hidden states agree to a few fp32 ulps (~1e-6 relative), and a sentence's
 * log-probability, a sum of ~7 terms of magnitude up to ~10 through a log-sum-exp over V, to about
 * 1e-6 * 7 * 10 ~ 7e-5 absolute at worst (measured: 0 to 4e-6). */
#define TREE_VS_FULL_TOL 1e-4

/* A tiny caption model whose weights are pushed away from the near-uniform init, so sentences
 * get clearly different probabilities; 16 images per task (the smallest eval set). */
static void tiny_caption(Model *m) {
    Config c;
    config_defaults(&c);
    Err err;
    const char *over[] = {"data.image_size=16", "data.context=10", "data.eval_images=16", "model.image.widths=4,6",
                          "model.image.tap=img.stage2", "model.text.width=8", "model.text.layers=1",
                          "model.text.heads=2", "train.batch_size=16", "objective.prefix_tokens=2",
                          "objective.kind=caption", "model.text.kind=transformer"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++)
        if (spec_override(&c, over[i], &err)) fail_msg("%s: %s", over[i], err.msg);
    if (model_build(m, &c, &err)) fail_msg("model_build: %s", err.msg);
    Rng r;
    rng_init(&r, 77);
    float *v = m->params.buf[TBUF_VALUE];
    for (size_t k = 0; k < m->params.total; k++) v[k] += 0.5f * rng_normal(&r);
}

static const ZeroShotTask *task_named(Model *m, const char *name) {
    int n = 0;
    const ZeroShotTask *t = dataset_zeroshot_tasks(m->ds, &n);
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    fail_msg("no task %s", name);
    return NULL;
}

/* Each task's sentences are the grammar's own, name their class, and cover every unnamed attribute
 * in every template; template 0 is exactly the caption of a one-object scene at noise 0. */
static void test_grammar_sentences_per_task(void **state) {
    (void)state;
    Model m;
    tiny_caption(&m);
    const Tokenizer *tok = dataset_tokenizer(m.ds);
    const char *names[] = {"colour_shape_seen", "shape", "colour"};
    for (int q = 0; q < 3; q++) {
        const ZeroShotTask *t = task_named(&m, names[q]);
        assert_int_equal(t->n_gen, SHAPES_GEN_TEMPLATES * SHAPES_N_COLOURS * SHAPES_N_SHAPES);
        int per_class[100] = {0};
        for (int k = 0; k < t->n_gen; k++) {
            per_class[t->gen_class[k]]++;
            char text[256];
            tokenizer_decode(tok, t->gen_tokens + (size_t)k * m.batch.T, t->gen_lengths[k], text, sizeof text);
            /* the class name (a shape, a colour, or "colour shape") appears in the sentence */
            assert_non_null(strstr(text, t->class_names[t->gen_class[k]]));
        }
        for (int cl = 0; cl < t->n_classes; cl++) assert_int_equal(per_class[cl], t->n_gen / t->n_classes);
    }
    char s0[256], cap[256], dec[256];
    shapes_object_sentence(s0, sizeof s0, 0, 1, 0); /* orange circle: the article follows the colour */
    assert_string_equal(s0, "a photo of an orange circle.");
    ShapesScene sc = {.n_objects = 1};
    sc.obj[0].colour = 1;
    sc.obj[0].shape = 0;
    Rng r;
    rng_init(&r, 5);
    shapes_caption(cap, sizeof cap, &sc, 0.0f, &r);
    assert_string_equal(cap, s0);
    shapes_object_sentence(s0, sizeof s0, 3, 5, 3);
    assert_string_equal(s0, "a blue star.");
    /* shape task, class star (3): the sentence of template 3, colour blue is one of its 40 */
    const ZeroShotTask *t = task_named(&m, "shape");
    int found = 0;
    for (int k = 0; k < t->n_gen; k++) {
        tokenizer_decode(tok, t->gen_tokens + (size_t)k * m.batch.T, t->gen_lengths[k], dec, sizeof dec);
        found += !strcmp(dec, "a blue star") && t->gen_class[k] == 3;
    }
    assert_int_equal(found, 1);
    model_free(&m);
}

/* The prefix-tree decode equals one full decode per (image, sentence), on every task's sentences. */
static void test_tree_decode_equals_full_decode(void **state) {
    (void)state;
    Model m;
    tiny_caption(&m);
    const char *names[] = {"colour_shape_seen", "colour", "count"};
    for (int q = 0; q < 3; q++) {
        const ZeroShotTask *t = task_named(&m, names[q]);
        int n = 5, ng = t->n_gen;
        float *tree = malloc(sizeof(float) * n * ng), *full = malloc(sizeof(float) * n * ng);
        objective_caption_sentence_logprobs(m.obj, t, n, 0, tree);
        objective_caption_sentence_logprobs(m.obj, t, n, 1, full);
        double worst = 0, spread = 0;
        for (int i = 0; i < n * ng; i++) {
            worst = fmax(worst, fabs(tree[i] - full[i]));
            spread = fmax(spread, fabs(full[i] - full[0]));
            assert_true(isfinite(full[i]) && full[i] < 0);
        }
        print_message("%s: %d sentences, worst |tree - full| %.2e, log-prob spread %.1f\n", names[q], ng, worst, spread);
        assert_true(worst <= TREE_VS_FULL_TOL);
        assert_true(spread > 1.0); /* the sentences really differ: the comparison is not vacuous */
        free(tree), free(full);
    }
    model_free(&m);
}

/* Shape class s scores log sum over (template, colour) of p("... <colour> <s> ..." | image): the
 * marginal equals a log-sum-exp, in double, of the explicitly (fully) decoded sentences. The PMI
 * rule subtracts one baseline per class, the same for every image. */
static void test_marginal_is_logsumexp_and_pmi_a_class_offset(void **state) {
    (void)state;
    Model m;
    tiny_caption(&m);
    const ZeroShotTask *t = task_named(&m, "shape");
    int n = t->n_images, nc = t->n_classes, ng = t->n_gen;
    float *full = malloc(sizeof(float) * n * ng), *scores = malloc(sizeof(float) * 2 * n * nc);
    objective_caption_sentence_logprobs(m.obj, t, n, 1, full);
    m.obj->ops->zeroshot_scores(m.obj, t, scores);
    assert_string_equal(m.obj->ops->zeroshot_second_rule, "pmi");
    for (int i = 0; i < n; i++)
        for (int cl = 0; cl < nc; cl++) {
            double sum = 0;
            for (int k = 0; k < ng; k++)
                if (t->gen_class[k] == cl) sum += exp((double)full[(size_t)i * ng + k]);
            double want = log(sum);
            assert_true(fabs(scores[(size_t)i * nc + cl] - want) <= TREE_VS_FULL_TOL + 1e-6 * fabs(want));
            double off0 = scores[(size_t)n * nc + cl] - scores[cl];
            double off = scores[(size_t)n * nc + (size_t)i * nc + cl] - scores[(size_t)i * nc + cl];
            assert_true(fabs(off - off0) <= 1e-5 * (1 + fabs(off0)));
        }
    free(full), free(scores);
    model_free(&m);
}

/* With every image of the task the same, the mean image is that image: PMI scores are all 0. */
static void test_pmi_vanishes_when_every_image_is_the_mean(void **state) {
    (void)state;
    Model m;
    tiny_caption(&m);
    ZeroShotTask same = *task_named(&m, "colour");
    size_t floats = (size_t)m.batch.R * m.batch.R * 3;
    float *images = malloc(sizeof(float) * floats * same.n_images);
    for (int i = 0; i < same.n_images; i++) memcpy(images + i * floats, same.images, floats * sizeof(float));
    same.images = images;
    int nc = same.n_classes, n = same.n_images;
    float *scores = malloc(sizeof(float) * 2 * n * nc);
    m.obj->ops->zeroshot_scores(m.obj, &same, scores);
    double spread = 0;
    for (int k = 0; k < n * nc; k++) {
        assert_true(fabs(scores[(size_t)n * nc + k]) < 1e-4);
        spread = fmax(spread, fabs(scores[k] - scores[0]));
    }
    assert_true(spread > 0.1); /* the raw scores do differ between classes */
    free(images), free(scores);
    model_free(&m);
}

/* evaluate_model logs both rules of the caption LM for each task. */
static void test_evaluate_logs_both_caption_rules(void **state) {
    (void)state;
    Model m;
    tiny_caption(&m);
    Metrics out;
    evaluate_model(&m, EVAL_ALL_TASKS, comm_serial(), &out);
    const char *names[] = {"zs.colour_shape_seen.top1", "zs.colour_shape_seen.pmi.top1", "zs.shape.pmi.top5",
                           "zs.position.pmi.top1"};
    for (int k = 0; k < 4; k++) {
        double v = metrics_get(&out, names[k]);
        assert_true(v >= 0 && v <= 1);
    }
    model_free(&m);
}

void openblas_set_num_threads(int n);

int main(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar_sentences_per_task),
        cmocka_unit_test(test_tree_decode_equals_full_decode),
        cmocka_unit_test(test_marginal_is_logsumexp_and_pmi_a_class_offset),
        cmocka_unit_test(test_pmi_vanishes_when_every_image_is_the_mean),
        cmocka_unit_test(test_evaluate_logs_both_caption_rules),
    };
    return cmocka_run_group_tests_name("zeroshot", tests, NULL, NULL);
}
