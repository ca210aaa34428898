/* test_spec.c — experiment specs and ablation files: defaults, a full example, every error class
 * with its exact "file:line:col: message", overrides, base inheritance, the YAML round trip,
 * help-spec, sweep expansion and profiles, and a mutation fuzz of the loader.
 * Fixtures are written by the tests into a fresh temporary folder, so each expected message sits
 * next to the text that produces it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/check.h"
#include "common/rng.h"
#include "spec/spec.h"
#include "spec/sweep.h"

static char g_dir[256];

/* Writes `text` to g_dir/name and returns the path (static buffer rotation: 4 live paths). */
static const char *write_file(const char *name, const char *text) {
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 512, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return path;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, 1024, f, ap);
    va_end(ap);
    return b;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/cliplab_test_spec_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ experiments */

static void test_defaults(void **state) {
    (void)state;
    Config c;
    config_defaults(&c);
    assert_string_equal(c.name, "experiment");
    assert_int_equal(c.seed, 1);
    assert_string_equal(c.data.dataset, "shapes");
    assert_int_equal(c.data.image_size, 32);
    assert_true(c.data.caption_noise == 0.5);
    assert_int_equal(c.data.max_objects, 3);
    assert_int_equal(c.data.n_holdout, 2);
    assert_string_equal(c.data.holdout[0], "red circle");
    assert_string_equal(c.data.holdout[1], "blue square");
    assert_string_equal(c.data.fmnist_dir, "/usr/share/datasets/fashion-mnist");
    assert_int_equal(c.data.context, 16);
    assert_int_equal(c.data.eval_images, 512);
    assert_int_equal(c.model.image.n_widths, 4);
    int widths[] = {32, 64, 128, 256};
    for (int i = 0; i < 4; i++) assert_int_equal(c.model.image.widths[i], widths[i]);
    assert_int_equal(c.model.image.convs_per_stage, 1);
    assert_false(c.model.image.residual);
    assert_string_equal(c.model.image.norm, "none");
    assert_string_equal(c.model.image.tap, "img.stage4");
    assert_string_equal(c.model.text.kind, "cbow");
    assert_int_equal(c.model.text.width, 128);
    assert_int_equal(c.model.text.layers, 2);
    assert_int_equal(c.model.text.heads, 4);
    assert_string_equal(c.model.text.tap, "");
    assert_string_equal(c.model.head.kind, "linear");
    assert_int_equal(c.model.head.depth, 2);
    assert_int_equal(c.model.head.hidden, 256);
    assert_string_equal(c.model.head.activation, "relu");
    assert_int_equal(c.model.embed_dim, 64);
    assert_string_equal(c.objective.kind, "contrastive");
    assert_int_equal(c.objective.prefix_tokens, 4);
    assert_string_equal(c.loss.kind, "infonce");
    assert_false(c.loss.one_sided);
    assert_string_equal(c.loss.temperature, "learned");
    assert_true(c.loss.init_temperature == 0.07);
    assert_true(c.loss.init_logit_scale == 10.0); /* SigLIP's paper: t' = ln 10, b = -10 */
    assert_true(c.loss.init_bias == -10.0);
    assert_true(c.loss.lambda == 1.0);
    assert_int_equal(c.loss.tile, 0);
    assert_true(c.train.images == 200000);
    assert_int_equal(c.train.batch_size, 256);
    assert_true(c.train.lr == 1e-3);
    assert_true(c.train.weight_decay == 0.1);
    assert_true(c.train.warmup_images == 10000);
    assert_true(c.train.beta1 == 0.9);
    assert_true(c.train.beta2 == 0.98);
    assert_true(c.train.eps == 1e-6);
    assert_true(c.train.grad_clip == 1.0);
    assert_int_equal(c.train.threads, 0);
    assert_true(c.train.checkpoint_every_images == 0);
    assert_true(c.eval.every_images == 20000);
    assert_true(c.eval.probe);
    assert_int_equal(c.eval.retrieval_n, 512);
    assert_true(c.eval.target_top1 == 0.5);
    assert_string_equal(c.eval.task, "colour_shape_seen");

}

static const char *FULL_EXAMPLE =
    "# every section, nested and dotted keys, comments, flow and block lists\n"
    "name: full-example\n"
    "seed: 42\n"
    "data:\n"
    "  dataset: fashion-mnist\n"
    "  image_size: 28\n"
    "  caption_noise: 0.25\n"
    "  max_objects: 2\n"
    "  holdout:\n"
    "    - green triangle\n"
    "    - \"yellow star\"\n"
    "    - red circle\n"
    "  fmnist_dir: /data/fmnist\n"
    "  context: 20\n"
    "  eval_images: 1024\n"
    "model:\n"
    "  image: {widths: [16, 32, 64], convs_per_stage: 2, residual: true, norm: layer, tap: img.stage2}\n"
    "  text:\n"
    "    kind: transformer\n"
    "    width: 96\n"
    "    layers: 3\n"
    "    heads: 6\n"
    "    tap: txt.block2\n"
    "  head.kind: mlp\n"
    "  head.depth: 3\n"
    "  head.hidden: 512\n"
    "  head.activation: gelu\n"
    "  embed_dim: 32\n"
    "objective: {kind: bow, prefix_tokens: 2}\n"
    "loss:\n"
    "  kind: siglip\n"
    "  one_sided: true\n"
    "  temperature: fixed\n"
    "  init_temperature: 0.1\n"
    "  lambda: 2.5\n"
    "  tile: 128\n"
    "train.images: 5e6\n"
    "train:\n"
    "  batch_size: 512\n"
    "  lr: 3e-4\n"
    "  weight_decay: 0.05\n"
    "  warmup_images: 1000\n"
    "  beta1: 0.8\n"
    "  beta2: 0.95\n"
    "  eps: 1e-8\n"
    "  grad_clip: 0\n"
    "  threads: 2\n"
    "  checkpoint_every_images: 50000\n"
    "eval:\n"
    "  every_images: 10000\n"
    "  probe: false\n"
    "  retrieval_n: 256\n"
    "  target_top1: 0.75\n"
    "  task: fmnist\n";

static void test_full_example_parses(void **state) {
    (void)state;
    Config c;
    Err err = {0};
    int rc = spec_load(write_file("full.yaml", FULL_EXAMPLE), &c, &err);
    assert_string_equal(err.msg, "");
    assert_int_equal(rc, 0);
    assert_string_equal(c.name, "full-example");
    assert_int_equal(c.seed, 42);
    assert_string_equal(c.data.dataset, "fashion-mnist");
    assert_int_equal(c.data.image_size, 28);
    assert_true(c.data.caption_noise == 0.25);
    assert_int_equal(c.data.max_objects, 2);
    assert_int_equal(c.data.n_holdout, 3);
    assert_string_equal(c.data.holdout[0], "green triangle");
    assert_string_equal(c.data.holdout[1], "yellow star");
    assert_string_equal(c.data.holdout[2], "red circle");
    assert_string_equal(c.data.fmnist_dir, "/data/fmnist");
    assert_int_equal(c.data.context, 20);
    assert_int_equal(c.data.eval_images, 1024);
    assert_int_equal(c.model.image.n_widths, 3);
    assert_int_equal(c.model.image.widths[0], 16);
    assert_int_equal(c.model.image.widths[2], 64);
    assert_int_equal(c.model.image.widths[3], 0);
    assert_int_equal(c.model.image.convs_per_stage, 2);
    assert_true(c.model.image.residual);
    assert_string_equal(c.model.image.norm, "layer");
    assert_string_equal(c.model.image.tap, "img.stage2");
    assert_string_equal(c.model.text.kind, "transformer");
    assert_int_equal(c.model.text.width, 96);
    assert_int_equal(c.model.text.layers, 3);
    assert_int_equal(c.model.text.heads, 6);
    assert_string_equal(c.model.text.tap, "txt.block2");
    assert_string_equal(c.model.head.kind, "mlp");
    assert_int_equal(c.model.head.depth, 3);
    assert_int_equal(c.model.head.hidden, 512);
    assert_string_equal(c.model.head.activation, "gelu");
    assert_int_equal(c.model.embed_dim, 32);
    assert_string_equal(c.objective.kind, "bow");
    assert_int_equal(c.objective.prefix_tokens, 2);
    assert_string_equal(c.loss.kind, "siglip");
    assert_true(c.loss.one_sided);
    assert_string_equal(c.loss.temperature, "fixed");
    assert_true(c.loss.init_temperature == 0.1);
    assert_true(c.loss.lambda == 2.5);
    assert_int_equal(c.loss.tile, 128);
    assert_true(c.train.images == 5000000);
    assert_int_equal(c.train.batch_size, 512);
    assert_true(c.train.lr == 3e-4);
    assert_true(c.train.weight_decay == 0.05);
    assert_true(c.train.warmup_images == 1000);
    assert_true(c.train.beta1 == 0.8);
    assert_true(c.train.beta2 == 0.95);
    assert_true(c.train.eps == 1e-8);
    assert_true(c.train.grad_clip == 0.0);
    assert_int_equal(c.train.threads, 2);
    assert_true(c.train.checkpoint_every_images == 50000);
    assert_true(c.eval.every_images == 10000);
    assert_false(c.eval.probe);
    assert_int_equal(c.eval.retrieval_n, 256);
    assert_true(c.eval.target_top1 == 0.75);
    assert_string_equal(c.eval.task, "fmnist");
}

