/* text_tower.c — the text tower registry and the vtable dispatch (see text_tower.h).
 * Deliberately left out: kinds registered at run time (the table is static and complete). */
#include "towers/text_tower.h"

/* The registry, the only list of text tower kinds (the spec, help-spec and error messages read
 * it). To add a kind: write towers/text_<kind>.c defining `const TextTowerOps text_tower_<kind>_ops`
 * and add one line X(<kind>) here. */
#define TEXT_TOWER_REGISTRY(X) \
    X(cbow)                    \
    X(transformer)             \
    X(ngram)                   \
    /* end of the list: one X(<kind>) line above per kind */

#define TEXT_TOWER_DECLARE(kind) extern const TextTowerOps text_tower_##kind##_ops;
TEXT_TOWER_REGISTRY(TEXT_TOWER_DECLARE)
#define TEXT_TOWER_ENTRY(kind) &text_tower_##kind##_ops,
static const TextTowerOps *const TEXT_TOWERS[] = {TEXT_TOWER_REGISTRY(TEXT_TOWER_ENTRY)};
#define N_TEXT_TOWERS ((int)(sizeof TEXT_TOWERS / sizeof TEXT_TOWERS[0]))

const char *text_tower_kind_name(int i) { return i >= 0 && i < N_TEXT_TOWERS ? TEXT_TOWERS[i]->name : NULL; }

const TextTowerOps *text_tower_lookup(const char *kind, Err *err) {
    int i = names_find(text_tower_kind_name, kind);
    if (i < 0) return err_unknown_name(err, "text tower kind", kind, text_tower_kind_name), NULL;
    return TEXT_TOWERS[i];
}

int text_tower_check_sizes(const TextTowerConfig *cfg, TextTowerDims dims, Err *err) {
    if (dims.vocab < 1) return err_set(err, "text tower: vocab must be >= 1, got %d", dims.vocab);
    if (dims.context < 1) return err_set(err, "text tower: context must be >= 1, got %d", dims.context);
    if (cfg->width < 1) return err_set(err, "text tower: width must be >= 1, got %d", cfg->width);
    return 0;
}

TextTower *text_tower_create(const TextTowerConfig *cfg, TextTowerDims dims, int max_batch, Tensors *params,
                             Tensors *acts, Err *err) {
    const TextTowerOps *ops = text_tower_lookup(cfg->kind, err);
    if (!ops) return NULL;
    return ops->create(cfg, dims, max_batch, params, acts, err);
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
