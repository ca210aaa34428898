/* losses.h — the contrastive losses on plain float arrays: value and gradients, dense and tiled.
 *
 * Every loss takes image embeddings I [N x D] and text embeddings T [N x D] (row-major; pair i is
 * (I_i, T_i), the other N-1 texts are row i's negatives) and a few scalars, and returns the loss
 * with dL/dI, dL/dT and dL/dscalars. The embeddings are usually L2-normalised by the caller, but
 * nothing here assumes it (gradients are those of the formulas as written).
 *
 *   infonce        (CE_rows + CE_cols)/2 of logits s*I*T^T, labels = diagonal (CLIP Fig. 3);
 *                  s = exp(t); the forward does not clamp it (the gradient in t stays alive):
 *                  loss_clamp_scalars keeps t in [0, ln 100] after each optimiser step (CLIP,
 *                  open_clip).
 *   dcl            infonce without the positive pair in the softmax denominator (Yeh et al. 2022).
 *   siglip         -(1/N) sum_ij log sigmoid(z_ij (exp(t) I_i.T_j + b)), z = +1 on the diagonal,
 *                  -1 elsewhere (Zhai et al. 2023; exp(t) is not clamped, as in the paper).
 *   align_uniform  mean_i |I_i - T_i|^2 + lambda (U(I) + U(T)),
 *                  U(X) = log mean_{i != j} exp(-2 |x_i - x_j|^2) (Wang & Isola 2020).
 *
 * Tiled evaluation (cfg.tile > 0) streams column blocks of `tile` columns (infonce and dcl: square
 * blocks of side `tile`, over a few row parts in parallel) with a running max and log-sum-exp
 * (Inf-CL); only O(N) statistics survive between blocks and the backward recomputes each block, so
 * extra memory is O(N * tile), never O(N^2). tile = 0 (or tile >= N) is dense: one N x N block,
 * kept between forward and backward. Both agree to fp32 round-off.
 *
 * Grouped loss (cfg.group_size = g, 0 < g < N, g divides N): the batch is cut into N/g groups of
 * consecutive rows and the loss is the mean of the groups' losses, each computed on its g x g
 * block alone: a row's negatives are only its group's (the same images and steps with fewer
 * negatives, the control that separates "more negatives" from "more updates"). g = 1 leaves
 * infonce without a negative (loss 0) and siglip with its positive terms only.
 *
 * Rule for tiny batches: dcl and align_uniform need at least one negative pair, so N >= 2
 * (loss_validate says so, for the group size when grouped); infonce and siglip accept N = 1.
 *
 * MPI local loss: loss_local_forward_backward computes only the share of rows [r0, r1) of the
 * gathered global batch (rows of image->text, and columns of text->image); the shares of ranks
 * whose ranges partition [0, N) sum to the whole loss and its gradients (w.r.t. the gathered
 * embeddings: reduce-scatter them). align_uniform has none (its uniformity LSE spans all pairs).
 *
 * Deliberately left out: label smoothing, hard-negative weighting, mixed precision.
 */
#ifndef CLIPLAB_LOSSES_H
#define CLIPLAB_LOSSES_H

#include <stddef.h>

/* The built-in losses of the public C API. The registry (losses.c) is the only list of loss names;
 * these values are the registry indices of its first entries, and a loss added later has only
 * its index (loss_find(name)). */
typedef enum { LOSS_INFONCE, LOSS_SIGLIP, LOSS_DCL, LOSS_ALIGN_UNIFORM } LossKind;

typedef struct {
    int kind;              /* registry index: a LossKind, or loss_find(name) */
    int one_sided;         /* image->text rows only (infonce, dcl) */
    int learn_temperature; /* 0: t is fixed, dscalars[0] is left untouched */
    float lambda;          /* align_uniform: weight of the two uniformity terms */
    int tile;              /* 0: dense; > 0: column block size (infonce, dcl: square block side) */
    float init_temperature; /* infonce/dcl: initial 1/exp(t); 0 = LOSS_DEFAULT_TEMPERATURE */
    int group_size;        /* 0: the whole batch; g > 0 (dividing N): the loss within groups */
    float init_logit_scale; /* siglip: initial exp(t); 0 = LOSS_SIGLIP_INIT_SCALE */
    float init_bias;        /* siglip: initial b (loss_default_config: LOSS_SIGLIP_INIT_BIAS) */
} LossConfig;

/* Symmetric, learned temperature, lambda 1, dense, the default initial scalars (CLIP's temperature,
 * SigLIP's scale and bias). */
LossConfig loss_default_config(int kind);

/* The registry's names, for specs, help and error messages:
 *   loss_count()            number of losses;
 *   loss_registry_name(i)   the name of loss i, NULL if i is outside [0, loss_count());
 *   loss_find(name)         the index of the loss called name, or -1 (also for NULL);
 *   loss_list_names(b, n)   "infonce, siglip, ..." into b [n] (truncated to fit, NUL-terminated). */
int loss_count(void);
const char *loss_registry_name(int i);
int loss_find(const char *name);
void loss_list_names(char *buf, size_t size);

/* Scalars: scalars[0] = t (log logit scale), scalars[1] = b (siglip bias). infonce and dcl use 1,
 * siglip 2, align_uniform 0 (its lambda is a fixed hyper-parameter in the config). */
