/* registry.c — the table of objectives. To add one: write core/objectives/<name>.c defining a
 * `const ObjectiveOps objective_<name>_ops`, declare it in objective.h and add one row to
 * OBJECTIVES. */
#include <stdio.h>
#include <string.h>

#include "objective.h"

static const ObjectiveOps *const OBJECTIVES[] = {
    &objective_contrastive_ops,
    &objective_bow_ops,
    &objective_caption_ops,
};
#define N_OBJECTIVES (int)(sizeof OBJECTIVES / sizeof OBJECTIVES[0])

const ObjectiveOps *objective_lookup(const char *name, Err *err) {
    char valid[256] = "";
    for (int i = 0; i < N_OBJECTIVES; i++) {
        if (!strcmp(OBJECTIVES[i]->name, name)) return OBJECTIVES[i];
        snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "", OBJECTIVES[i]->name);
    }
    err_set(err, "unknown objective '%s'; valid: %s", name, valid);
    return NULL;
}
