/* objective.h — what a model is trained to do, behind one vtable.
 *
 * An objective owns the towers and heads it needs (all sharing the model's one parameter Tensors
 * and one activation Tensors), computes loss + gradients on a batch, and scores zero-shot classes
 * by its own rule (docs/DESIGN.md, Objectives):
 *   contrastive  cosine(img(x), mean over templates of normalised txt(prompt_c))
 *   bow          mean log-prob of prompt_c's content words, averaged over templates
 *   caption      log sum over the grammar's sentences naming c of p(sentence | image) (marginal over
 *                templates and unnamed attributes); second rule "pmi": minus that under the mean image
 * Every objective shares the same image tower, so the three arms differ only in what is trained
 * on top of it. Deliberately left out: mixing objectives in one model.
 */
#ifndef CLIPLAB_OBJECTIVE_H
#define CLIPLAB_OBJECTIVE_H

#include <stdbool.h>

#include "common/check.h"
#include "common/comm.h"
#include "common/rng.h"
#include "common/tensors.h"
#include "data/data.h"
#include "heads/head.h"
#include "towers/image_cnn.h"
#include "towers/text_tower.h"

typedef struct Objective Objective;

#define OBJECTIVE_NAME_MAX 24 /* enum names in the sections below, with the NUL */
#define OBJECTIVE_TAP_MAX 32  /* "img.stageK" */

/* The objective section of the Config. */
typedef struct {
    char kind[OBJECTIVE_NAME_MAX]; /* an objective of the registry (registry.c) */
    int prefix_tokens;             /* caption: image prefix tokens of the decoder */
} ObjectiveConfig;

/* The model.image section: objective_image_tower makes it the tower's ImageTowerConfig, with the
 * dataset's image size. */
typedef struct {
    int n_widths;
    int widths[IMAGE_TOWER_MAX_STAGES]; /* channels per stage */
    int convs_per_stage;
    bool residual;
    char norm[OBJECTIVE_NAME_MAX]; /* image_tower_norm_name */
    char tap[OBJECTIVE_TAP_MAX];   /* "img.stageK" */
} ImageSection;

/* The model section: the towers and heads an objective builds, and the joint space. */
typedef struct {
    ImageSection image;
    TextTowerConfig text;
    HeadConfig head;
    int embed_dim;
} ModelConfig;

/* The loss section (contrastive objectives): objective_loss_config makes it a LossConfig. */
typedef struct {
    char kind[OBJECTIVE_NAME_MAX]; /* a loss of the registry (losses/losses.c) */
    bool one_sided;
    char temperature[OBJECTIVE_NAME_MAX]; /* objective_temperature_name */
    double init_temperature;
    double init_logit_scale; /* siglip: initial exp(t) */
    double init_bias;        /* siglip: initial b */
    double scalar_lr_scale; /* learning-rate multiplier of the loss scalars (t, b) */
    double lambda;
    int tile;       /* 0 = automatic */
    int group_size; /* 0: whole batch; g: the loss within groups of g rows */
} LossSection;

/* All an objective reads of the Config: its own section and those of the parts it composes. */
typedef struct {
    const ObjectiveConfig *objective;
    const ModelConfig *model;
    const LossSection *loss;
} ObjectiveSections;

/* Features of a batch of images for evaluation (probes, retrieval, geometry). Pointers are owned
 * by the objective and valid until its next forward. */
typedef struct {
    int n_taps;
    const char *tap_names[IMAGE_TOWER_MAX_STAGES];
    const float *taps[IMAGE_TOWER_MAX_STAGES]; /* [B, tap_dims[k]] pooled features of every built image stage */
    int tap_dims[IMAGE_TOWER_MAX_STAGES];
    const float *pre_head; /* [B, pre_dim]: the representation the head reads (SimCLR's h) */
    int pre_dim;
    const float *post_head; /* [B, post_dim]: the normalised joint-space embedding (z), or NULL */
    int post_dim;
} ImageFeatures;

