/* optim.h — the optimizer side of a training step: AdamW, the learning-rate schedule and global
 * gradient-norm clipping, all over a Tensors table with VALUE, GRAD, ADAM_M and ADAM_V buffers.
 * Deliberately left out: other optimizers, per-group hyper-parameters beyond the decay exemption
 * (TENSOR_NO_DECAY), step-based schedules (cliplab's time axis is images processed). */
#ifndef CLIPLAB_OPTIM_H
#define CLIPLAB_OPTIM_H

#include "common/tensors.h"

typedef struct {
    float lr; /* peak learning rate; the schedule scales it, adamw_step takes the scheduled value */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled (Loshchilov & Hutter): p -= lr * wd * p, skipped for TENSOR_NO_DECAY */
} AdamWConfig;

/* One AdamW update of every tensor, with bias correction; step counts from 1. */
void adamw_step(Tensors *params, const AdamWConfig *cfg, float lr, long step);

/* Linear warm-up from 0 to peak_lr over warmup_images, then cosine decay to 0 at total_images
 * (and 0 after it). `images` is the count processed INCLUDING the batch about to be stepped, so
 * the first step has a non-zero rate. */
float schedule_lr(double images, double warmup_images, double total_images, float peak_lr);
/* The same, decaying to min_frac * peak_lr instead of 0. */
float schedule_lr_floor(double images, double warmup_images, double total_images, float peak_lr, float min_frac);

/* Global L2 norm of all gradients (accumulated in double); if max_norm > 0 and the norm exceeds
 * it, every gradient is scaled by max_norm / norm. Returns the norm BEFORE clipping; a non-finite
 * norm leaves the gradients untouched so the caller can mark the run diverged. */
float grad_clip_global_norm(Tensors *params, float max_norm);
/* Whether grad_clip_global_norm scaled gradients of this norm (what /train logs as "clipped"). */
int grad_clip_applies(float norm, float max_norm);

#endif
