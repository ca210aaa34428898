/* model.c — building a Model from a Config (see model.h). */
#include "model/model.h"

#include <stdio.h>
#include <string.h>

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

int model_build(Model *m, const Config *cfg, Err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    DataConfig dc;
    data_config_from(&dc, &m->cfg);
    m->ds = dataset_open(&dc, err);
    if (!m->ds) return -1;
    if (check_task_names(m->ds, &m->cfg, err)) goto fail;
    const ObjectiveOps *ops = objective_lookup(m->cfg.objective.kind, err);
    if (!ops) goto fail;
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
