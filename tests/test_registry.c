/* test_registry.c — every registry of named plug-ins is the only list of its names: each name of
 * each registry that an enum key of the spec reads (datasets, image norms, text towers, heads,
 * activations, objectives, losses, temperature modes) loads through the spec (YAML and override),
 * is listed by help-spec on its key's line, is named in the key's "valid:" error, and builds a tiny
 * model that trains one step to a finite loss. Every zero-shot task of every dataset is accepted by
 * the model builder, and a late build failure frees what it built.
 * The enum keys are found by walking the schema, so a new enum key is covered without a change here;
 * the plug-in registries are also checked by name, so dropping one from the schema fails.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "data/data.h"
#include "heads/head.h"
#include "losses/losses.h"
#include "objectives/objective.h"
#include "spec/spec.h"
#include "towers/text_tower.h"
#include "model/model.h"

/* Tiny dims under which every plug-in builds: 8 features on both sides and an 8-d joint space, so
 * the identity head fits too; two pairs per batch at least, for the losses that need a negative. */
static void tiny_config(Config *c) {
    config_defaults(c);
    Err err;
    const char *over[] = {"data.image_size=16", "data.context=10", "data.eval_images=16", "model.image.widths=4,8",
                          "model.image.tap=img.stage2", "model.text.width=8", "model.text.layers=1",
                          "model.text.heads=2", "model.embed_dim=8", "model.head.hidden=8", "train.batch_size=4",
                          "eval.retrieval_n=16", "objective.prefix_tokens=2"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++)
        if (spec_override(c, over[i], &err)) fail_msg("%s: %s", over[i], err.msg);
}

/* The dataset of c opened, and its zero-shot tasks (*n >= 1). */
static Dataset *open_tasks(const Config *c, const ZeroShotTask **tasks, int *n) {
    DataConfig dc;
    data_config_from(&dc, c);
    Err err;
    Dataset *ds = dataset_open(&dc, &err);
    if (!ds) fail_msg("%s", err.msg);
    *tasks = dataset_zeroshot_tasks(ds, n);
    assert_true(*n >= 1);
    return ds;
}

/* eval.task and eval.probe_task name tasks of the configured dataset (a cross-key check of the
 * model builder): the dataset's first task. */
static void use_first_task(Config *c) {
    int n;
    const ZeroShotTask *tasks;
    Dataset *ds = open_tasks(c, &tasks, &n);
    snprintf(c->eval.task, sizeof c->eval.task, "%s", tasks[0].name);
    snprintf(c->eval.probe_task, sizeof c->eval.probe_task, "%s", tasks[0].name);
    dataset_free(ds);
}

/* help-spec's line of key k, the text after "one of ", as a malloc'd string. */
static char *help_values(const SpecKey *k) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    Err err;
    assert_int_equal(spec_help_print(f, NULL, &err), 0);
    fclose(f);
    char head[128];
    snprintf(head, sizeof head, "\n  %s ", k->name);
    const char *line = strstr(text, head);
    if (!line) fail_msg("help-spec has no line for %s", k->name);
    line++;
    const char *end = strchr(line, '\n');
    const char *one_of = strstr(line, "one of ");
    if (!one_of || one_of > end) fail_msg("help-spec line of %s lists no values", k->name);
    one_of += strlen("one of ");
    char *values = strndup(one_of, (size_t)(end - one_of));
    free(text);
    return values;
}

/* Whether `name` is one entry of a ", "-separated list. */
static int list_has(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p; p = strstr(p, ", ")) {
        if (p != list) p += 2;
        if (!strncmp(p, name, n) && (p[n] == 0 || p[n] == ',')) return 1;
    }
    return 0;
}

/* Builds the model of c and trains one step on one batch: the loss must be finite. */
static void build_and_step(const Config *c, const char *what) {
    Model m;
    Err err;
    if (model_build(&m, c, &err)) fail_msg("%s: model_build: %s", what, err.msg);
    dataset_fill_batch(m.ds, &m.batch, 0, c->train.batch_size);
    tensors_zero(&m.params, TBUF_GRAD);
    float loss = m.obj->ops->forward_backward(m.obj, &m.batch, comm_serial());
    if (!isfinite(loss)) fail_msg("%s: loss %g", what, (double)loss);
    model_free(&m);
}