/* One error case: the file text and the message after "<path>:". */
typedef struct {
    const char *text;
    const char *msg;
} ErrorCase;

static const ErrorCase ERROR_CASES[] = {
    /* YAML syntax, with libyaml's line:col */
    {"train:\n  lr: [1, 2\n", "3:1: did not find expected ',' or ']' (while parsing a flow sequence that started at line 2)"},
    {"train:\n  lr: 1\n bs: 2\n", "3:2: did not find expected key (while parsing a block mapping that started at line 1)"},
    {"seed: 1\nname: x: y\n", "2:8: mapping values are not allowed in this context"},
    {"seed: 1\nname: \"\xff\"\n", "2:8: invalid leading UTF-8 octet"},
    {"seed: *anchor\n", "1:7: found undefined alias"},
    {"seed: 1\n---\nseed: 2\n", "3:1: expected one YAML document, found a second one"},
    {"- seed\n- name\n", "1:1: expected a mapping of keys at the top, got a list"},
    /* unknown keys, with the nearest valid key */
    {"seed: 3\n\n\ntrain:\n  lr_rate: 3\n", "5:3: unknown key 'train.lr_rate'; did you mean 'train.lr'?"},
    {"train:\n  lrr: 3\n", "2:3: unknown key 'train.lrr'; did you mean 'train.lr'?"},
    {"lr: 0.1\n", "1:1: unknown key 'lr'; did you mean 'train.lr'?"},
    {"trian:\n  lr: 0.1\n", "1:1: unknown key 'trian'; did you mean 'train'?"},
    {"model:\n  head:\n    knd: mlp\n", "3:5: unknown key 'model.head.knd'; did you mean 'model.head.kind'?"},
    {"loss.temprature: fixed\n", "1:1: unknown key 'loss.temprature'; did you mean 'loss.temperature'?"},
    {"seeds: 3\n", "1:1: unknown key 'seeds'; did you mean 'seed'?"},
    {"xyzzy: 3\n", "1:1: unknown key 'xyzzy' (see cliplab help-spec)"},
    {"[a]: 3\n", "1:1: expected a key name, got a list"},
    /* wrong types */
    {"train:\n  batch_size: abc\n", "2:15: expected an integer for 'train.batch_size', got 'abc'"},
    {"train:\n  batch_size: 1.5\n", "2:15: expected an integer for 'train.batch_size', got '1.5'"},
    {"train:\n  batch_size: 0x10\n", "2:15: expected an integer for 'train.batch_size', got '0x10'"},
    {"train: {lr: fast}\n", "1:13: expected a number for 'train.lr', got 'fast'"},
    {"train: {lr: .nan}\n", "1:13: expected a number for 'train.lr', got '.nan'"},
    {"loss: {one_sided: yes}\n", "1:19: expected true or false for 'loss.one_sided', got 'yes'"},
    {"seed: [1, 2]\n", "1:7: expected an integer for 'seed', got a list"},
    {"name: {a: 1}\n", "1:7: expected a string for 'name', got a mapping"},
    {"loss:\n  temperature: [fixed]\n", "2:16: expected one of learned, fixed for 'loss.temperature', got a list"},
    {"model: {image: {widths: 32}}\n", "1:25: expected a list for 'model.image.widths', got '32'"},
    {"model: {image: {widths: [32, x]}}\n", "1:30: expected an integer for 'model.image.widths', got 'x'"},
    {"model: {image: {widths: [32, [1]]}}\n", "1:30: expected an integer for 'model.image.widths', got a list"},
    {"train: 5\n", "1:8: 'train' is a section: expected a mapping of its keys, got '5'"},
    {"model:\n  image: [1]\n", "2:10: 'model.image' is a section: expected a mapping of its keys, got a list"},
    /* out of range */
    {"data:\n  caption_noise: 1.5\n", "2:18: 'data.caption_noise' = 1.5 is out of range [0, 1]"},
    {"data:\n  image_size: 8\n", "2:15: 'data.image_size' = 8 is out of range [16, 64]"},
    {"train.lr: 0\n", "1:11: 'train.lr' = 0 is out of range (0, 10]"},
    {"train.beta2: 1\n", "1:14: 'train.beta2' = 1 is out of range [0, 1)"},
    {"seed: -1\n", "1:7: 'seed' = -1 is out of range [0, 2147483647]"},
    {"train.images: 99999999999999999999\n", "1:15: 'train.images' = 99999999999999999999 is out of range [1, 1000000000000]"},
    {"loss:\n  init_bias: -200\n", "2:14: 'loss.init_bias' = -200 is out of range [-100, 100]"},
    {"loss.init_logit_scale: 0\n", "1:24: 'loss.init_logit_scale' = 0 is out of range (0, 1000]"},
    {"loss: {init_logit_scale: .inf}\n", "1:26: expected a number for 'loss.init_logit_scale', got '.inf'"},
    {"train.grad_clip: 1e400\n", "1:18: 'train.grad_clip' = 1e400 is out of range [0, 1000000]"},
    {"model.image.widths: [32, 5000]\n", "1:26: 'model.image.widths' = 5000 is out of range [1, 4096]"},
    /* duplicates */
    {"seed: 1\nname: a\nseed: 2\n", "3:1: duplicate key 'seed' (first at line 1)"},
    {"train.lr: 0.1\ntrain:\n  lr: 0.2\n", "3:3: duplicate key 'train.lr' (first at line 1)"},
    {"train: {lr: 0.1}\ntrain: {eps: 0.1}\n", "2:1: duplicate key 'train' (first at line 1)"},
    /* lists */
    {"model.image.widths: []\n", "1:21: empty list for 'model.image.widths'"},
    {"model.image.widths: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n", "1:21: too many entries for 'model.image.widths' (at most 8)"},
    {"data:\n  holdout: [red circle, red]\n", "2:25: expected \"colour shape\" for 'data.holdout', got 'red'"},
    /* enums (every registry's list in the message: test_registry.c) */
    {"loss:\n  temperature: warm\n", "2:16: unknown loss.temperature 'warm'; valid: learned, fixed"},
    {"model.image.norm: batch\n", "1:19: unknown model.image.norm 'batch'; valid: none, layer"},
    /* string formats and lengths */
    {"model.image.tap: img.stage9\n", "1:18: expected img.stageK (K = 1..8) for 'model.image.tap', got 'img.stage9'"},
    {"name: a/b\n", "1:7: expected letters, digits, '.', '_' or '-' for 'name', got 'a/b'"},
    {"name: \"a\\nb\"\n", "1:7: expected letters, digits, '.', '_' or '-' for 'name', got 'a\\x0ab'"},
    {"eval.task: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "1:12: 'eval.task' is too long (at most 63 characters), got "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"},
    /* base includes */
    {"seed: 2\nbase: missing.yaml\n", "2:1: cannot open base '%s/missing.yaml': No such file or directory"},
    /* the base's name is user text: control bytes escaped, the message stays one line (tests/fuzz) */
    {"base: \"a\\tb\\nc.yaml\"\n", "1:1: cannot open base '%s/a\\x09b\\x0ac.yaml': No such file or directory"},
    {"base: [a.yaml]\n", "1:7: expected a file name for 'base', got a list"},
    {"base: self.yaml\n", "1:1: base '%s/self.yaml' includes itself (a cycle)"},
    /* an empty spec (or only comments, or an empty mapping) would silently be a 200k-image run */
    {"", " the spec is empty; a minimal spec is `base: <path>/experiments/contrastive.yaml` or `name: my-run` plus the "
         "keys to change (cliplab help-spec lists them)"},
    {"# nothing but a comment\n", " the spec is empty; a minimal spec is `base: <path>/experiments/contrastive.yaml` "
                                 "or `name: my-run` plus the keys to change (cliplab help-spec lists them)"},
    {"{}\n", " the spec is empty; a minimal spec is `base: <path>/experiments/contrastive.yaml` or `name: my-run` "
             "plus the keys to change (cliplab help-spec lists them)"},
};

