/* dataset_impl.h — what a dataset plug-in implements, and helpers shared by the plug-ins.
 *
 * A dataset is a DatasetOps vtable plus its private state (Dataset.impl). The registry in
 * dataset.c lists them. Deliberately left out: anything the callers of data.h need.
 */
#ifndef CLIPLAB_DATA_DATASET_IMPL_H
#define CLIPLAB_DATA_DATASET_IMPL_H

#include <stdio.h>

#include "common/rng.h"
#include "data/data.h"

#define CAPTION_MAX 512

typedef struct {
    const char *name;
    /* Validates ds->cfg, reads files, sets ds->impl; 0 or -1 with err. */
    int (*open)(Dataset *ds, Err *err);
    void (*close)(Dataset *ds);
    /* Training sample `index`: image [R, R, 3] in [0, 1], caption text. Pure and thread-safe. */
    void (*sample)(const Dataset *ds, uint64_t index, float *image, char *caption, int cap);
    /* Sample k of eval pair set `which`, from the eval seed space. Pure and thread-safe. */
    void (*eval_sample)(const Dataset *ds, uint64_t which, uint64_t k, float *image, char *caption, int cap);
    /* Appends the dataset's zero-shot tasks with data_task_add. */
    void (*build_tasks)(Dataset *ds);
    /* Dataset-specific lines of `data stats` (class balance, hold-out, ...). */
    void (*stats)(const Dataset *ds, FILE *out, int n_samples);
    /* Every text fragment its grammar can emit, for the shared vocabulary; content != 0 for
     * attribute / class words. */
    void (*grammar_words)(Tokenizer *t);
} DatasetOps;

struct Dataset {
    const DatasetOps *ops;
    DataConfig cfg;
    Tokenizer tok;
    float mean, inv_std; /* image normalisation */
    long train_size;     /* distinct training items; 0 = unbounded stream */
    long eval_pool;      /* distinct evaluation images (the test split); 0 = unbounded */
    void *impl;
    ZeroShotTask *tasks;
    int n_tasks;
    ZeroShotTask *probe;    /* dataset_probe_task's set (NULL until asked) */
    const char *build_only; /* while building the probe set: the one task that gets images */
};

extern const DatasetOps SHAPES_OPS;
extern const DatasetOps FMNIST_OPS;

/* Seed salt of the caption generators (separate from the image generators, so an image does not
 * depend on caption_noise), and the first eval stream of dataset_eval_pairs' sets. */
#define CAPTION_SALT 0xCA97105CA9710000ULL
#define EVAL_PAIRS_STREAM (1ULL << 32)
/* Seed salt of the validation evaluation sets (data_eval_seed). */
#define VALIDATION_SALT 0x7A11DA7E5EEDULL

/* The eval seed space: derived from the data seed, never used as a training seed. */
uint64_t data_eval_seed(const DataConfig *cfg, uint64_t stream);

#define DATA_MAX_TASKS 8

/* Appends a task with its prompts tokenized (each template's "{}" replaced by the class name);
 * the caller fills images (raw, then data_normalize_image) and labels. While dataset_probe_task
 * builds its set, every task but the one asked for gets 0 images (nothing to render). */
ZeroShotTask *data_task_add(Dataset *ds, const char *name, int n_images, int n_classes,
                            const char *const *class_names, const char *const *templates, int n_templates);
/* Replaces t's generative-scoring sentences by n new ones, set with data_task_gen_set. */
void data_task_gen_begin(Dataset *ds, ZeroShotTask *t, int n);
/* Sentence k of t's generative-scoring set: text (tokenized here), naming class cls. */
void data_task_gen_set(const Dataset *ds, ZeroShotTask *t, int k, const char *text, int cls);
/* img [R*R*3] in place: [0, 1] -> normalised. */
void data_normalize_image(const Dataset *ds, float *img);

/* Synonym lists of the caption grammars: canonical word first, NULL-terminated when shorter. */
#define SYN_MAX 5
typedef const char *const SynList[SYN_MAX];
int syn_count(SynList s);
/* Canonical word, or with probability p a uniformly drawn synonym (possibly the canonical). */
const char *syn_pick(SynList s, float p, Rng *rng);
/* Adds every synonym of lists[0..n) to the vocabulary as content words. */
void syn_add_words(Tokenizer *t, SynList *lists, int n);
/* Adds texts[0..n) to the vocabulary. */
void text_add_words(Tokenizer *t, const char *const *texts, int n, int content);
static inline int chance(Rng *rng, float p) { return rng_uniform(rng) < p; }
#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

/* Appending text with a capacity check (silently cut at cap-1). */
typedef struct {
    char *s;
    int len, cap;
} TextBuf;
void text_init(TextBuf *b, char *s, int cap);
void text_add(TextBuf *b, const char *piece);
/* Appends tmpl with every "{}" replaced by value. */
void text_add_filled(TextBuf *b, const char *tmpl, const char *value);
/* "a" before a vowel-initial word becomes "an", and "an" before any other word "a". */
void text_fix_articles(TextBuf *b);

#endif