static void check_name(const SpecKey *k, const char *name, const char *help_list) {
    char what[160];
    snprintf(what, sizeof what, "%s=%s", k->name, name);
    Config c;
    tiny_config(&c);
    Err err;
    if (spec_override(&c, what, &err)) fail_msg("override %s: %s", what, err.msg);
    assert_string_equal((const char *)&c + k->offset, name);

    Config y;
    char yaml[160];
    snprintf(yaml, sizeof yaml, "%s: %s\n", k->name, name);
    if (spec_load_string("registry.yaml", yaml, strlen(yaml), &y, &err)) fail_msg("yaml %s: %s", what, err.msg);
    assert_string_equal((const char *)&y + k->offset, name);

    if (!list_has(help_list, name)) fail_msg("help-spec of %s lacks '%s' (lists: %s)", k->name, name, help_list);

    if (!strcmp(k->name, "data.dataset")) use_first_task(&c);
    build_and_step(&c, what);
}

/* The error for an unknown value names exactly the registry's list. */
static void check_unknown(const SpecKey *k) {
    Config c;
    config_defaults(&c);
    char assign[128], valid[256], want[512];
    snprintf(assign, sizeof assign, "%s=no-such-plugin", k->name);
    names_join(valid, sizeof valid, k->names);
    snprintf(want, sizeof want, "command line: unknown %s 'no-such-plugin'; valid: %s", k->name, valid);
    Err err;
    assert_int_equal(spec_override(&c, assign, &err), -1);
    assert_string_equal(err.msg, want);
}

static void test_every_registry_name_loads_is_listed_and_builds(void **state) {
    (void)state;
    int n, n_enum = 0;
    const SpecKey *keys = spec_keys(&n);
    for (int i = 0; i < n; i++) {
        const SpecKey *k = &keys[i];
        if (k->type != SPEC_ENUM) continue;
        assert_non_null(k->names);
        n_enum++;
        char *help_list = help_values(k);
        char valid[256];
        names_join(valid, sizeof valid, k->names);
        assert_string_equal(help_list, valid); /* the whole list, in registry order */
        Config defaults;
        config_defaults(&defaults);
        assert_string_equal((const char *)&defaults + k->offset, k->names(0)); /* the first is the default */
        int count = 0;
        for (; k->names(count); count++) check_name(k, k->names(count), help_list);
        print_message("%-24s %d names: %s\n", k->name, count, valid);
        assert_true(count >= 2);
        assert_null(k->names(-1));
        check_unknown(k);
        free(help_list);
    }
    assert_true(n_enum >= 8);
}

/* The plug-in registries are the ones the spec reads (not a list of their own). */
static void test_plugin_keys_read_the_plugin_registries(void **state) {
    (void)state;
    const struct {
        const char *key;
        NameFn registry;
    } want[] = {
        {"data.dataset", dataset_name},          {"model.text.kind", text_tower_kind_name},
        {"model.head.kind", head_kind_name},     {"model.head.activation", head_activation_name},
        {"objective.kind", objective_kind_name}, {"loss.kind", loss_registry_name},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const SpecKey *k = spec_find(want[i].key);
        assert_non_null(k);
        if (k->names != want[i].registry) fail_msg("%s does not read its registry", want[i].key);
    }
}

/* Zero-shot tasks are a dataset's named kind: every task of every dataset is accepted as eval.task
 * and eval.probe_task by the model builder, and an unknown one is refused naming exactly the
 * dataset's tasks. */