static void test_error_messages(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof ERROR_CASES / sizeof ERROR_CASES[0]; i++) {
        const ErrorCase *ec = &ERROR_CASES[i];
        const char *path = write_file("self.yaml", ec->text);
        Config c, before;
        config_defaults(&c);
        c.seed = 99; /* spec_load must leave `out` alone on error */
        before = c;
        Err err = {0};
        int rc = spec_load(path, &c, &err);
        char expect[1024];
        char body[600];
        snprintf(body, sizeof body, ec->msg, g_dir);
        snprintf(expect, sizeof expect, "%s:%s", path, body);
        if (rc == 0 || strcmp(err.msg, expect))
            fail_msg("case %zu: %s\n  expected: %s\n       got: %s (rc %d)", i, ec->text, expect, err.msg, rc);
        assert_true(config_equal(&c, &before));
    }
}

/* Nesting deeper than 64 levels is refused at the 65th opening bracket, in a spec, a base file
 * and an ablation (libyaml's parse time grows with the depth: 80 KB of `[` took seconds). */
static void test_deep_nesting_is_refused(void **state) {
    (void)state;
    size_t depth = 20000;
    char *text = malloc(2 * depth + 64);
    int n = snprintf(text, 64, "name: x\nmodel: ");
    for (size_t i = 0; i < depth; i++) text[n + i] = i % 2 ? '{' : '[';
    text[n + depth] = '\0';
    Config c;
    Err err;
    assert_int_equal(spec_load_string("deep.yaml", text, strlen(text), &c, &err), -1);
    assert_string_equal(err.msg, "deep.yaml:2:71: nesting deeper than 64 levels (a spec needs at most a few)");
    const char *base = write_file("deep.yaml", text);
    const char *top = write_file("top.yaml", "name: y\nbase: deep.yaml\n");
    assert_int_equal(spec_load(top, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s:2:71: nesting deeper than 64 levels (a spec needs at most a few)", base));
    memcpy(text, "name: z\nsweep: ", 15);
    Sweep s;
    const char *abl = write_file("deep_abl.yaml", text);
    assert_int_equal(sweep_load(abl, "quick", &s, &err), -1);
    assert_string_equal(err.msg, fmt("%s:2:71: nesting deeper than 64 levels (a spec needs at most a few)", abl));
    /* 64 levels (the top mapping, model, image and 61 lists) pass the nesting check; the key then
     * refuses the value */
    snprintf(text, 2 * depth + 64, "name: x\nmodel:\n  image:\n    widths: ");
    n = (int)strlen(text);
    for (int i = 0; i < 61; i++) text[n++] = '[';
    text[n++] = '1';
    for (int i = 0; i < 61; i++) text[n++] = ']';
    text[n] = '\0';
    assert_int_equal(spec_load_string("ok.yaml", text, strlen(text), &c, &err), -1);
    if (!strstr(err.msg, "expected an integer for 'model.image.widths', got a list")) fail_msg("%s", err.msg);
    free(text);
}

static void test_missing_file(void **state) {
    (void)state;
    Config c;
    Err err;
    const char *path = fmt("%s/nope.yaml", g_dir);
    assert_int_equal(spec_load(path, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s: cannot open: No such file or directory", path));
    assert_int_equal(spec_load(g_dir, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s: cannot open: Is a directory", g_dir));
}

static void test_base_inheritance(void **state) {
    (void)state;
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", g_dir);
    mkdir(sub, 0700);
    write_file("root.yaml", "name: root\nseed: 5\ntrain: {lr: 0.01, batch_size: 64}\nloss.kind: dcl\n");
    write_file("sub/mid.yaml", "base: ../root.yaml\ntrain:\n  batch_size: 128\nmodel.embed_dim: 16\n");
    const char *leaf = write_file("sub/leaf.yaml", "name: leaf\nbase: mid.yaml   # after other keys: still applied first\ntrain.lr: 0.02\n");
    Config c;
    Err err = {0};
    assert_int_equal(spec_load(leaf, &c, &err), 0);
    assert_string_equal(c.name, "leaf");
    assert_int_equal(c.seed, 5);                 /* from root */
    assert_string_equal(c.loss.kind, "dcl");     /* from root */
    assert_int_equal(c.train.batch_size, 128);   /* mid overrides root */
    assert_int_equal(c.model.embed_dim, 16);     /* from mid */
    assert_true(c.train.lr == 0.02);             /* leaf overrides root */
    assert_int_equal(c.model.text.width, 128);   /* default */

    /* an error inside a base file is reported in that file */
    write_file("sub/badmid.yaml", "base: ../root.yaml\ntrain:\n  batch_sise: 1\n");
    const char *bad = write_file("sub/badleaf.yaml", "base: badmid.yaml\n");
    assert_int_equal(spec_load(bad, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s/sub/badmid.yaml:3:3: unknown key 'train.batch_sise'; did you mean 'train.batch_size'?", g_dir));

    /* a two-file cycle */
    write_file("cyc_a.yaml", "base: cyc_b.yaml\n");
    const char *cb = write_file("cyc_b.yaml", "seed: 3\nbase: cyc_a.yaml\n");
    assert_int_equal(spec_load(cb, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s/cyc_a.yaml:1:1: base '%s/cyc_b.yaml' includes itself (a cycle)", g_dir, g_dir));
}

/* Spec strings are valid UTF-8 without NUL, so the recorded spec always reloads (found by
 * tests/fuzz: the override target's dump of "txt.bl.\xda\xda\xda" did not reload). */
static void test_strings_utf8(void **state) {
    (void)state;
    Config c;
    Err err = {0};
    config_defaults(&c);
    static const ErrorCase cases[] = {
        {"model.text.tap=txt.bl.\xda\xda\xda", "'model.text.tap' is not valid UTF-8 (byte 0xda at offset 7)"},
        {"model.text.tap=\xc0\xaf", "'model.text.tap' is not valid UTF-8 (byte 0xc0 at offset 0)"},       /* overlong '/' */
        {"data.fmnist_dir=/d/\xed\xa0\x80", "'data.fmnist_dir' is not valid UTF-8 (byte 0xed at offset 3)"}, /* surrogate */
        {"model.text.tap=\xf4\x90\x80\x80", "'model.text.tap' is not valid UTF-8 (byte 0xf4 at offset 0)"}, /* > U+10FFFF */
        {"model.text.tap=ab\xe2\x82", "'model.text.tap' is not valid UTF-8 (byte 0xe2 at offset 2)"},        /* truncated */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Config before = c;
        assert_int_equal(spec_override(&c, cases[i].text, &err), -1);
        assert_string_equal(err.msg, fmt("command line: %s", cases[i].msg));
        assert_true(config_equal(&c, &before));
    }
    /* valid UTF-8, with characters YAML may not hold raw (C1 control, BOM, DEL), dumps and reloads */
    assert_int_equal(spec_override(&c, "model.text.tap=\xc3\xa9\xc2\x85\xef\xbb\xbf\x7f\x01", &err), 0);
    assert_string_equal(c.model.text.tap, "\xc3\xa9\xc2\x85\xef\xbb\xbf\x7f\x01");
    char *yaml = config_to_yaml(&c);
    assert_non_null(strstr(yaml, "tap: \"\xc3\xa9\\u0085\\ufeff\\x7f\\x01\""));
    Config back;
    assert_int_equal(spec_load_string("dump.yaml", yaml, strlen(yaml), &back, &err), 0);
    assert_true(config_equal(&c, &back));
    free(yaml);
    /* a NUL inside a YAML string is refused, not cut ("t\0u" used to load as "t") */
    const char *path = write_file("nul.yaml", "model:\n  text:\n    tap: \"t\\0u\"\n");
    assert_int_equal(spec_load(path, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s:3:10: the value of 'model.text.tap' contains a NUL byte", path));
    path = write_file("nul_list.yaml", "data:\n  holdout: [\"red circle\", \"blue\\0 square\"]\n");
    assert_int_equal(spec_load(path, &c, &err), -1);
    assert_string_equal(err.msg, fmt("%s:2:27: the value of 'data.holdout' contains a NUL byte", path));
}

static void test_overrides(void **state) {
    (void)state;
    Config c;
    Err err = {0};
    config_defaults(&c);
    assert_int_equal(spec_override(&c, "train.lr=3e-4", &err), 0);
    assert_int_equal(spec_override(&c, " train.batch_size = 512 ", &err), 0);
    assert_int_equal(spec_override(&c, "train.images=2e5", &err), 0);
    assert_int_equal(spec_override(&c, "loss.kind=siglip", &err), 0);
    assert_int_equal(spec_override(&c, "loss.one_sided=true", &err), 0);
    assert_int_equal(spec_override(&c, "model.image.widths=[8, 16]", &err), 0);
    assert_int_equal(spec_override(&c, "data.holdout=green triangle,blue star", &err), 0);
    assert_int_equal(spec_override(&c, "model.text.tap=", &err), 0);
    assert_int_equal(spec_override(&c, "name=run-2", &err), 0);
    assert_true(c.train.lr == 3e-4);
    assert_int_equal(c.train.batch_size, 512);
    assert_true(c.train.images == 200000);
    assert_string_equal(c.loss.kind, "siglip");
    assert_true(c.loss.one_sided);
    assert_int_equal(c.model.image.n_widths, 2);
    assert_int_equal(c.model.image.widths[0], 8);
    assert_int_equal(c.model.image.widths[1], 16);
    assert_int_equal(c.model.image.widths[2], 0); /* the old entries are cleared */
    assert_int_equal(c.data.n_holdout, 2);
    assert_string_equal(c.data.holdout[0], "green triangle");
    assert_string_equal(c.data.holdout[1], "blue star");
    assert_string_equal(c.name, "run-2");

    static const ErrorCase cases[] = {
        {"train.lrr=3", "unknown key 'train.lrr'; did you mean 'train.lr'?"},
        {"batch_size=3", "unknown key 'batch_size'; did you mean 'train.batch_size'?"},
        {"train.lr", "expected key=value, got 'train.lr'"},
        {"train=3", "'train' is a section, not a key (see cliplab help-spec train)"},
        {"train.batch_size=abc", "expected an integer for 'train.batch_size', got 'abc'"},
        {"data.caption_noise=1.5", "'data.caption_noise' = 1.5 is out of range [0, 1]"},
        {"loss.temperature=warm", "unknown loss.temperature 'warm'; valid: learned, fixed"},
        {"eval.probe=1", "expected true or false for 'eval.probe', got '1'"},
        {"model.image.widths=[]", "empty list for 'model.image.widths'"},
        {"model.image.widths=", "empty list for 'model.image.widths'"},
        {"model.image.widths=1,2,3,4,5,6,7,8,9", "too many entries for 'model.image.widths' (at most 8)"},
        {"model.image.widths=[32,,64]", "expected an integer for 'model.image.widths', got ''"},
        {"data.holdout=red circle,blue", "expected \"colour shape\" for 'data.holdout', got 'blue'"},
        {"model.image.tap=img.stage0", "expected img.stageK (K = 1..8) for 'model.image.tap', got 'img.stage0'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Config before = c;
        assert_int_equal(spec_override(&c, cases[i].text, &err), -1);
        const char *expect = fmt("command line: %s", cases[i].msg);
        if (strcmp(err.msg, expect)) fail_msg("override %s\n  expected: %s\n       got: %s", cases[i].text, expect, err.msg);
        assert_true(config_equal(&c, &before));
    }
}

/* Dumps c, reloads the text and checks the Config is identical. */
static void assert_round_trip(const Config *c) {
    char *yaml = config_to_yaml(c);
    Config back;
    Err err = {0};
    int rc = spec_load(write_file("dump.yaml", yaml), &back, &err);
    if (rc) fail_msg("%s\n---\n%s", err.msg, yaml);
    assert_true(config_equal(c, &back));
    free(yaml);
}

static void test_yaml_round_trip(void **state) {
    (void)state;
    Config c;
    config_defaults(&c);
    assert_round_trip(&c);

    Err err = {0};
    assert_int_equal(spec_load(write_file("full.yaml", FULL_EXAMPLE), &c, &err), 0);
    assert_round_trip(&c);

    /* awkward values: shortest float forms, tiny and huge numbers, quotes in strings */
    const char *ov[] = {"train.lr=0.1", "data.caption_noise=0.123456789012345", "train.eps=1e-300",
                        "train.grad_clip=999999.99999999", "train.images=1000000000000", "seed=2147483647",
                        "data.fmnist_dir=/a \"b\"\\c: #d", "loss.lambda=1", "model.text.tap="};
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) assert_int_equal(spec_override(&c, ov[i], &err), 0);
    assert_round_trip(&c);

    /* the dump is readable YAML with floats that always carry a '.' */
    char *yaml = config_to_yaml(&c);
    assert_non_null(strstr(yaml, "\n  lambda: 1.0\n"));
    assert_non_null(strstr(yaml, "\n  eps: 1.0e-300\n"));
    assert_non_null(strstr(yaml, "\nmodel:\n  image:\n    widths: [16, 32, 64]\n"));
    assert_non_null(strstr(yaml, "\n  embed_dim: 32\nobjective:\n  kind: bow\n"));
    free(yaml);

    /* config_equal sees a one-key difference */
    Config d = c;
    assert_true(config_equal(&c, &d));
    d.train.beta1 = 0.5;
    assert_false(config_equal(&c, &d));
    d = c;
    d.model.image.widths[2] = 65;
    assert_false(config_equal(&c, &d));
}

/* Runs spec_help_print (argv[1]: the section, if any) with its output in a file; returns the
 * text (malloc'd); *rc is 0, or 1 for an error, as `cliplab help-spec` exits. */
static char *capture_help(int argc, char **argv, int *rc) {
    const char *path = fmt("%s/help.txt", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    Err err;
    *rc = spec_help_print(f, argc > 1 ? argv[1] : NULL, &err) ? 1 : 0;
    fclose(f);
    f = fopen(path, "r");
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

static void test_help_spec_lists_every_key(void **state) {
    (void)state;
    int n, rc;
    const SpecKey *keys = spec_keys(&n);
    char *argv_all[] = {"help-spec"};
    char *text = capture_help(1, argv_all, &rc);
    assert_int_equal(rc, 0);
    for (int i = 0; i < n; i++) {
        if (!strstr(text, fmt("\n  %s ", keys[i].name))) fail_msg("help-spec lacks %s", keys[i].name);
        if (!strstr(text, keys[i].help)) fail_msg("help-spec lacks the help of %s", keys[i].name);
    }
    assert_non_null(strstr(text, "\ntrain\n"));
    assert_non_null(strstr(text, "train.lr                       float    0.001"));
    assert_non_null(strstr(text, "(0, 10]"));
    assert_non_null(strstr(text, "one of learned, fixed"));
    free(text);

    char *argv_loss[] = {"help-spec", "loss"};
    text = capture_help(2, argv_loss, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(text, "loss.kind"));
    assert_null(strstr(text, "train.lr"));
    free(text);

    char *argv_bad[] = {"help-spec", "trian"};
    text = capture_help(2, argv_bad, &rc);
    assert_int_equal(rc, 1);
    free(text);
}

/* Byte flips, insertions of YAML-significant bytes and truncations of a valid spec: the loader must
 * never crash (also under ASan) and must either succeed or give one line starting with the file. */
static void test_fuzz_mutations(void **state) {
    (void)state;
    const char *path = fmt("%s/fuzz.yaml", g_dir);
    char path_copy[512];
    snprintf(path_copy, sizeof path_copy, "%s", path);
    size_t len = strlen(FULL_EXAMPLE);
    char *buf = malloc(len + 64);
    Rng rng;
    rng_init(&rng, 1234);
    static const char special[] = ":-[]{},#&*!|>'\"%@`\t\n \\?";
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(buf, FULL_EXAMPLE, len);
        size_t n = len;
        int edits = 1 + (int)rng_below(&rng, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rng_below(&rng, (uint32_t)n);
            switch (rng_below(&rng, 4)) {
            case 0: buf[at] = (char)rng_below(&rng, 256); break;
            case 1: buf[at] = special[rng_below(&rng, sizeof special - 1)]; break;
            case 2: buf[at] ^= (char)(1u << rng_below(&rng, 8)); break;
            case 3: n = at; break;
            }
        }
        FILE *f = fopen(path_copy, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        Config c;
        Err err = {0};
        if (spec_load(path_copy, &c, &err) == 0) {
            ok++;
            continue;
        }
        failed++;
        if (strncmp(err.msg, path_copy, strlen(path_copy)) || err.msg[strlen(path_copy)] != ':' ||
            strchr(err.msg, '\n'))
            fail_msg("iteration %d: bad message '%s'", iter, err.msg);
    }
    free(buf);
    /* both outcomes must occur, or the mutations are not exercising the loader */
    assert_true(ok > 50);
    assert_true(failed > 500);
}

/* ------------------------------------------------------------------ ablations */

static void write_base_experiment(void) {
    char d[300];
    snprintf(d, sizeof d, "%s/experiments", g_dir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/ablations", g_dir);
    mkdir(d, 0700);
    write_file("experiments/base.yaml", "name: base\nseed: 7\ntrain:\n  images: 100000\n  lr: 0.001\n");
}

static const char *ABLATION =
    "base: ../experiments/base.yaml\n"
    "question: Does an MLP head beat a linear one, and at which tap?\n"
    "sweep:\n"
    "  model.head.kind: [linear, mlp]\n"
    "  model:\n"
    "    image.tap: [img.stage3, img.stage4]\n"
    "  train.batch_size: [128, 256]\n"
    "seeds: 2\n"
    "set: {train.lr: 2e-3, model.head.hidden: 64}\n"
    "profiles:\n"
    "  smoke:\n"
    "    train.images: 2000\n"
    "    seeds: 1\n"
    "    train.batch_size: [64]\n"
    "    model.image.tap: img.stage4\n"
    "  quick: {train.images: 20000}\n"
    "  full:\n"
    "    train:\n"
    "      batch_size: [128, 256, 512]\n"
    "report: [zeroshot_top1, probe_top1]\n";

static void test_sweep_expansion_order_ids_seeds(void **state) {
    (void)state;
    write_base_experiment();
    const char *path = write_file("ablations/projection.yaml", ABLATION);
    Sweep s;
    Err err = {0};
    int rc = sweep_load(path, NULL, &s, &err); /* NULL = quick */
    assert_string_equal(err.msg, "");
    assert_int_equal(rc, 0);
    assert_string_equal(s.name, "projection"); /* the file stem */
    assert_string_equal(s.question, "Does an MLP head beat a linear one, and at which tap?");
    assert_string_equal(s.profile, "quick");
    assert_string_equal(s.base, fmt("%s/ablations/../experiments/base.yaml", g_dir));
    assert_int_equal(s.n_axes, 3);
    assert_string_equal(s.axes[0], "model.head.kind");
    assert_string_equal(s.axes[1], "model.image.tap");
    assert_string_equal(s.axes[2], "train.batch_size");
    assert_int_equal(s.seeds, 2);
    assert_int_equal(s.n_report, 2);
    assert_string_equal(s.report[1], "probe_top1");
    assert_int_equal(s.n_runs, 16);
    /* grid order: first axis slowest, then ..., seed fastest */
    const char *heads[] = {"linear", "mlp"}, *taps[] = {"img.stage3", "img.stage4"};
    int bss[] = {128, 256};
    for (int r = 0; r < 16; r++) {
        const SweepRun *run = &s.runs[r];
        int h = r / 8, t = (r / 4) % 2, b = (r / 2) % 2, seed = 7 + r % 2;
        assert_string_equal(run->id, fmt("head=%s_tap=%s_bs=%d_seed=%d", heads[h], taps[t], bss[b], seed));
        assert_string_equal(run->swept, fmt("model.head.kind=%s; model.image.tap=%s; train.batch_size=%d; seed=%d",
                                            heads[h], taps[t], bss[b], seed));
        assert_int_equal(run->seed, seed);
        assert_int_equal(run->config.seed, seed);
        assert_string_equal(run->config.model.head.kind, heads[h]);
        assert_string_equal(run->config.model.image.tap, taps[t]);
        assert_int_equal(run->config.train.batch_size, bss[b]);
        assert_true(run->config.train.lr == 2e-3);           /* set: */
        assert_int_equal(run->config.model.head.hidden, 64); /* set: */
        assert_true(run->config.train.images == 20000);      /* quick profile */
        assert_string_equal(run->config.name, "base");       /* from the base experiment */
        /* every swept entry is a valid override reproducing the run from the base */
        Config c;
        assert_int_equal(spec_load(s.base, &c, &err), 0);
        assert_int_equal(spec_override(&c, "train.lr=2e-3", &err), 0);
        assert_int_equal(spec_override(&c, "model.head.hidden=64", &err), 0);
        assert_int_equal(spec_override(&c, "train.images=20000", &err), 0);
        char swept[SWEEP_SWEPT_MAX];
        snprintf(swept, sizeof swept, "%s", run->swept);
        for (char *tok = strtok(swept, ";"); tok; tok = strtok(NULL, ";"))
            assert_int_equal(spec_override(&c, tok, &err), 0);
        assert_true(config_equal(&c, &run->config));
    }
    sweep_free(&s);
}

static void test_sweep_profiles_replace_axes(void **state) {
    (void)state;
    write_base_experiment();
    const char *path = write_file("ablations/projection.yaml", ABLATION);
    Sweep s;
    Err err = {0};
    assert_int_equal(sweep_load(path, "smoke", &s, &err), 0);
    /* smoke: batch axis replaced by [64], tap pinned to one value, one seed */
    assert_int_equal(s.n_runs, 2);
    assert_int_equal(s.axis_len[1], 1);
    assert_int_equal(s.axis_len[2], 1);
    assert_string_equal(s.runs[0].id, "head=linear_tap=img.stage4_bs=64_seed=7");
    assert_string_equal(s.runs[1].id, "head=mlp_tap=img.stage4_bs=64_seed=7");
    assert_true(s.runs[1].config.train.images == 2000);
    assert_int_equal(s.runs[1].config.train.batch_size, 64);
    sweep_free(&s);

    /* full: nested key replacing an axis; seeds from the top level */
    assert_int_equal(sweep_load(path, "full", &s, &err), 0);
    assert_int_equal(s.n_runs, 2 * 2 * 3 * 2);
    assert_int_equal(s.axis_len[2], 3);
    assert_string_equal(s.runs[5].id, "head=linear_tap=img.stage3_bs=512_seed=8");
    assert_true(s.runs[5].config.train.images == 100000); /* full sets no budget: the base's */
    sweep_free(&s);

    /* no profiles in the file: the file as written, whatever the profile */
    const char *plain = write_file("ablations/plain.yaml",
                                   "base: ../experiments/base.yaml\nquestion: q\nname: my-abl\n"
                                   "sweep:\n  loss.kind: [infonce, siglip]\n  model.image.tap: [img.stage3]\n"
                                   "  model.text.tap: [\"\", txt.block1]\n  model.image.widths: [[16, 32], [8, 8, 8]]\n"
                                   "  data.holdout: [[red circle], [blue square, green star]]\n");
    assert_int_equal(sweep_load(plain, "full", &s, &err), 0);
    assert_string_equal(s.name, "my-abl");
    assert_string_equal(s.profile, "");
    assert_int_equal(s.n_runs, 16);
    /* clashing short names use two components; lists join with '-'; unsafe bytes become '-' */
    assert_string_equal(s.runs[0].id, "loss=infonce_image.tap=img.stage3_text.tap=_widths=16-32_holdout=red-circle_seed=7");
    assert_string_equal(s.runs[15].id,
                        "loss=siglip_image.tap=img.stage3_text.tap=txt.block1_widths=8-8-8_holdout=blue-square-green-star_seed=7");
    assert_string_equal(s.runs[15].swept, "loss.kind=siglip; model.image.tap=img.stage3; model.text.tap=txt.block1; "
                                          "model.image.widths=[8,8,8]; data.holdout=[blue square,green star]; seed=7");
    assert_int_equal(s.runs[15].config.model.image.n_widths, 3);
    assert_int_equal(s.runs[15].config.data.n_holdout, 2);
    assert_string_equal(s.runs[15].config.data.holdout[1], "green star");
    sweep_free(&s);
}

static void test_sweep_count_exposed_and_limit(void **state) {
    (void)state;
    write_base_experiment();
    char text[4096];
    int n = snprintf(text, sizeof text, "base: ../experiments/base.yaml\nquestion: big\nseeds: 3\nsweep:\n  train.batch_size: [");
    for (int i = 1; i <= 64; i++) n += snprintf(text + n, sizeof text - (size_t)n, "%s%d", i > 1 ? ", " : "", i);
    n += snprintf(text + n, sizeof text - (size_t)n, "]\n  model.embed_dim: [2, 3]\n");
    Sweep s;
    Err err = {0};
    assert_int_equal(sweep_load(write_file("ablations/big.yaml", text), "quick", &s, &err), 0);
    assert_int_equal(s.n_runs, 64 * 2 * 3);
    assert_true(s.n_runs > SWEEP_CONFIRM_RUNS); /* the driver must ask for --force */
    assert_string_equal(s.runs[s.n_runs - 1].id, "bs=64_embed_dim=3_seed=9");
    sweep_free(&s);

    snprintf(text + n, sizeof text - (size_t)n, "  model.text.width: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]\n"
             "  model.text.layers: [1, 2]\n");
    const char *path = write_file("ablations/huge.yaml", text);
    assert_int_equal(sweep_load(path, "quick", &s, &err), -1);
    assert_string_equal(err.msg, fmt("%s: the sweep has 15360 runs, more than the limit of 10000", path));
    assert_null(s.runs);
}

typedef struct {
    const char *text;
    const char *profile;
    const char *msg; /* after "<path>:" ("%s" = the temp folder); NULL msg_full used instead */
    const char *msg_full;
} SweepErrorCase;

#define AB_HEAD "base: ../experiments/base.yaml\nquestion: q\n"

static const SweepErrorCase SWEEP_ERRORS[] = {
    {AB_HEAD "sweep:\n  train.lrr: [1, 2]\n", "quick", "4:3: unknown key 'train.lrr'; did you mean 'train.lr'?", NULL},
    {AB_HEAD "sweep:\n  train.lr: []\n", "quick", "4:13: empty list for 'train.lr'", NULL},
    {AB_HEAD "sweep:\n  train.lr: 0.1\n", "quick", "4:13: expected a list of values for sweep 'train.lr'", NULL},
    {AB_HEAD "sweep:\n  model.image.widths: [16, 32]\n", "quick",
     "4:23: expected a list of values for sweep 'model.image.widths' (a list of lists)", NULL},
    {AB_HEAD "sweep:\n  train.lr: [0.1, 20]\n", "quick", "4:19: 'train.lr' = 20 is out of range (0, 10]", NULL},
    {AB_HEAD "sweep:\n  loss.temperature: [fixed, warm]\n", "quick",
     "4:29: unknown loss.temperature 'warm'; valid: learned, fixed", NULL},
    {AB_HEAD "sweep:\n  loss.kind: [dcl, dcl]\n", "quick", "4:20: duplicate value 'dcl' in sweep 'loss.kind'", NULL},
    {AB_HEAD "sweep:\n  seed: [1, 2]\n", "quick", "4:3: 'seed' cannot be swept; use 'seeds: n'", NULL},
    {AB_HEAD "sweep:\n  train.lr: [0.1]\n  train: {lr: [0.2]}\n", "quick", "5:11: duplicate key 'train.lr' (first at line 4)", NULL},
    {AB_HEAD "sweep: {train.lr: [0.1]}\nset: {train.lr: 0.2}\n", "quick", "4:7: 'train.lr' is swept; remove it from 'set:'", NULL},
    {AB_HEAD "set: {train.lr: 0.2, train.eps: 2}\n", "quick", "3:33: 'train.eps' = 2 is out of range (0, 1]", NULL},
    {AB_HEAD "seeds: 0\n", "quick", "3:8: 'seeds' = 0 is out of range [1, 100]", NULL},
    {AB_HEAD "seeds: two\n", "quick", "3:8: expected an integer for 'seeds', got 'two'", NULL},
    {AB_HEAD "sweeps: {}\n", "quick", "3:1: unknown key 'sweeps'; did you mean 'sweep'?", NULL},
    {AB_HEAD "question: again\n", "quick", "3:1: duplicate key 'question' (first at line 2)", NULL},
    {AB_HEAD "profiles:\n  fast: {train.images: 10}\n", "quick", "4:3: unknown profile 'fast'; valid: smoke, quick, long, full", NULL},
    {AB_HEAD "profiles:\n  smoke: {train.images: 10}\n", "quick", "3:1: profile 'quick' is not defined (defined: smoke)", NULL},
    /* every profile is checked, not only the selected one */
    {AB_HEAD "profiles:\n  quick: {}\n  full: {train.imgs: 10}\n", "quick",
     "5:10: unknown key 'train.imgs'; did you mean 'train.images'?", NULL},
    {AB_HEAD "sweep: {train.lr: [0.1]}\nprofiles:\n  quick: {train.lr: []}\n", "quick", "5:21: empty list for 'train.lr'", NULL},
    {AB_HEAD "profiles:\n  quick: {seeds: 1, seeds: 2}\n", "quick", "4:21: duplicate key 'seeds' (first at line 4)", NULL},
    {AB_HEAD "report: []\n", "quick", "3:9: empty list for 'report'", NULL},
    {AB_HEAD "arms: {a: objective.kind=bow, b: objective.kind=caption}\nratios: [a/c]\n", "quick",
     "4:10: expected fast/slow naming two of the arms", NULL},
    {AB_HEAD "arms: {a: objective.kind=bow}\n", "quick", "3:1: 'arms' and 'ratios' go together", NULL},
    {AB_HEAD "arms: {a: bow}\nratios: [a/a]\n", "quick",
     "3:11: expected a selector such as objective.kind=bow,model.text.kind!=transformer", NULL},
    {AB_HEAD "arms: [a]\nratios: []\n", "quick", "3:7: expected a mapping of arm name -> selector for 'arms'", NULL},
    {AB_HEAD "name: a b\n", "quick", "3:7: expected letters, digits, '.', '_' or '-' for 'name', got 'a b'", NULL},
    /* a value with an edge blank: its run's recorded swept entry (an override, trimmed) would give
     * another config (found by tests/fuzz's ablation target) */
    {AB_HEAD "sweep:\n  model.text.tap: [\" a\", b]\n", "quick",
     "4:20: 'model.text.tap' starts or ends with a blank (overrides trim them, so it could not be given again), got ' a'", NULL},
    {"question: q\n", "quick", NULL, "%s: missing 'base:' (the experiment file this ablation starts from)"},
    {"base: ../experiments/base.yaml\n", "quick", NULL, "%s: missing 'question:' (one line: what this ablation answers)"},
    {"base: nothere.yaml\nquestion: q\n", "quick", "1:1: cannot open base '%s/ablations/nothere.yaml': No such file or directory", NULL},
    {AB_HEAD, "tiny", NULL, "command line: unknown profile 'tiny'; valid: smoke, quick, long, full"},
    {AB_HEAD "sweep: [a]\n", "quick", "3:8: expected a mapping of key -> list of values for 'sweep'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m}\n", "quick", "3:1: 'tune' needs 'grid' or 'when'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: [a]}\n", "quick",
     "3:37: expected a mapping of selector -> grid for 'tune.when'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {siglip: {loss.init_bias: [-5]}}}\n", "quick",
     "3:38: expected a selector such as loss.kind=siglip,train.batch_size!=32 for 'tune.when'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {loss.knd=siglip: {loss.init_bias: [-5]}}}\n", "quick",
     "3:38: unknown key 'loss.knd'; did you mean 'loss.kind'?", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {loss.kind=clip: {loss.init_bias: [-5]}}}\n", "quick",
     "3:38: unknown loss.kind 'clip'; valid: infonce, siglip, dcl, align_uniform, multipos_infonce", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {\"loss.kind=siglip,!=dcl\": {loss.init_bias: [-5]}}}\n", "quick",
     "3:38: expected key=value or key!=value in the selector, got '!=dcl'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {loss.kind=siglip: {}}}\n", "quick", "3:56: empty 'tune.when'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {loss.kind=siglip: [1]}}\n", "quick",
     "3:56: expected a mapping of key -> list of values for 'tune.when'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {loss.kind=siglip: {loss.init_bias: [-500]}}}\n", "quick",
     "3:74: 'loss.init_bias' = -500 is out of range [-100, 100]", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, when: {loss.kind=siglip: {loss.init_bias: [-5], loss: {init_bias: [-4]}}}}\n",
     "quick", "3:86: duplicate key 'loss.init_bias' in 'tune.when'", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, grids: {train.lr: [1]}}\n", "quick",
     "3:31: unknown key 'grids'; did you mean 'grid'?", NULL},
    {AB_HEAD "sweep: {train.lr: [0.1]}\ntune: {images: 10, metric: m, grid: {train.lr: [1]}}\n", "quick",
     "4:38: 'train.lr' is swept; it cannot also be tuned", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, grid: {train.images: [1]}}\n", "quick",
     "3:38: 'train.images' is set by the tuning stage itself and cannot be tuned", NULL},
    {AB_HEAD "tune: {images: 10, metric: m, grid: {train.lr: [20]}}\n", "quick",
     "3:49: 'train.lr' = 20 is out of range (0, 10]", NULL},
    {AB_HEAD "profiles:\n  quick: {tune.images: 5}\n", "quick",
     "4:11: profile 'quick' sets tune.images but the ablation has no 'tune:' stage", NULL},
    {AB_HEAD "tune: {images: 0, metric: m, grid: {train.lr: [1]}}\n", "quick",
     "3:16: 'tune.images' = 0 is out of range [1, 2147483647]", NULL},
    {"base: ../experiments/base.yaml\nquestion: q\nsweep:\n  train.lr: [0.1\n", "quick",
     "5:1: did not find expected ',' or ']' (while parsing a flow sequence that started at line 4)", NULL},
};

static void test_sweep_errors(void **state) {
    (void)state;
    write_base_experiment();
    for (size_t i = 0; i < sizeof SWEEP_ERRORS / sizeof SWEEP_ERRORS[0]; i++) {
        const SweepErrorCase *ec = &SWEEP_ERRORS[i];
        const char *path = write_file("ablations/err.yaml", ec->text);
        Sweep s;
        Err err = {0};
        int rc = sweep_load(path, ec->profile, &s, &err);
        char expect[1200], body[600];
        if (ec->msg) {
            snprintf(body, sizeof body, ec->msg, g_dir);
            snprintf(expect, sizeof expect, "%s:%s", path, body);
        } else {
            snprintf(expect, sizeof expect, ec->msg_full, path);
        }
        if (rc == 0 || strcmp(err.msg, expect))
            fail_msg("case %zu:\n%s\n  expected: %s\n       got: %s (rc %d)", i, ec->text, expect, err.msg, rc);
        assert_null(s.runs);
        assert_int_equal(s.n_runs, 0);
    }
    Sweep s;
    Err err;
    const char *path = fmt("%s/ablations/none.yaml", g_dir);
    assert_int_equal(sweep_load(path, "quick", &s, &err), -1);
    assert_string_equal(err.msg, fmt("%s: cannot open: No such file or directory", path));
}

/* The tuning stage: per configuration, every candidate on the seed after the reported ones, on
 * the validation sets, at the short budget with the warm-up scaled; sweep_tune_apply gives each
 * configuration its best candidate (first on ties, NaN never wins, all-NaN keeps the spec). */
static void test_sweep_tune_stage(void **state) {
    (void)state;
    write_base_experiment(); /* seed 7, 100000 images */
    const char *path = write_file("ablations/tune.yaml", AB_HEAD
                                  "sweep: {model.head.kind: [linear, mlp, identity]}\n"
                                  "seeds: 2\n"
                                  "set: {train.warmup_images: 10000}\n"
                                  "tune:\n"
                                  "  images: 5000\n"
                                  "  metric: zs.colour_shape_seen.top1\n"
                                  "  grid: {train.lr: [0.001, 0.004], train.weight_decay: [0, 0.1]}\n"
                                  "profiles:\n"
                                  "  smoke: {tune.images: 100, train.images: 400}\n"
                                  "  quick: {}\n");
    Sweep s;
    Err err = {0};
    assert_int_equal(sweep_load(path, "quick", &s, &err), 0);
    assert_int_equal(s.n_runs, 6);
    assert_int_equal(s.n_tune_runs, 3 * 4);
    assert_string_equal(s.tune_metric, "zs.colour_shape_seen.top1");
    const char *heads[] = {"linear", "mlp", "identity"};
    double lrs[] = {0.001, 0.004}, wds[] = {0, 0.1};
    for (int t = 0; t < 12; t++) {
        const SweepRun *r = &s.tune_runs[t];
        int c = t / 4, l = (t / 2) % 2, w = t % 2;
        assert_int_equal(r->tune_config, c);
        assert_string_equal(r->id, fmt("head=%s_lr=%g_wd=%g_seed=9", heads[c], lrs[l], wds[w]));
        assert_string_equal(r->tuned, fmt("train.lr=%g; train.weight_decay=%g", lrs[l], wds[w]));
        assert_int_equal(r->seed, 9); /* 7 + 2 seeds: no reported run uses it */
        assert_int_equal(r->config.seed, 9);
        assert_true(r->config.eval.validation);
        assert_true(r->config.train.images == 5000 && r->config.eval.every_images == 5000);
        assert_true(r->config.train.warmup_images == 500);
        assert_true(r->config.train.lr == lrs[l] && r->config.train.weight_decay == wds[w]);
        assert_string_equal(r->config.model.head.kind, heads[c]);
    }
    for (int r = 0; r < 6; r++) assert_false(s.runs[r].config.eval.validation);
    Sweep smoke; /* a profile sets the candidates' budget */
    assert_int_equal(sweep_load(path, "smoke", &smoke, &err), 0);
    assert_true(smoke.tune_runs[0].config.train.images == 100 && smoke.tune_runs[0].config.train.warmup_images == 2500);
    sweep_free(&smoke);
    /* linear: candidate 2 best; mlp: a tie between 1 and 3 goes to 1, NaN ignored; identity: all NaN */
    double score[12] = {0.2, 0.1, 0.5, 0.3, NAN, 0.4, 0.1, 0.4, NAN, NAN, NAN, NAN};
    sweep_tune_apply(&s, score);
    for (int r = 0; r < 6; r++) {
        const SweepRun *run = &s.runs[r];
        if (r < 2) {
            assert_string_equal(run->tuned, "train.lr=0.004; train.weight_decay=0");
            assert_true(run->config.train.lr == 0.004 && run->config.train.weight_decay == 0);
        } else if (r < 4) {
            assert_string_equal(run->tuned, "train.lr=0.001; train.weight_decay=0.1");
            assert_true(run->config.train.lr == 0.001 && run->config.train.weight_decay == 0.1);
        } else {
            assert_string_equal(run->tuned, "");
            assert_true(run->config.train.lr == 0.001); /* the base experiment's */
        }
        assert_false(run->config.eval.validation);
        assert_true(run->config.train.images == 20000 || run->config.train.images == 100000);
    }
    sweep_free(&s);
}

/* Per-arm grids (tune.when): a when: entry's grid joins grid: only for the configurations its
 * selector matches, replacing a key of grid: in place; a configuration no grid applies to has no
 * candidates and keeps its spec; sweep_tune_apply picks within each configuration's own
 * candidates. */
static void test_sweep_tune_when(void **state) {
    (void)state;
    write_base_experiment(); /* seed 7 */
    const char *path = write_file("ablations/when.yaml", AB_HEAD
                                  "sweep: {loss.kind: [infonce, siglip], train.batch_size: [32, 64]}\n"
                                  "seeds: 2\n"
                                  "tune:\n"
                                  "  images: 5000\n"
                                  "  metric: m\n"
                                  "  grid: {train.lr: [0.001, 0.002]}\n"
                                  "  when:\n"
                                  "    loss.kind=siglip: {loss.init_bias: [-10, -5]}\n"
                                  "    loss.kind=siglip,train.batch_size!=32: {train.lr: [0.004]}\n");
    Sweep s;
    Err err = {0};
    if (sweep_load(path, "quick", &s, &err)) fail_msg("%s", err.msg);
    assert_int_equal(s.n_runs, 8);
    const char *want[] = {
        "loss=infonce_bs=32_lr=0.001_seed=9", "loss=infonce_bs=32_lr=0.002_seed=9",
        "loss=infonce_bs=64_lr=0.001_seed=9", "loss=infonce_bs=64_lr=0.002_seed=9",
        "loss=siglip_bs=32_lr=0.001_bias0=-10_seed=9", "loss=siglip_bs=32_lr=0.001_bias0=-5_seed=9",
        "loss=siglip_bs=32_lr=0.002_bias0=-10_seed=9", "loss=siglip_bs=32_lr=0.002_bias0=-5_seed=9",
        "loss=siglip_bs=64_lr=0.004_bias0=-10_seed=9", "loss=siglip_bs=64_lr=0.004_bias0=-5_seed=9",
    };
    const int config[] = {0, 0, 1, 1, 2, 2, 2, 2, 3, 3};
    assert_int_equal(s.n_tune_runs, 10);
    for (int t = 0; t < 10; t++) {
        const SweepRun *r = &s.tune_runs[t];
        assert_string_equal(r->id, want[t]);
        assert_int_equal(r->tune_config, config[t]);
        assert_true(r->config.eval.validation && r->config.train.images == 5000);
        bool siglip = t >= 4;
        assert_string_equal(r->config.loss.kind, siglip ? "siglip" : "infonce");
        assert_true(r->config.loss.init_bias == (siglip && t % 2 ? -5.0 : -10.0));
    }
    assert_string_equal(s.tune_runs[9].tuned, "train.lr=0.004; loss.init_bias=-5");
    assert_string_equal(s.tune_runs[9].swept, "loss.kind=siglip; train.batch_size=64; train.lr=0.004; "
                                               "loss.init_bias=-5; seed=9");
    double score[10] = {0.1, 0.2, NAN, NAN, 0.3, 0.5, 0.4, 0.1, 0.2, 0.2};
    sweep_tune_apply(&s, score);
    const char *tuned[] = {"train.lr=0.002", "", "train.lr=0.001; loss.init_bias=-5",
                           "train.lr=0.004; loss.init_bias=-10"};
    for (int r = 0; r < 8; r++) {
        const SweepRun *run = &s.runs[r];
        assert_string_equal(run->tuned, tuned[r / 2]);
        double lr = r / 2 == 0 ? 0.002 : r / 2 == 3 ? 0.004 : 0.001;
        assert_true(run->config.train.lr == lr);
        assert_true(run->config.loss.init_bias == (r / 2 == 2 ? -5.0 : -10.0));
    }
    sweep_free(&s);

    /* only a when: grid: the configurations it does not select are not tuned at all */
    path = write_file("ablations/when2.yaml", AB_HEAD
                      "sweep: {loss.kind: [infonce, siglip, dcl]}\n"
                      "tune: {images: 100, metric: m, when: {loss.kind=siglip: {loss.init_bias: [-10, -5]}}}\n");
    if (sweep_load(path, "quick", &s, &err)) fail_msg("%s", err.msg);
    assert_int_equal(s.n_tune_runs, 2);
    assert_int_equal(s.tune_runs[0].tune_config, 1);
    assert_string_equal(s.tune_runs[1].id, "loss=siglip_bias0=-5_seed=8");
    double sc2[2] = {0.1, 0.3};
    sweep_tune_apply(&s, sc2);
    assert_string_equal(s.runs[0].tuned, "");
    assert_string_equal(s.runs[1].tuned, "loss.init_bias=-5");
    assert_string_equal(s.runs[2].tuned, "");
    sweep_free(&s);

    /* a selector that matches no configuration leaves the sweep without a tuning stage */
    path = write_file("ablations/when3.yaml", AB_HEAD
                      "sweep: {loss.kind: [infonce, dcl]}\n"
                      "tune: {images: 100, metric: m, when: {loss.kind=siglip: {loss.init_bias: [-10, -5]}}}\n");
    if (sweep_load(path, "quick", &s, &err)) fail_msg("%s", err.msg);
    assert_int_equal(s.n_runs, 2);
    assert_int_equal(s.n_tune_runs, 0);
    assert_null(s.tune_runs);
    sweep_free(&s);
}

/* The dry run lists every id and prints each run's spec, which reads back as that run's Config. */
static void test_sweep_dry_run(void **state) {
    (void)state;
    write_base_experiment();
    const char *path = write_file("ablations/projection.yaml", ABLATION);
    Sweep s;
    Err err = {0};
    assert_int_equal(sweep_load(path, "quick", &s, &err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sweep_print_dry_run(f, &s);
    fclose(f);
    assert_non_null(strstr(text, "# question: Does an MLP head beat a linear one, and at which tap?\n"));
    assert_non_null(strstr(text, "= 16 runs\n"));
    for (int r = 0; r < s.n_runs; r++) {
        char *doc = strstr(text, fmt("--- # %s  [", s.runs[r].id));
        assert_non_null(doc);
        doc = strchr(doc, '\n') + 1;
        char *end = strstr(doc, "\n---");
        size_t n = end ? (size_t)(end - doc) + 1 : strlen(doc);
        Config c;
        assert_int_equal(spec_load_string(fmt("%s/dry.yaml", g_dir), doc, n, &c, &err), 0);
        assert_true(config_equal(&c, &s.runs[r].config));
    }
    free(text);
    sweep_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_example_parses),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_deep_nesting_is_refused),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_base_inheritance),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_yaml_round_trip),
        cmocka_unit_test(test_help_spec_lists_every_key),
        cmocka_unit_test(test_fuzz_mutations),
        cmocka_unit_test(test_strings_utf8),
        cmocka_unit_test(test_sweep_expansion_order_ids_seeds),
        cmocka_unit_test(test_sweep_profiles_replace_axes),
        cmocka_unit_test(test_sweep_count_exposed_and_limit),
        cmocka_unit_test(test_sweep_errors),
        cmocka_unit_test(test_sweep_tune_stage),
        cmocka_unit_test(test_sweep_tune_when),
        cmocka_unit_test(test_sweep_dry_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
