/* dataset.c — the dataset registry and what every dataset shares: configuration checks, the
 * vocabulary, image normalisation, batch filling, eval pairs and zero-shot task assembly.
 * Deliberately left out: anything specific to one dataset (shapes.c, fmnist.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/rng.h"
#include "data/dataset_impl.h"

/* The registry, the only list of dataset names (the spec, help-spec and error messages read it;
 * the first is the default). To add a dataset: implement a DatasetOps in its own file (open,
 * close, sample, eval_sample, build_tasks, stats, grammar_words), declare it in dataset_impl.h and
 * list it here. Its grammar words then join the shared vocabulary of every dataset. */
static const DatasetOps *const DATASETS[] = {&SHAPES_OPS, &FMNIST_OPS};
#define N_DATASETS (int)(sizeof DATASETS / sizeof DATASETS[0])

const char *dataset_name(int i) { return i >= 0 && i < N_DATASETS ? DATASETS[i]->name : NULL; }

/* Training samples used to measure the normalisation mean / std at open. */
#define NORM_SAMPLES 256

void data_config_default(DataConfig *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->dataset, DATASETS[0]->name);
    c->image_size = 32;
    c->caption_noise = 0.5f;
    c->max_objects = 3;
    static const char *const HOLDOUT[][2] = {{"red", "circle"}, {"blue", "square"}, {"green", "triangle"}};
    c->n_holdout = 3;
    for (int i = 0; i < c->n_holdout; i++) {
        strcpy(c->holdout[i][0], HOLDOUT[i][0]);
        strcpy(c->holdout[i][1], HOLDOUT[i][1]);
    }
    strcpy(c->fmnist_dir, "/usr/share/datasets/fashion-mnist");
    c->context = 16;
    c->seed = 0;
    c->eval_images = 512;
}

uint64_t data_eval_seed(const DataConfig *cfg, uint64_t stream) {
    /* Training draws sample i from rng_hash(seed, i); evaluation hashes from a seed derived
     * through a second mix, so the two streams never share a generator; validation sets from a
     * seed mixed with another salt, so tuning never sees a reported test image. */
    uint64_t salt = cfg->validation ? VALIDATION_SALT : 0xE7A15EEDULL;
    return rng_hash(rng_hash(cfg->seed, salt) ^ 0x5bd1e9955bd1e995ULL, stream);
}

static int check_config(const DataConfig *c, Err *err) {
    if (c->image_size < 16 || c->image_size > 64)
        return err_set(err, "data.image_size %d out of range [16, 64]", c->image_size);
    if (!(c->caption_noise >= 0.0f && c->caption_noise <= 1.0f))
        return err_set(err, "data.caption_noise %g out of range [0, 1]", (double)c->caption_noise);
    if (c->context < 3 || c->context > 128) return err_set(err, "data.context %d out of range [3, 128]", c->context);
    if (c->eval_images < 1 || c->eval_images > 100000)
        return err_set(err, "data.eval_images %d out of range [1, 100000]", c->eval_images);
    return 0;
}

static void measure_normalisation(Dataset *ds) {
    int R = ds->cfg.image_size, n = R * R * 3;
    float *img = mallocCheck(sizeof *img * (size_t)n);
    char caption[CAPTION_MAX];
    double s = 0, s2 = 0;
    for (int i = 0; i < NORM_SAMPLES; i++) {
        ds->ops->sample(ds, (uint64_t)i, img, caption, CAPTION_MAX);
        for (int j = 0; j < n; j++) {
            s += img[j];
            s2 += (double)img[j] * img[j];
        }
    }
    free(img);
    double cnt = (double)NORM_SAMPLES * n, mean = s / cnt, var = s2 / cnt - mean * mean;
    ds->mean = (float)mean;
    ds->inv_std = (float)(1.0 / sqrt(var > 1e-6 ? var : 1e-6));
}

