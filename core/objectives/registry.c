/* registry.c — the table of objectives, the only list of their names (the spec, help-spec and
 * error messages read it). To add one: write core/objectives/<name>.c defining a
 * `const ObjectiveOps objective_<name>_ops` and add one line X(<name>) to OBJECTIVE_REGISTRY.
 * Deliberately left out: objectives registered at run time (the table is static and complete). */
#include "objective.h"

#define OBJECTIVE_REGISTRY(X) \
    X(contrastive)            \
    X(bow)                    \
    X(caption)                \
    /* end of the list: one X(<kind>) line above per kind */

#define OBJECTIVE_DECLARE(name) extern const ObjectiveOps objective_##name##_ops;
OBJECTIVE_REGISTRY(OBJECTIVE_DECLARE)
#define OBJECTIVE_ENTRY(name) &objective_##name##_ops,
static const ObjectiveOps *const OBJECTIVES[] = {OBJECTIVE_REGISTRY(OBJECTIVE_ENTRY)};
#define N_OBJECTIVES (int)(sizeof OBJECTIVES / sizeof OBJECTIVES[0])

const char *objective_kind_name(int i) { return i >= 0 && i < N_OBJECTIVES ? OBJECTIVES[i]->name : NULL; }

const ObjectiveOps *objective_lookup(const char *name, Err *err) {
    int i = names_find(objective_kind_name, name);
    if (i < 0) return err_unknown_name(err, "objective", name, objective_kind_name), NULL;
    return OBJECTIVES[i];
}