static void test_every_task_of_every_dataset_is_accepted(void **state) {
    (void)state;
    for (int d = 0; dataset_name(d); d++) {
        Config c;
        tiny_config(&c);
        snprintf(c.data.dataset, sizeof c.data.dataset, "%s", dataset_name(d));
        int n;
        const ZeroShotTask *tasks;
        Dataset *ds = open_tasks(&c, &tasks, &n);
        Err err;
        char valid[256] = "";
        for (int i = 0; i < n; i++) {
            snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "", tasks[i].name);
            char task[160];
            snprintf(task, sizeof task, "eval.task=%s", tasks[i].name);
            assert_int_equal(spec_override(&c, task, &err), 0);
            snprintf(task, sizeof task, "eval.probe_task=%s", tasks[i].name);
            assert_int_equal(spec_override(&c, task, &err), 0);
            Model m;
            if (model_build(&m, &c, &err)) fail_msg("%s task %s: %s", dataset_name(d), tasks[i].name, err.msg);
            model_free(&m);
        }
        print_message("%-14s tasks: %s\n", dataset_name(d), valid);
        assert_int_equal(spec_override(&c, "eval.task=no_such_task", &err), 0);
        Model m;
        assert_int_equal(model_build(&m, &c, &err), -1);
        char want[512];
        snprintf(want, sizeof want, "unknown eval.task 'no_such_task' for dataset %s; valid: %s", dataset_name(d), valid);
        assert_string_equal(err.msg, want);
        dataset_free(ds);
    }
}

/* A spec that fails late (after towers and heads were built) is one line of error, and the parts
 * built before the failure are freed: under `make test SAN=1` LeakSanitizer fails this test if not. */
static void test_late_build_failure_frees_what_it_built(void **state) {
    (void)state;
    const struct {
        const char *over[3], *msg;
    } cases[] = {
        /* contrastive: image tower, text tower and image head built, the text head refuses 16 -> 8 */
        {{"model.head.kind=identity", "model.text.width=16", "model.text.kind=cbow"},
         "identity head: embedding dim 8 must equal the representation dim 16"},
        /* caption: image tower built, the decoder refuses 8 % 3 */
        {{"objective.kind=caption", "model.text.heads=3", "model.text.width=8"},
         "model.text.width (8) must be a multiple of model.text.heads (3)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Config c;
        tiny_config(&c);
        Err err;
        for (int k = 0; k < 3; k++) assert_int_equal(spec_override(&c, cases[i].over[k], &err), 0);
        Model m;
        assert_int_equal(model_build(&m, &c, &err), -1);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

/* The loss scalars' initial values are spec keys that reach the built model: each loss with
 * scalars, built from YAML setting all three init keys, starts at the values of its own keys
 * (siglip: scale and bias; the softmax losses: their temperature), and help-spec lists them with
 * the paper's defaults. */
static void test_loss_init_keys_reach_the_model(void **state) {
    (void)state;
    const char *yaml = "loss: {init_temperature: 0.5, init_logit_scale: 4, init_bias: -5}\n";
    for (int kind = 0; loss_registry_name(kind); kind++) {
        Config c, y;
        tiny_config(&c);
        Err err;
        if (spec_load_string("init.yaml", yaml, strlen(yaml), &y, &err)) fail_msg("%s", err.msg);
        c.loss = y.loss;
        snprintf(c.loss.kind, sizeof c.loss.kind, "%s", loss_registry_name(kind));
        Model m;
        if (model_build(&m, &c, &err)) fail_msg("%s: %s", loss_registry_name(kind), err.msg);
        int k = tensors_find(&m.params, "loss.scalars");
        if (loss_n_scalars(kind) == 0) {
            assert_int_equal(k, -1);
        } else {
            const float *sc = tensors_ptr(&m.params, TBUF_VALUE, k);
            bool siglip = kind == LOSS_SIGLIP;
            assert_float_equal(sc[0], siglip ? logf(4.0f) : logf(2.0f), 1e-6f);
            if (siglip) assert_float_equal(sc[1], -5.0f, 0.0f);
        }
        model_free(&m);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    Err err;
    assert_int_equal(spec_help_print(f, "loss", &err), 0);
    fclose(f);
    const char *scale = strstr(text, "\n  loss.init_logit_scale "), *bias = strstr(text, "\n  loss.init_bias ");
    assert_non_null(scale);
    assert_non_null(bias);
    assert_non_null(strstr(scale, "siglip: initial logit scale exp(t) (paper: 10); (0, 1000]\n"));
    assert_non_null(strstr(bias, "siglip: initial logit bias b (paper: -10); [-100, 100]\n"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_registry_name_loads_is_listed_and_builds),
        cmocka_unit_test(test_plugin_keys_read_the_plugin_registries),
        cmocka_unit_test(test_every_task_of_every_dataset_is_accepted),
        cmocka_unit_test(test_late_build_failure_frees_what_it_built),
        cmocka_unit_test(test_loss_init_keys_reach_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