Dataset *dataset_open(const DataConfig *cfg, Err *err) {
    int k = names_find(dataset_name, cfg->dataset);
    if (k < 0) return err_unknown_name(err, "dataset", cfg->dataset, dataset_name), NULL;
    const DatasetOps *ops = DATASETS[k];
    if (check_config(cfg, err)) return NULL;
    Dataset *ds = callocCheck(1, sizeof *ds);
    ds->ops = ops;
    ds->cfg = *cfg;
    if (ops->open(ds, err)) {
        free(ds);
        return NULL;
    }
    tokenizer_init(&ds->tok);
    for (int i = 0; i < N_DATASETS; i++) DATASETS[i]->grammar_words(&ds->tok);
    tokenizer_finalize(&ds->tok);
    measure_normalisation(ds);
    return ds;
}

static void task_free(ZeroShotTask *t) {
    free(t->images);
    free(t->labels);
    free(t->class_names);
    free(t->prompt_tokens);
    free(t->prompt_lengths);
    free(t->prompt_bow);
    free(t->gen_tokens);
    free(t->gen_lengths);
    free(t->gen_class);
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_tasks; i++) task_free(&ds->tasks[i]);
    free(ds->tasks);
    if (ds->probe) task_free(ds->probe);
    free(ds->probe);
    ds->ops->close(ds);
    tokenizer_free(&ds->tok);
    free(ds);
}

const Tokenizer *dataset_tokenizer(const Dataset *ds) { return &ds->tok; }
int dataset_vocab_size(const Dataset *ds) { return tokenizer_vocab_size(&ds->tok); }
const DataConfig *dataset_config(const Dataset *ds) { return &ds->cfg; }
long dataset_train_size(const Dataset *ds) { return ds->train_size; }

int dataset_probe_size(const Dataset *ds, int n) { return ds->eval_pool > 0 && ds->eval_pool < n ? (int)ds->eval_pool : n; }

void data_normalize_image(const Dataset *ds, float *img) {
    int n = ds->cfg.image_size * ds->cfg.image_size * 3;
    for (int j = 0; j < n; j++) img[j] = (img[j] - ds->mean) * ds->inv_std;
}

void batch_alloc(Batch *b, const Dataset *ds, int max_batch) {
    CHECK(max_batch > 0, "max_batch %d", max_batch);
    memset(b, 0, sizeof *b);
    b->max_batch = max_batch;
    b->R = ds->cfg.image_size;
    b->T = ds->cfg.context;
    b->V = dataset_vocab_size(ds);
    b->images = mallocCheck(sizeof *b->images * (size_t)max_batch * b->R * b->R * 3);
    b->tokens = mallocCheck(sizeof *b->tokens * (size_t)max_batch * b->T);
    b->lengths = mallocCheck(sizeof *b->lengths * (size_t)max_batch);
    b->bow = mallocCheck(sizeof *b->bow * (size_t)max_batch * b->V);
}

void batch_free(Batch *b) {
    free(b->images);
    free(b->tokens);
    free(b->lengths);
    free(b->bow);
    memset(b, 0, sizeof *b);
}

/* Row k of b from a raw image (normalised in place) and its caption. */
static void batch_set_row(const Dataset *ds, Batch *b, int k, const char *caption) {
    data_normalize_image(ds, b->images + (size_t)k * b->R * b->R * 3);
    int *tok = b->tokens + (size_t)k * b->T;
    b->lengths[k] = tokenizer_encode(&ds->tok, caption, tok, b->T);
    tokenizer_bow(&ds->tok, tok, b->lengths[k], b->bow + (size_t)k * b->V);
}

static void check_batch(const Dataset *ds, const Batch *b, int n) {
    CHECK(n >= 0 && n <= b->max_batch, "batch of %d samples, max_batch %d", n, b->max_batch);
    CHECK(b->R == ds->cfg.image_size && b->T == ds->cfg.context && b->V == dataset_vocab_size(ds),
          "batch allocated for another dataset configuration");
}

/* Fills rows 0..n of b: training samples at + k, or (eval) samples k of eval pair set `at`. */
static void fill_rows(const Dataset *ds, Batch *b, int n, int eval, uint64_t at) {
    check_batch(ds, b, n);
    b->B = n;
    size_t img_stride = (size_t)b->R * b->R * 3;
#pragma omp parallel for schedule(dynamic, 4)
    for (int k = 0; k < n; k++) {
        char caption[CAPTION_MAX];
        float *img = b->images + (size_t)k * img_stride;
        if (eval) ds->ops->eval_sample(ds, at, (uint64_t)k, img, caption, CAPTION_MAX);
        else ds->ops->sample(ds, at + (uint64_t)k, img, caption, CAPTION_MAX);
        batch_set_row(ds, b, k, caption);
    }
}

