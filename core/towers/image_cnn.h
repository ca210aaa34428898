/* image_cnn.h — the image tower: a CNN of named stages whose pooled outputs are the taps.
 *
 * Stage k (1-based) = convs_per_stage x [conv3x3 pad 1 (+ LayerNorm over channels) + ReLU]; the
 * first conv of every stage after the first has stride 2. With `residual`, every non-first conv of
 * a stage is a ResNet-v1 block  out = relu(norm(conv(x)) + x)  (shapes match inside a stage, so no
 * projection shortcut is needed; the downsampling conv stays plain). Tap "img.stageK" is the
 * global average pool of stage K's output; only stages 1..K are built, and in training only they
 * are computed. Layout NHWC (ops.h).
 * Deliberately left out: BatchNorm (it couples the samples of a batch, which a contrastive loss
 * can exploit), max-pool stems, dilations.
 */
#ifndef CLIPLAB_TOWERS_IMAGE_CNN_H
#define CLIPLAB_TOWERS_IMAGE_CNN_H

#include "common/check.h"
#include "common/rng.h"
#include "common/tensors.h"

#define IMAGE_TOWER_MAX_STAGES 8

enum { IMAGE_NORM_NONE = 0, IMAGE_NORM_LAYER = 1 };
/* The norms by IMAGE_NORM_* index ("none", "layer"), NULL past the last: the spec's list. */
const char *image_tower_norm_name(int i);

typedef struct {
    int n_stages;
    int widths[IMAGE_TOWER_MAX_STAGES];
    int convs_per_stage;
    int residual;
    int norm; /* IMAGE_NORM_NONE | IMAGE_NORM_LAYER */
    int image_size;
    int in_channels;
} ImageTowerConfig;

typedef struct ImageTower ImageTower;

/* Declares the parameters ("img.stageK.convJ.weight", ".bias" without norm, ".norm.weight/.bias"
 * with it) and the activations for max_batch. tap: "img.stageK" (1-based) or "" for the last stage.
 * A bad config or tap returns NULL with a one-line err, e.g.
 * "unknown tap 'img.stage9'; valid: img.stage1, img.stage2, img.stage3, img.stage4"; nothing is
 * declared then. */
ImageTower *image_tower_create(const ImageTowerConfig *cfg, const char *tap, int max_batch, Tensors *params,
                               Tensors *acts, Err *err);
/* After tensors_alloc: Kaiming-normal conv weights (fan-in, ReLU gain), zero biases, unit norms. */
void image_tower_init(ImageTower *t, Rng *rng);
int image_tower_dim(const ImageTower *t);    /* channels at the tap */
int image_tower_n_taps(const ImageTower *t); /* stages built */
const char *image_tower_tap_name(const ImageTower *t, int k); /* k 0-based: "img.stage<k+1>" */
int image_tower_tap_dim(const ImageTower *t, int k);
/* images [B, R, R, C_in] -> pooled features at the tap [B, dim], owned by the activations. Every
 * built stage is pooled (cheap next to the convs), so image_tower_tap_features serves the probes.
 * `images` must stay valid until the matching backward. */
const float *image_tower_forward(ImageTower *t, const float *images, int B);
/* pooled features of tap k (0-based) after the last forward: [B, tap_dim(k)] */
const float *image_tower_tap_features(const ImageTower *t, int k);
/* dfeat [B, dim] -> accumulates (+=) the parameter gradients; zeroes its own activation grads. */
void image_tower_backward(ImageTower *t, const float *dfeat, int B);
void image_tower_free(ImageTower *t);

#endif
