/* runtable.c — runs grouped into configurations once (see runtable.h). */
#include "log/runtable.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int runtable_completed(const RunInfo *r) { return strcmp(r->status, "completed") == 0; }

double runtable_left_chance(const RunInfo *r) {
    for (int i = 0; i < r->n_summary; i++)
        if (strcmp(r->summary_names[i], "left_chance") == 0) return r->summary_values[i];
    return NAN; /* not recorded (older run files): not judged */
}

void runtable_build(RunTable *t, const RunInfo *runs, int n) {
    memset(t, 0, sizeof *t);
    t->runs = runs;
    t->n_runs = n;
    t->config_of = mallocCheck((n ? (size_t)n : 1) * sizeof *t->config_of);
    int cap = 0;
    for (int i = 0; i < n; i++) {
        char key[512];
        report_config_key(runs[i].swept, key, sizeof key);
        int c = runtable_find(t, key);
        if (c < 0) {
            if (t->n_configs == cap) {
                cap = cap ? 2 * cap : 16;
                t->configs = reallocCheck(t->configs, (size_t)cap * sizeof *t->configs);
            }
            c = t->n_configs++;
            RunConfig *rc = &t->configs[c];
            memset(rc, 0, sizeof *rc);
            snprintf(rc->key, sizeof rc->key, "%s", key);
            rc->runs = mallocCheck((size_t)n * sizeof *rc->runs);
        }
        RunConfig *rc = &t->configs[c];
        rc->runs[rc->n_runs++] = i;
        t->config_of[i] = c;
    }
    for (int c = 0; c < t->n_configs; c++) {
        RunConfig *rc = &t->configs[c];
        int chance = 0;
        for (int k = 0; k < rc->n_runs; k++) {
            const RunInfo *r = &runs[rc->runs[k]];
            if (!runtable_completed(r)) continue;
            rc->n_completed++;
            chance += runtable_left_chance(r) == 0;
        }
        rc->at_chance = rc->n_completed > 0 && chance == rc->n_completed;
    }
}

void runtable_free(RunTable *t) {
    for (int c = 0; c < t->n_configs; c++) free(t->configs[c].runs);
    free(t->configs);
    free(t->config_of);
    memset(t, 0, sizeof *t);
}

int runtable_find(const RunTable *t, const char *key) {
    for (int c = 0; c < t->n_configs; c++)
        if (strcmp(t->configs[c].key, key) == 0) return c;
    return -1;
}

const RunInfo *runtable_run(const RunTable *t, int c, long seed) {
    const RunConfig *rc = &t->configs[c];
    for (int k = 0; k < rc->n_runs; k++) {
        const RunInfo *r = &t->runs[rc->runs[k]];
        if (r->seed == seed && runtable_completed(r)) return r;
    }
    return NULL;
}

double runtable_value_described(const RunTable *t, int c, long seed, const char *metric, long *n, double *chance) {
    *n = 0;
    *chance = NAN;
    const RunInfo *r = runtable_run(t, c, seed);
    for (int i = 0; r && i < r->n_summary; i++)
        if (strcmp(r->summary_names[i], metric) == 0) {
            if (r->summary_counts) *n = r->summary_counts[i];
            if (r->summary_chance) *chance = r->summary_chance[i];
            return r->summary_values[i];
        }
    return NAN;
}

double runtable_value(const RunTable *t, int c, long seed, const char *metric) {
    long n;
    double chance;
    return runtable_value_described(t, c, seed, metric, &n, &chance);
}