/* Room a caller of log_scalars provides. */
#define OBJECTIVE_MAX_LOG_SCALARS 4

typedef struct ObjectiveOps {
    const char *name;
    /* Checks the sections against a batch of `batch` rows before anything is built (user input:
     * 0, or -1 with one line in err), e.g. the loss's own constraints. May be NULL. */
    int (*validate)(ObjectiveSections cfg, int batch, Err *err);
    /* Declares towers, heads and tensors into params/acts; the caller allocates both afterwards. */
    Objective *(*create)(ObjectiveSections cfg, const Dataset *ds, int max_batch, Tensors *params, Tensors *acts,
                         Err *err);
    /* Bytes create will allocate at max_batch beyond its Tensors and towers (the loss workspace),
     * for the model's memory estimate; the sections passed validate. May be NULL: none. */
    size_t (*workspace_bytes)(ObjectiveSections cfg, int max_batch);
    void (*init)(Objective *o, Rng *rng);
    /* Loss of the batch; parameter gradients accumulated into params' GRAD buffer. Data parallel:
     * the batch is this rank's rows of a global batch of batch->B * comm->size rows (rank r owns
     * rows [r * B, r * B + B)); the return value and the gradients are this rank's share of the
     * global batch's mean, so summing them over ranks gives the single-process result.
     * comm_serial() is the single process. */
    float (*forward_backward)(Objective *o, const Batch *batch, const Comm *comm);
    /* scores [task->n_images, task->n_classes] by the objective's own zero-shot rule; followed by a
     * second block of the same shape when zeroshot_second_rule names a second rule. */
    void (*zeroshot_scores)(Objective *o, const ZeroShotTask *task, float *scores);
    /* Name of the second rule (metrics zs.<task>.<name>.top1; at most 6 characters), or NULL. */
    const char *zeroshot_second_rule;
    /* Evaluation-mode features of n images [n, R, R, 3], n <= max_batch. */
    ImageFeatures (*image_features)(Objective *o, const float *images, int n);
    /* Normalised text embeddings [n, post_dim] of a batch's captions, or NULL if the objective has
     * no joint space (then retrieval is skipped). */
    const float *(*text_embeddings)(Objective *o, const int *tokens, const int *lengths, int n);
    /* Current learnable loss scalars for logging (e.g. logit scale): at most cap (name, value)
     * pairs into names, values [cap]; returns how many. May be NULL. */
    int (*log_scalars)(const Objective *o, const char **names, float *values, int cap);
    /* After every optimiser step: keeps parameters in their domain (the loss's clamp of its
     * scalars). May be NULL. */
    void (*post_step)(Objective *o);
    /* Whether the objective can train data-parallel over `ranks` ranks; 0, or -1 with one line
     * (user input: the spec's choice of loss). NULL: any number of ranks. */
    int (*check_ranks)(const Objective *o, int ranks, Err *err);
    void (*free)(Objective *o);
} ObjectiveOps;

struct Objective {
    const ObjectiveOps *ops;
};

/* The registry (registry.c; one file per objective): the i-th objective's name, NULL past the last. */
const char *objective_kind_name(int i);

/* Caption objective only: out [n_images, task->n_gen] = log p(sentence k | image i) of the task's
 * generative sentences for its first n_images images, by the prefix-tree decode that scoring uses
 * or (reference != 0) by one full decode per (image, sentence) pair. For tests and the bench. */
void objective_caption_sentence_logprobs(Objective *o, const ZeroShotTask *task, int n_images, int reference,
                                         float *out);

/* Registry lookup by name ("contrastive", "bow", "caption"); NULL + err listing the valid ones. */
const ObjectiveOps *objective_lookup(const char *name, Err *err);

/* loss.temperature by index (shared.c): learn the logit scale, or keep it at its initial value. */
enum { OBJECTIVE_TEMPERATURE_LEARNED, OBJECTIVE_TEMPERATURE_FIXED };
const char *objective_temperature_name(int i);

#endif
