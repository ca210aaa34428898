/* model.c — building a Model from a Config (see model.h). */
#include "model/model.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/check.h"
#include "common/rng.h"

void data_config_from(DataConfig *dc, const Config *cfg) {
    data_config_default(dc);
    snprintf(dc->dataset, sizeof dc->dataset, "%s", cfg->data.dataset);
    dc->image_size = cfg->data.image_size;
    dc->caption_noise = (float)cfg->data.caption_noise;
    dc->max_objects = cfg->data.max_objects;
    dc->n_holdout = cfg->data.n_holdout;
    for (int i = 0; i < cfg->data.n_holdout; i++) {
        /* "colour shape" -> the two names */
        sscanf(cfg->data.holdout[i], "%15s %15s", dc->holdout[i][0], dc->holdout[i][1]);
    }
    snprintf(dc->fmnist_dir, sizeof dc->fmnist_dir, "%s", cfg->data.fmnist_dir);
    dc->context = cfg->data.context;
    dc->seed = (uint64_t)cfg->seed;
    dc->eval_images = cfg->data.eval_images;
    dc->validation = cfg->eval.validation;
}

/* With eval.probe, the probe set must be large enough for the probe's split (a tiny dataset copy
 * would otherwise reach a CHECK at the final evaluation). */
static int check_probe_size(const Dataset *ds, const Config *cfg, Err *err) {
    int n = dataset_probe_size(ds, cfg->eval.probe_images);
    if (!cfg->eval.probe || n >= DATA_PROBE_MIN_IMAGES) return 0;
    return err_set(err, "eval.probe: dataset %s gives a probe set of %d images (its test split), fewer than the %d its "
                        "train/validation/test split needs; set eval.probe=false or use a larger dataset",
                   cfg->data.dataset, n, DATA_PROBE_MIN_IMAGES);
}

/* eval.task and eval.probe_task must name tasks of the dataset (a typo would otherwise silently
 * evaluate something else). */
static int check_task_names(Dataset *ds, const Config *cfg, Err *err) {
    int n = 0;
    const ZeroShotTask *tasks = dataset_zeroshot_tasks(ds, &n);
    const char *keys[2] = {"eval.task", "eval.probe_task"}, *names[2] = {cfg->eval.task, cfg->eval.probe_task};
    for (int k = 0; k < 2; k++) {
        int found = 0;
        char valid[256] = "";
        for (int i = 0; i < n; i++) {
            found |= !strcmp(tasks[i].name, names[k]);
            snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "", tasks[i].name);
        }
        if (!found) return err_set(err, "unknown %s '%s' for dataset %s; valid: %s", keys[k], names[k], cfg->data.dataset, valid);
    }
    return 0;
}

/* Floats per buffer of the parameter and activation tables the objective declares at batch B
 * (nothing allocated but the objective's own small parts, freed again). The loss section's group
 * size is left out: it does not change the tables, and it need not divide B. */
static int declared_floats(const ObjectiveOps *ops, const Config *cfg, const Dataset *ds, int B, size_t *params,
                           size_t *acts, Err *err) {
    LossSection loss = cfg->loss;
    loss.group_size = 0;
    ObjectiveSections sections = {&cfg->objective, &cfg->model, &loss};
    Tensors p, a;
    tensors_init(&p, 4);
    tensors_init(&a, 2);
    Objective *o = ops->create(sections, ds, B, &p, &a, err);
    if (o) o->ops->free(o);
    *params = p.total;
    *acts = a.total;
    tensors_free(&p);
    tensors_free(&a);
    return o ? 0 : -1;
}

#define GIB (1024.0 * 1024.0 * 1024.0)
/* The batches the activations are measured at (any loss's smallest batch fits in them). */
#define MEMORY_PROBE_BATCH 8

/* The memory a run of cfg needs, estimated before anything large is allocated: parameters x4
 * buffers (value, grad, Adam m, v), activations x2 (value, grad), the batch and the objective's
 * workspace. Activations grow linearly with the batch, so they are measured by declaring the
 * model at batches 8 and 16 and extrapolated. A lower bound: the towers' im2col scratch and the
 * evaluation sets are not counted. Refused (-1 + err) when above the machine's physical memory. */
