/* optim.c — AdamW with decoupled weight decay, the learning-rate schedules, global-norm clipping.
 * One loop over the tensor table (the decay exemption is per tensor); inside a tensor the update
 * is element-parallel above OPS_PAR_MIN elements and every element is independent, so results do
 * not depend on the thread count. The gradient norm is a per-tensor double sum, added in table
 * order, for the same reason.
 * Deliberately left out: AMSGrad, fused multi-tensor kernels, loss scaling. */
#include "optim/optim.h"

#include <math.h>
#include <string.h>

#include "common/check.h"
#include "ops/ops.h"

void adamw_step(Tensors *params, const AdamWConfig *cfg, float lr, long step) {
    CHECK(params->n_bufs == TBUF_MAX, "AdamW needs value, grad, m and v buffers (have %d)", params->n_bufs);
    CHECK(step >= 1, "AdamW step %ld is not 1-based", step);
    const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    const float bc1 = (float)(1.0 - pow(b1, (double)step)), bc2 = (float)(1.0 - pow(b2, (double)step));
    for (int t = 0; t < params->n; t++) {
        const TensorInfo *ti = &params->info[t];
        const float lr_t = lr * ti->lr_scale;
        const float decay = (ti->flags & TENSOR_NO_DECAY) ? 0.0f : lr_t * cfg->weight_decay;
        float *restrict p = params->buf[TBUF_VALUE] + ti->offset;
        const float *restrict g = params->buf[TBUF_GRAD] + ti->offset;
        float *restrict m = params->buf[TBUF_ADAM_M] + ti->offset;
        float *restrict v = params->buf[TBUF_ADAM_V] + ti->offset;
        const size_t n = ti->count;
#pragma omp parallel for if (n > OPS_PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            float mhat = m[i] / bc1, vhat = v[i] / bc2;
            p[i] -= lr_t * mhat / (sqrtf(vhat) + eps) + decay * p[i];
        }
    }
}

float schedule_lr_floor(double images, double warmup_images, double total_images, float peak_lr, float min_frac) {
    if (images < warmup_images) return (float)(peak_lr * images / warmup_images);
    const double floor = (double)min_frac * peak_lr;
    if (images >= total_images) return (float)floor;
    const double progress = (images - warmup_images) / (total_images - warmup_images);
    return (float)(floor + (peak_lr - floor) * 0.5 * (1.0 + cos(M_PI * progress)));
}

float schedule_lr(double images, double warmup_images, double total_images, float peak_lr) {
    return schedule_lr_floor(images, warmup_images, total_images, peak_lr, 0.0f);
}

int grad_clip_applies(float norm, float max_norm) { return max_norm > 0.0f && isfinite(norm) && norm > max_norm; }

static const char *const SCHEDULE_NAMES[] = {[SCHEDULE_COSINE] = "cosine", [SCHEDULE_CONSTANT] = "constant",
                                             [SCHEDULE_WSD] = "wsd"};

const char *schedule_kind_name(int i) {
    return i >= 0 && i < (int)(sizeof SCHEDULE_NAMES / sizeof SCHEDULE_NAMES[0]) ? SCHEDULE_NAMES[i] : NULL;
}

int schedule_kind_find(const char *name) {
    for (int i = 0; schedule_kind_name(i); i++)
        if (!strcmp(schedule_kind_name(i), name)) return i;
    return -1;
}

double schedule_budget_free_until(const Schedule *s) {
    switch (s->kind) {
    case SCHEDULE_CONSTANT: return s->total_images;
    case SCHEDULE_WSD: return fmax(s->warmup_images, (1.0 - s->decay_fraction) * s->total_images);
    default: return s->warmup_images;
    }
}

float schedule_at(const Schedule *s, double images) {
    if (s->kind == SCHEDULE_COSINE) return schedule_lr(images, s->warmup_images, s->total_images, s->peak_lr);
    if (images < s->warmup_images) return (float)(s->peak_lr * images / s->warmup_images);
    const double decay_start = schedule_budget_free_until(s);
    if (s->kind == SCHEDULE_CONSTANT || images <= decay_start) return s->peak_lr;
    if (images >= s->total_images) return 0.0f;
    return (float)(s->peak_lr * (s->total_images - images) / (s->total_images - decay_start));
}

float grad_clip_global_norm(Tensors *params, float max_norm) {
    CHECK(params->n_bufs > TBUF_GRAD, "no gradient buffer");
    double total = 0.0;
    for (int t = 0; t < params->n; t++) {
        const float *restrict g = params->buf[TBUF_GRAD] + params->info[t].offset;
        const size_t n = params->info[t].count;
        double ss = 0.0;
        for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
        total += ss;
    }
    const double norm = sqrt(total);
    if (grad_clip_applies((float)norm, max_norm)) {
        const float s = (float)(max_norm / norm);
        for (int t = 0; t < params->n; t++) {
            float *restrict g = params->buf[TBUF_GRAD] + params->info[t].offset;
            for (size_t i = 0; i < params->info[t].count; i++) g[i] *= s;
        }
    }
    return (float)norm;
}
