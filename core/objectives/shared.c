/* shared.c — the image/text tower builders, loss configuration and row helpers shared by the
 * objectives (see shared.h). */
#include "objectives/shared.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

ImageTower *objective_image_tower(const ImageSection *image, const Dataset *ds, int max_batch, Tensors *params,
                                  Tensors *acts, Err *err) {
    ImageTowerConfig ic = {0};
    ic.n_stages = image->n_widths;
    memcpy(ic.widths, image->widths, sizeof ic.widths);
    ic.convs_per_stage = image->convs_per_stage;
    ic.residual = image->residual;
    ic.norm = names_find(image_tower_norm_name, image->norm);
    ic.image_size = dataset_config(ds)->image_size;
    ic.in_channels = 3;
    return image_tower_create(&ic, image->tap, max_batch, params, acts, err);
}

TextTower *objective_text_tower(const TextTowerConfig *text, const Dataset *ds, int max_batch, Tensors *params,
                                Tensors *acts, Err *err) {
    TextTowerDims dims = {dataset_vocab_size(ds), dataset_config(ds)->context};
    return text_tower_create(text, dims, max_batch, params, acts, err);
}

int objective_loss_config(const LossSection *loss, int max_batch, LossConfig *out, Err *err) {
    int kind = loss_find(loss->kind);
    if (kind < 0) return err_unknown_name(err, "loss.kind", loss->kind, loss_registry_name);
    *out = loss_default_config(kind);
    out->one_sided = loss->one_sided;
    out->learn_temperature =
        names_find(objective_temperature_name, loss->temperature) != OBJECTIVE_TEMPERATURE_FIXED;
    out->lambda = (float)loss->lambda;
    out->init_temperature = (float)loss->init_temperature;
    out->init_logit_scale = (float)loss->init_logit_scale;
    out->init_bias = (float)loss->init_bias;
    out->group_size = loss->group_size;
    out->tile = loss->tile > 0 ? loss->tile : loss_auto_tile(max_batch);
    return 0;
}

int objective_validate_loss(ObjectiveSections cfg, int batch, LossConfig *out, Err *err) {
    if (objective_loss_config(cfg.loss, batch, out, err)) return -1;
    char msg[256];
    if (loss_validate(out, batch, cfg.model->embed_dim, msg, sizeof msg))
        return err_set(err, "loss.kind=%s, train.batch_size=%d: %s", cfg.loss->kind, batch, msg);
    return 0;
}

const char *objective_temperature_name(int i) {
    static const char *const TEMPERATURES[] = {[OBJECTIVE_TEMPERATURE_LEARNED] = "learned",
                                               [OBJECTIVE_TEMPERATURE_FIXED] = "fixed"};
    return i >= 0 && i < (int)(sizeof TEMPERATURES / sizeof TEMPERATURES[0]) ? TEMPERATURES[i] : NULL;
}

void objective_data_dims(const Dataset *ds, int *T, int *image_floats) {
    const DataConfig *dc = dataset_config(ds); /* the sizes batch_alloc gives every Batch */
    *T = dc->context;
    *image_floats = dc->image_size * dc->image_size * 3;
}

void objective_normalize_rows(float *x, int n, int D) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)x[(size_t)i * D + d] * x[(size_t)i * D + d];
        if (s <= 0) continue;
        float inv = (float)(1.0 / sqrt(s));
        for (int d = 0; d < D; d++) x[(size_t)i * D + d] *= inv;
    }
}

void objective_dot_scores(float *scores, const float *a, const float *b, int n, int nc, int D) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nc, D, 1.0f, a, D, b, D, 0.0f, scores, nc);
}

void objective_log_softmax_rows(float *x, int n, int V) {
    for (int i = 0; i < n; i++) {
        float *row = x + (size_t)i * V;
        float m = row[0];
        for (int v = 1; v < V; v++) m = row[v] > m ? row[v] : m;
        double s = 0;
        for (int v = 0; v < V; v++) s += exp((double)row[v] - m);
        float lse = m + (float)log(s);
        for (int v = 0; v < V; v++) row[v] -= lse;
    }
}

ImageFeatures objective_tap_features(const ImageTower *img) {
    ImageFeatures f;
    memset(&f, 0, sizeof f);
    f.n_taps = image_tower_n_taps(img);
    for (int k = 0; k < f.n_taps; k++) {
        f.tap_names[k] = image_tower_tap_name(img, k);
        f.taps[k] = image_tower_tap_features(img, k);
        f.tap_dims[k] = image_tower_tap_dim(img, k);
    }
    f.pre_head = f.taps[f.n_taps - 1];
    f.pre_dim = f.tap_dims[f.n_taps - 1];
    return f;
}

ImageFeatures objective_tower_features(ImageTower *img, const float *images, int n) {
    image_tower_forward(img, images, n);
    return objective_tap_features(img);
}