#define LOSS_MAX_SCALARS 2
/* The range of infonce's and dcl's logit scale s = exp(t): loss_clamp_scalars clamps the parameter
 * t to [ln MIN, ln MAX] = [0, ln 100] (CLIP; open_clip after every optimiser step); siglip's is not
 * clamped, as in its paper. */
#define LOSS_LOGIT_SCALE_MIN 1.0f
#define LOSS_LOGIT_SCALE_MAX 100.0f
/* CLIP's initial temperature of the softmax losses (t = ln(1 / 0.07)). */
#define LOSS_DEFAULT_TEMPERATURE 0.07f
/* SigLIP's initial scale and bias (Zhai et al. 2023: t' = ln 10, b = -10). */
#define LOSS_SIGLIP_INIT_SCALE 10.0f
#define LOSS_SIGLIP_INIT_BIAS -10.0f
/* loss.tile = 0 (automatic): dense while the N x N logits stay small (N <= LOSS_AUTO_DENSE_MAX,
 * 16 MiB), blocks of LOSS_AUTO_TILE beyond: infonce's 256 x 256 blocks stay in a core's L2
 * (1024: 15% more CPU time at N = 8192; siglip and align_uniform's column blocks are as fast). */
#define LOSS_AUTO_DENSE_MAX 2048
#define LOSS_AUTO_TILE 256
static inline int loss_auto_tile(int N) { return N > LOSS_AUTO_DENSE_MAX ? LOSS_AUTO_TILE : 0; }

/* 0 for an unknown kind. */
int loss_n_scalars(int kind);
/* Keeps the scalars in their domain; call after every optimiser step (a no-op for the losses
 * without a constraint). */
void loss_clamp_scalars(const LossConfig *cfg, float *scalars);
/* The loss's initial scalars: infonce/dcl t = ln(1/init_temperature); siglip t = ln init_logit_scale,
 * b = init_bias (by default the paper's ln 10 and -10). */
void loss_init_scalars(const LossConfig *cfg, float *scalars);
/* What to log of the scalars, e.g. ("logit_scale", exp(t)): writes at most
 * cap (name, value) pairs into names, values [cap] and returns how many. */
int loss_log_scalars(const LossConfig *cfg, const float *scalars, const char **names,
                     float *values, int cap);

/* Checks a configuration against a batch shape (user input: spec values). Returns 0, or -1 with
 * one line in msg (msg may be NULL), e.g. "loss dcl needs a batch of at least 2 (got 1): ...". */
int loss_validate(const LossConfig *cfg, int N, int D, char *msg, size_t msg_size);

/* Floats of workspace needed for N, D under cfg; the caller allocates it once and reuses it.
 * 0 when cfg, N, D do not pass loss_validate (e.g. N = -1): a size never wraps. */
size_t loss_workspace_floats(const LossConfig *cfg, int N, int D);

/* Value and gradients. cfg must pass loss_validate (checked; a failure aborts).
 * dimg, dtxt [N, D] and dscalars [loss_n_scalars] accumulate (+=); any may be NULL, and when all
 * three are NULL only the value is computed. img, txt [N, D]; scalars [loss_n_scalars].
 * workspace [loss_workspace_floats(cfg, N, D)], or NULL to have it allocated for this call only
 * (a convenience for one-off calls; a training step passes its own). */
float loss_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                            const float *img, const float *txt, const float *scalars, int N, int D,
                            float *workspace);

/* Whether kind has a local-loss split (infonce, dcl, siglip); 0 for an unknown kind. A grouped
 * loss has none. */
int loss_has_local(int kind);
/* Floats of workspace for the share [r0, r1): O((r1 - r0) * tile + N); 0 when cfg, N, D fail
 * loss_validate or the share cannot be computed (range outside [0, N], no local split, grouped). */
size_t loss_local_workspace_floats(const LossConfig *cfg, int N, int D, int r0, int r1);
/* Share of rows [r0, r1) (0 <= r0 <= r1 <= N; the kind must have a local split unless the range
 * is the whole batch) of the loss over the gathered img, txt [N, D]: returns that share of the
 * value, accumulates that share of dimg, dtxt [N, D] (all rows may receive gradient) and
 * dscalars. workspace [loss_local_workspace_floats] or NULL, as for loss_forward_backward. */
float loss_local_forward_backward(const LossConfig *cfg, float *dimg, float *dtxt,
                                  float *dscalars, const float *img, const float *txt,
                                  const float *scalars, int N, int D, int r0, int r1,
                                  float *workspace);

/* One entry point per loss, same arguments as loss_forward_backward; the kind is implied by the
 * name (cfg->kind is not read), so one config can be reused across losses, e.g. from ctypes. */
float loss_infonce(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                   const float *img, const float *txt, const float *scalars, int N, int D,
                   float *workspace);
float loss_siglip(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                  const float *img, const float *txt, const float *scalars, int N, int D,
                  float *workspace);
float loss_dcl(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars, const float *img,
               const float *txt, const float *scalars, int N, int D, float *workspace);
float loss_align_uniform(const LossConfig *cfg, float *dimg, float *dtxt, float *dscalars,
                         const float *img, const float *txt, const float *scalars, int N, int D,
                         float *workspace);

#endif
