/* shared.h — pieces every objective needs: building the shared image tower and the text tower
 * from their sections of the Config, the loss configuration, and small row operations used by
 * zero-shot scoring.
 * Kept here so the three objectives build their image tower identically (the Fig. 2 comparison
 * depends on it). */
#ifndef CLIPLAB_OBJECTIVES_SHARED_H
#define CLIPLAB_OBJECTIVES_SHARED_H

#include "heads/head.h"
#include "losses/losses.h"
#include "objective.h"
#include "towers/text_tower.h"

/* The image tower of the model.image section at the dataset's image size. */
ImageTower *objective_image_tower(const ImageSection *image, const Dataset *ds, int max_batch, Tensors *params,
                                  Tensors *acts, Err *err);
/* The text tower of the model.text section over the dataset's vocabulary and context. */
TextTower *objective_text_tower(const TextTowerConfig *text, const Dataset *ds, int max_batch, Tensors *params,
                                Tensors *acts, Err *err);
/* The loss section as the losses' LossConfig; max_batch (the training batch) picks the automatic tile. */
/* objective_loss_config, then the loss's own check (loss_validate) at a batch of `batch` rows and
 * the model's embedding dim: 0, or -1 with one line naming the keys, e.g. "loss.kind=dcl,
 * train.batch_size=1: loss dcl needs a batch of at least 2 (got 1): ...". */
int objective_validate_loss(ObjectiveSections cfg, int batch, LossConfig *out, Err *err);
int objective_loss_config(const LossSection *loss, int max_batch, LossConfig *out, Err *err);
void objective_data_dims(const Dataset *ds, int *T, int *image_floats);

/* x [n, D]: each row scaled to unit L2 norm (rows of zeros left alone). */
void objective_normalize_rows(float *x, int n, int D);
/* scores [n, nc] = a [n, D] @ b [nc, D]^T */
void objective_dot_scores(float *scores, const float *a, const float *b, int n, int nc, int D);
/* x [n, V]: each row replaced by its log-softmax (numerically stable). */
void objective_log_softmax_rows(float *x, int n, int V);
/* The taps of the image tower's last forward (pre_head = the tapped stage, no post_head). */
ImageFeatures objective_tap_features(const ImageTower *img);
/* Runs the tower on n images [n, R, R, 3] and returns its taps: the image_features of an
 * objective without a joint embedding space. */
ImageFeatures objective_tower_features(ImageTower *img, const float *images, int n);

#endif
