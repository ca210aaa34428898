/* optim.h — the optimizer side of a training step: AdamW, the learning-rate schedule and global
 * gradient-norm clipping, all over a Tensors table with VALUE, GRAD, ADAM_M and ADAM_V buffers.
 * Deliberately left out: other optimizers, per-group hyper-parameters beyond the decay exemption
 * (TENSOR_NO_DECAY) and a tensor's learning-rate multiplier (lr_scale), step-based schedules (cliplab's time axis is images processed). */
#ifndef CLIPLAB_OPTIM_H
#define CLIPLAB_OPTIM_H

#include "common/tensors.h"

typedef struct {
    float lr; /* peak learning rate; the schedule scales it, adamw_step takes the scheduled value */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled (Loshchilov & Hutter): p -= lr * wd * p, skipped for TENSOR_NO_DECAY */
} AdamWConfig;

/* One AdamW update of every tensor, with bias correction, at lr times the tensor's lr_scale; step
 * counts from 1. */
void adamw_step(Tensors *params, const AdamWConfig *cfg, float lr, long step);

/* Linear warm-up from 0 to peak_lr over warmup_images, then cosine decay to 0 at total_images
 * (and 0 after it). `images` is the count processed INCLUDING the batch about to be stepped, so
 * the first step has a non-zero rate. */
float schedule_lr(double images, double warmup_images, double total_images, float peak_lr);
/* The same, decaying to min_frac * peak_lr instead of 0. */
float schedule_lr_floor(double images, double warmup_images, double total_images, float peak_lr, float min_frac);

/* Learning-rate schedules, all with the same linear warm-up:
 *  - cosine: cosine decay to 0 at the budget. The rate at N images depends on the total budget,
 *    so curves of runs with different budgets (or read before their end) are not comparable.
 *  - constant: the peak rate after warm-up. The rate at N images never depends on the budget.
 *  - wsd (warm-up, stable, decay): constant until the last decay_fraction of the budget, then a
 *    linear decay to 0. Budget-independent before the decay starts; compare curves there only. */
typedef enum { SCHEDULE_COSINE, SCHEDULE_CONSTANT, SCHEDULE_WSD } ScheduleKind;
/* Name of schedule kind i, NULL past the last: the one list of schedule names (the spec reads it). */
const char *schedule_kind_name(int i);
/* Kind of a name, or -1. */
int schedule_kind_find(const char *name);

typedef struct {
    ScheduleKind kind;
    double warmup_images, total_images;
    double decay_fraction; /* wsd: final fraction of total_images spent decaying */
    float peak_lr;
} Schedule;

/* The rate for the step that brings the count to `images` (as schedule_lr). */
float schedule_at(const Schedule *s, double images);
/* Images up to which the rate does not depend on total_images: warmup_images for cosine (its
 * decay starts right after warm-up), total_images for constant, the start of the decay for wsd. */
double schedule_budget_free_until(const Schedule *s);

/* Global L2 norm of all gradients (accumulated in double); if max_norm > 0 and the norm exceeds
 * it, every gradient is scaled by max_norm / norm. Returns the norm BEFORE clipping; a non-finite
 * norm leaves the gradients untouched so the caller can mark the run diverged. */
float grad_clip_global_norm(Tensors *params, float max_norm);
/* Whether grad_clip_global_norm scaled gradients of this norm (what /train logs as "clipped"). */
int grad_clip_applies(float norm, float max_norm);

#endif