void dataset_fill_batch(const Dataset *ds, Batch *b, uint64_t first_index, int n) { fill_rows(ds, b, n, 0, first_index); }

void dataset_eval_pairs(const Dataset *ds, Batch *out, int n, uint64_t which) { fill_rows(ds, out, n, 1, which); }

void dataset_sample_raw(const Dataset *ds, uint64_t index, float *image, char *caption, int cap) {
    ds->ops->sample(ds, index, image, caption, cap);
}

const ZeroShotTask *dataset_zeroshot_tasks(Dataset *ds, int *n_tasks) {
    if (!ds->tasks) {
        ds->tasks = callocCheck(DATA_MAX_TASKS, sizeof *ds->tasks);
        ds->ops->build_tasks(ds);
    }
    *n_tasks = ds->n_tasks;
    return ds->tasks;
}

/* Salt of the data seed the probe set is drawn with: its images come from an eval seed space
 * disjoint from the zero-shot tasks' (and, like theirs, from training). */
#define PROBE_SEED_SALT 0x9B0BE5E7D00DULL

const ZeroShotTask *dataset_probe_task(Dataset *ds, const char *name, int n) {
    if (ds->probe && !strcmp(ds->probe->name, name) && ds->probe->n_images == n) return ds->probe;
    if (ds->probe) task_free(ds->probe);
    free(ds->probe);
    ds->probe = NULL;
    ZeroShotTask *saved = ds->tasks;
    const int saved_n = ds->n_tasks;
    const DataConfig saved_cfg = ds->cfg;
    ds->tasks = callocCheck(DATA_MAX_TASKS, sizeof *ds->tasks);
    ds->n_tasks = 0;
    ds->cfg.eval_images = n;
    ds->cfg.seed ^= PROBE_SEED_SALT;
    ds->build_only = name;
    ds->ops->build_tasks(ds);
    for (int i = 0; i < ds->n_tasks; i++) {
        if (!ds->probe && !strcmp(ds->tasks[i].name, name)) {
            ds->probe = mallocCheck(sizeof *ds->probe);
            *ds->probe = ds->tasks[i];
        } else {
            task_free(&ds->tasks[i]);
        }
    }
    free(ds->tasks);
    ds->tasks = saved;
    ds->n_tasks = saved_n;
    ds->cfg = saved_cfg;
    ds->build_only = NULL;
    return ds->probe;
}

ZeroShotTask *data_task_add(Dataset *ds, const char *name, int n_images, int n_classes,
                            const char *const *class_names, const char *const *templates, int n_templates) {
    if (ds->build_only && strcmp(name, ds->build_only)) n_images = 0;
    CHECK(ds->n_tasks < DATA_MAX_TASKS, "more than %d zero-shot tasks", DATA_MAX_TASKS);
    ZeroShotTask *t = &ds->tasks[ds->n_tasks++];
    int R = ds->cfg.image_size, T = ds->cfg.context, V = dataset_vocab_size(ds), P = n_classes * n_templates;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_images = n_images;
    t->images = mallocCheck(sizeof *t->images * (size_t)n_images * R * R * 3);
    t->labels = mallocCheck(sizeof *t->labels * (size_t)n_images);
    t->n_classes = n_classes;
    t->class_names = callocCheck((size_t)n_classes, sizeof *t->class_names);
    for (int c = 0; c < n_classes; c++) snprintf(t->class_names[c], sizeof t->class_names[c], "%s", class_names[c]);
    t->n_templates = n_templates;
    t->prompt_tokens = mallocCheck(sizeof *t->prompt_tokens * (size_t)P * T);
    t->prompt_lengths = mallocCheck(sizeof *t->prompt_lengths * (size_t)P);
    t->prompt_bow = mallocCheck(sizeof *t->prompt_bow * (size_t)P * V);
    for (int c = 0; c < n_classes; c++)
        for (int k = 0; k < n_templates; k++) {
            int row = c * n_templates + k;
            char text[CAPTION_MAX];
            TextBuf b;
            text_init(&b, text, sizeof text);
            text_add_filled(&b, templates[k], class_names[c]);
            text_fix_articles(&b);
            int *tok = t->prompt_tokens + (size_t)row * T;
            t->prompt_lengths[row] = tokenizer_encode(&ds->tok, text, tok, T);
            tokenizer_bow(&ds->tok, tok, t->prompt_lengths[row], t->prompt_bow + (size_t)row * V);
        }
    data_task_gen_begin(ds, t, P);
    memcpy(t->gen_tokens, t->prompt_tokens, sizeof *t->gen_tokens * (size_t)P * T);
    memcpy(t->gen_lengths, t->prompt_lengths, sizeof *t->gen_lengths * (size_t)P);
    for (int row = 0; row < P; row++) t->gen_class[row] = row / n_templates;
    return t;
}