static int check_memory(const ObjectiveOps *ops, const Config *cfg, const Dataset *ds, Err *err) {
    size_t p2, a2, p4, a4;
    if (declared_floats(ops, cfg, ds, MEMORY_PROBE_BATCH, &p2, &a2, err) ||
        declared_floats(ops, cfg, ds, 2 * MEMORY_PROBE_BATCH, &p4, &a4, err))
        return -1;
    ObjectiveSections sections = {&cfg->objective, &cfg->model, &cfg->loss};
    const size_t workspace_bytes = ops->workspace_bytes ? ops->workspace_bytes(sections, cfg->train.batch_size) : 0;
    const double B = cfg->train.batch_size;
    const double acts = (double)a2 + (B - MEMORY_PROBE_BATCH) * ((double)a4 - (double)a2) / MEMORY_PROBE_BATCH;
    const DataConfig *dc = dataset_config(ds);
    const double batch = B * ((double)dc->image_size * dc->image_size * 3 * sizeof(float) + dc->context * sizeof(int) +
                              sizeof(int) + (double)dataset_vocab_size(ds) * sizeof(float));
    const double need = 4.0 * (double)p2 * sizeof(float) + 2.0 * acts * sizeof(float) + batch + (double)workspace_bytes;
    const double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if (have > 0 && need > have)
        return err_set(err,
                       "train.batch_size %d needs an estimated %.1f GiB (parameters x4 %.2f, activations x2 %.1f, "
                       "batch %.1f, workspace %.1f GiB), more than this machine's %.1f GiB of memory",
                       cfg->train.batch_size, need / GIB, 4.0 * (double)p2 * sizeof(float) / GIB,
                       2.0 * acts * sizeof(float) / GIB, batch / GIB, (double)workspace_bytes / GIB, have / GIB);
    return 0;
}

/* Opens the dataset and checks what can be checked before the model is built: task names, the
 * probe set's size, the objective's own constraints at the batch (validate) and the memory estimate. 0 or -1 + err
 * (with m->ds NULL). */
static int model_open_checked(Model *m, const Config *cfg, const ObjectiveOps **ops, Err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    DataConfig dc;
    data_config_from(&dc, &m->cfg);
    m->ds = dataset_open(&dc, err);
    if (!m->ds) return -1;
    ObjectiveSections sections = {&m->cfg.objective, &m->cfg.model, &m->cfg.loss};
    if (check_task_names(m->ds, &m->cfg, err) || check_probe_size(m->ds, &m->cfg, err) ||
        !(*ops = objective_lookup(m->cfg.objective.kind, err)) ||
        ((*ops)->validate && (*ops)->validate(sections, m->cfg.train.batch_size, err)) ||
        check_memory(*ops, &m->cfg, m->ds, err)) {
        dataset_free(m->ds);
        m->ds = NULL;
        return -1;
    }
    return 0;
}

int model_check(const Config *cfg, Err *err) {
    Model m;
    const ObjectiveOps *ops;
    if (model_open_checked(&m, cfg, &ops, err)) return -1;
    dataset_free(m.ds);
    return 0;
}

int model_build(Model *m, const Config *cfg, Err *err) {
    const ObjectiveOps *ops;
    if (model_open_checked(m, cfg, &ops, err)) return -1;
    m->max_batch = m->cfg.train.batch_size;
    tensors_init(&m->params, 4);
    tensors_init(&m->acts, 2);
    ObjectiveSections sections = {&m->cfg.objective, &m->cfg.model, &m->cfg.loss};
    m->obj = ops->create(sections, m->ds, m->max_batch, &m->params, &m->acts, err);
    if (!m->obj) goto fail;
    tensors_alloc(&m->params);
    tensors_alloc(&m->acts);
    Rng rng;
    rng_init(&rng, rng_hash((uint64_t)m->cfg.seed, MODEL_INIT_SEED_SALT));
    m->obj->ops->init(m->obj, &rng);
    batch_alloc(&m->batch, m->ds, m->max_batch);
    return 0;
fail:
    tensors_free(&m->params);
    tensors_free(&m->acts);
    dataset_free(m->ds);
    m->ds = NULL;
    return -1;
}

void model_free(Model *m) {
    if (m->obj) m->obj->ops->free(m->obj);
    batch_free(&m->batch);
    tensors_free(&m->params);
    tensors_free(&m->acts);
    dataset_free(m->ds);
    memset(m, 0, sizeof *m);
}
