/* data.h — datasets of image–caption pairs, batches, and zero-shot tasks.
 *
 * Two datasets behind one opaque Dataset (a DatasetOps vtable, see dataset_impl.h):
 *  - "shapes": a procedural world, deterministic in (seed, index), infinite stream; a configurable
 *    list of (colour, shape) pairs is held out of every training image and caption;
 *  - "fashion-mnist": Debian's gzipped IDX files; train split for training (a seeded permutation
 *    per epoch, so the stream is also deterministic in (seed, index)), test split for evaluation.
 * Images are NHWC [R, R, 3] floats, normalised with one mean/std per dataset (measured on the
 * first training samples at open). Captions are tokenized with one vocabulary built from BOTH
 * grammars, so a model's vocabulary does not depend on the dataset.
 * Evaluation data (zero-shot tasks, eval pairs) comes from a seed space disjoint from training,
 * and validation sets (tuning) from a third one, disjoint from both (shapes only).
 * Deliberately left out: augmentation, on-disk caching of rendered images.
 */
#ifndef CLIPLAB_DATA_H
#define CLIPLAB_DATA_H

#include <stdint.h>

#include "common/check.h"
#include "data/tokenizer.h"

typedef struct {
    char dataset[32];    /* "shapes" | "fashion-mnist" */
    int image_size;      /* R, 16..64 */
    float caption_noise; /* 0..1: 0 = one canonical template, 1 = web-like variety */
    int max_objects;     /* 1..3 (shapes) */
    int n_holdout;
    char holdout[16][2][16]; /* (colour, shape) names never seen in training (shapes) */
    char fmnist_dir[256];
    int context;     /* T, token context length incl. BOS/EOS, 3..128 */
    uint64_t seed;   /* data seed */
    int eval_images; /* images per zero-shot task eval set */
    int validation;  /* 1: every eval set from the validation seed space, disjoint from the test sets */
} DataConfig;

/* shapes, R 32, noise 0.5, 3 objects, hold-out {red circle, blue square, green triangle},
 * /usr/share/datasets/fashion-mnist, T 16, seed 0, 512 eval images. */
void data_config_default(DataConfig *c);

typedef struct Dataset Dataset;

/* The registry (dataset.c): the i-th dataset's name ("shapes", "fashion-mnist"), NULL past the last. */
const char *dataset_name(int i);
/* NULL with one line in err on bad configuration or dataset files. */
Dataset *dataset_open(const DataConfig *cfg, Err *err);
void dataset_free(Dataset *ds);
const Tokenizer *dataset_tokenizer(const Dataset *ds);
int dataset_vocab_size(const Dataset *ds);
const DataConfig *dataset_config(const Dataset *ds);
/* Distinct training items (an epoch); 0 for an unbounded stream (shapes). */
long dataset_train_size(const Dataset *ds);

typedef struct {
    int max_batch, B, R, T, V;
    float *images; /* [max_batch, R, R, 3] NHWC, normalised to roughly zero mean, unit scale */
    int *tokens;   /* [max_batch, T] BOS w... EOS PAD... */
    int *lengths;  /* [max_batch] tokens incl. BOS and EOS (EOS at lengths[b]-1) */
    float *bow;    /* [max_batch, V] unique content words, mass 1/K each (rows sum to 1) */
} Batch;
void batch_alloc(Batch *b, const Dataset *ds, int max_batch);
void batch_free(Batch *b);
/* Fills b->B = n samples: sample index first_index + k for k < n (training stream). Parallel over
 * samples (OpenMP); allocates nothing; the result does not depend on thread count or order. */
void dataset_fill_batch(const Dataset *ds, Batch *b, uint64_t first_index, int n);

/* The raw training sample `index`: image [R, R, 3] in [0, 1] (not normalised) and its caption
 * text (at most cap bytes). For previews and statistics. */
void dataset_sample_raw(const Dataset *ds, uint64_t index, float *image, char *caption, int cap);

typedef struct {
    char name[32];
    int n_images;
    float *images; /* [n_images, R, R, 3] normalised as Batch.images */
    int *labels;   /* [n_images] in [0, n_classes) */
    int n_classes;
    char (*class_names)[48]; /* [n_classes] */
    int n_templates;         /* prompts are class-major: prompt (c, t) at row c*n_templates+t */
    int *prompt_tokens;      /* [n_classes*n_templates, T] */
    int *prompt_lengths;     /* [n_classes*n_templates] */
    float *prompt_bow;       /* [n_classes*n_templates, V] content words, as Batch.bow */
    /* Sentences the dataset's caption grammar itself writes for each class, for generative (caption
     * LM) scoring: sentence k names class gen_class[k], and a class is scored over all of its
     * sentences (templates x the attributes the class does not name). Where the grammar has no such
     * sentences for a task, they are the prompts above (gen_class = row / n_templates). */
    int n_gen;
    int *gen_tokens;  /* [n_gen, T] */
    int *gen_lengths; /* [n_gen] */
    int *gen_class;   /* [n_gen] in [0, n_classes) */
} ZeroShotTask;

/* All tasks of the dataset, built (once, then cached) from the eval seed space; *n_tasks set.
 * shapes: colour_shape_seen and colour_shape_heldout (both scored against ALL colour x shape
 * pairs; images of seen resp. held-out pairs), shape, colour, count (if max_objects > 1),
 * position. fashion-mnist: fmnist (10 classes, test split). Freed by dataset_free. */
const ZeroShotTask *dataset_zeroshot_tasks(Dataset *ds, int *n_tasks);

/* The linear probe's labelled images for task `name` (as in dataset_zeroshot_tasks): n images
 * drawn like the task's own but from a separate eval seed stream (shapes), or the first n of the
 * test split (fashion-mnist: at most its 10,000). Built on first use and cached while name and n
 * stay the same; NULL if the dataset has no such task. */
const ZeroShotTask *dataset_probe_task(Dataset *ds, const char *name, int n);
/* Images the probe set of n would hold (n, or the test split's size when that is smaller), without
 * building it. The evaluation splits a probe set 4:1:4 into train, validation and test, so it
 * needs at least DATA_PROBE_MIN_IMAGES. */
int dataset_probe_size(const Dataset *ds, int n);
#define DATA_PROBE_MIN_IMAGES 9

/* A fixed held-out set of n image–caption pairs (eval seed space; `which` selects one of many
 * such sets) for retrieval / probes; out->max_batch >= n. */
void dataset_eval_pairs(const Dataset *ds, Batch *out, int n, uint64_t which);

/* A contact sheet of samples 0..n-1 with their captions, as a PNG drawn by gnuplot (pngcairo).
 * Returns 0, or 1 after one line on stderr (unwritable file, gnuplot failed). */
int data_preview(Dataset *ds, int n, const char *out_path);
/* Vocabulary, caption-length distribution over samples 0..n-1 and the dataset's own statistics
 * (class balance, hold-out), on stdout. Returns 0. */
int data_stats(Dataset *ds, int n);

#endif