void data_task_gen_begin(Dataset *ds, ZeroShotTask *t, int n) {
    CHECK(n > 0, "empty generative prompt set for task '%s'", t->name);
    t->n_gen = n;
    t->gen_tokens = reallocCheck(t->gen_tokens, sizeof *t->gen_tokens * (size_t)n * ds->cfg.context);
    t->gen_lengths = reallocCheck(t->gen_lengths, sizeof *t->gen_lengths * (size_t)n);
    t->gen_class = reallocCheck(t->gen_class, sizeof *t->gen_class * (size_t)n);
}

void data_task_gen_set(const Dataset *ds, ZeroShotTask *t, int k, const char *text, int cls) {
    CHECK(k >= 0 && k < t->n_gen && cls >= 0 && cls < t->n_classes, "generative prompt %d of class %d", k, cls);
    int T = ds->cfg.context;
    t->gen_lengths[k] = tokenizer_encode(&ds->tok, text, t->gen_tokens + (size_t)k * T, T);
    t->gen_class[k] = cls;
}

void text_init(TextBuf *b, char *s, int cap) {
    CHECK(cap > 0, "empty text buffer");
    b->s = s;
    b->cap = cap;
    b->len = 0;
    s[0] = '\0';
}

void text_add(TextBuf *b, const char *piece) {
    while (*piece && b->len < b->cap - 1) b->s[b->len++] = *piece++;
    b->s[b->len] = '\0';
}

void text_add_filled(TextBuf *b, const char *tmpl, const char *value) {
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] == '}') {
            text_add(b, value);
            p++;
        } else if (b->len < b->cap - 1) {
            b->s[b->len++] = *p;
            b->s[b->len] = '\0';
        }
    }
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

void text_fix_articles(TextBuf *b) {
    char out[CAPTION_MAX];
    TextBuf o;
    text_init(&o, out, sizeof out);
    const char *s = b->s;
    while (*s) {
        int at_word = (s == b->s || !is_alpha(s[-1]));
        int alen = (s[0] == 'a' && s[1] == 'n') ? 2 : 1;
        if (at_word && s[0] == 'a' && s[alen] == ' ' && is_alpha(s[alen + 1])) {
            char next = s[alen + 1];
            int vowel = next == 'a' || next == 'e' || next == 'i' || next == 'o' || next == 'u';
            text_add(&o, vowel ? "an" : "a");
            s += alen;
            continue;
        }
        char one[2] = {*s++, '\0'};
        text_add(&o, one);
    }
    int cap = b->cap;
    text_init(b, b->s, cap);
    text_add(b, out);
}

int syn_count(SynList s) {
    int n = 0;
    while (n < SYN_MAX && s[n]) n++;
    return n;
}

const char *syn_pick(SynList s, float p, Rng *rng) { return chance(rng, p) ? s[rng_below(rng, (uint32_t)syn_count(s))] : s[0]; }

void syn_add_words(Tokenizer *t, SynList *lists, int n) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < syn_count(lists[i]); k++) tokenizer_add_text(t, lists[i][k], 1);
}

void text_add_words(Tokenizer *t, const char *const *texts, int n, int content) {
    for (int i = 0; i < n; i++) tokenizer_add_text(t, texts[i], content);
}
