/* model.h — a built model: its dataset, objective and the one parameter / activation allocation.
 * Deliberately left out: more than one objective per model. */
#ifndef CLIPLAB_MODEL_H
#define CLIPLAB_MODEL_H

#include "common/tensors.h"
#include "data/data.h"
#include "objectives/objective.h"
#include "spec/config.h"

typedef struct {
    Config cfg;     /* a copy: objectives keep pointers into it */
    Dataset *ds;
    Objective *obj;
    Tensors params; /* value, grad, Adam m, Adam v */
    Tensors acts;   /* value, grad */
    int max_batch;
    Batch batch;
} Model;

/* Salt of the initialisation's random stream: rng_hash(seed, salt), so the weights and the data
 * stream (data/, seeded by the same spec seed) never draw the same numbers. */
#define MODEL_INIT_SEED_SALT 0x1417

/* Opens the dataset, creates the objective, allocates everything and initialises the weights from
 * cfg->seed. Returns 0, or -1 with a one-line message (bad tap, unknown kind, bad dataset, a loss
 * constraint at the batch size, an estimated memory above the machine's) before anything large is
 * allocated. */
int model_build(Model *m, const Config *cfg, Err *err);
void model_free(Model *m);
/* What model_build checks before it allocates (dataset, task names, the objective's constraints
 * at train.batch_size, the memory estimate against the machine's), without building: 0, or -1 +
 * one line. A sweep runs it on every run before starting any. */
int model_check(const Config *cfg, Err *err);
void data_config_from(DataConfig *dc, const Config *cfg);

#endif
