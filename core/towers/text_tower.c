/* text_tower.c — the text tower registry and the vtable dispatch (see text_tower.h).
 * Deliberately left out: kinds registered at run time (the table is static and complete). */
#include "towers/text_tower.h"

#include <string.h>

#include "towers/build.h"

/* To add a kind: implement its TextTowerOps in text_<kind>.c, declare it in text_tower.h, append it here. */
static const TextTowerOps *const TEXT_TOWERS[] = {&text_tower_transformer_ops, &text_tower_cbow_ops};
#define N_TEXT_TOWERS ((int)(sizeof TEXT_TOWERS / sizeof TEXT_TOWERS[0]))

const TextTowerOps *text_tower_lookup(const char *kind, Err *err) {
    char valid[ERR_MSG_MAX / 2] = "";
    for (int i = 0; i < N_TEXT_TOWERS; i++) {
        if (!strcmp(kind, TEXT_TOWERS[i]->name)) return TEXT_TOWERS[i];
        if (i) strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
        strncat(valid, TEXT_TOWERS[i]->name, sizeof valid - strlen(valid) - 1);
    }
    build_err_unknown(err, "text tower kind", kind, valid);
    return NULL;
}

int text_tower_check_sizes(const TextTowerConfig *cfg, Err *err) {
    if (cfg->vocab < 1) return err_set(err, "text tower: vocab must be >= 1, got %d", cfg->vocab);
    if (cfg->context < 1) return err_set(err, "text tower: context must be >= 1, got %d", cfg->context);
    if (cfg->width < 1) return err_set(err, "text tower: width must be >= 1, got %d", cfg->width);
    return 0;
}

TextTower *text_tower_create(const TextTowerConfig *cfg, const char *tap, int max_batch, Tensors *params,
                             Tensors *acts, Err *err) {
    const TextTowerOps *ops = text_tower_lookup(cfg->kind, err);
    if (!ops) return NULL;
    return ops->create(cfg, tap, max_batch, params, acts, err);
}

void text_tower_init(TextTower *t, Rng *rng) { t->ops->init(t, rng); }
int text_tower_dim(const TextTower *t) { return t->dim; }

const float *text_tower_forward(TextTower *t, const int *tokens, const int *lengths, int B) {
    return t->ops->forward(t, tokens, lengths, B);
}

void text_tower_backward(TextTower *t, const float *dfeat, int B) { t->ops->backward(t, dfeat, B); }

void text_tower_free(TextTower *t) {
    if (t) t->ops->free(t);
}
