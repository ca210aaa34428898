/* fuzz_ablation.c — libFuzzer target: ablation files (sweep_load) and the dry run.
 *
 * Input: the ablation file ablations/fuzz.yaml, optionally followed by "\n%%base%%\n" and the text
 * of experiments/b.yaml (`base: ../experiments/b.yaml`); the real experiments sit next to it.
 * Loaded with every profile (sweep.c's list, reached by including sweep.c: it is static there).
 * Oracles: sanitizers; nothing printed; an error is one line naming a file of the scratch folder;
 * for an accepted sweep: runs = product of the axis lengths x seeds, run ids non-empty, unique and
 * made of [A-Za-z0-9._,=+-] without a leading '.', each run's `swept` entries re-applied as
 * overrides change nothing (they reproduce the run), every run's config round-trips
 * (fuzz_config.h), and the dry run prints.
 */
#include "spec/sweep.c"

#include "fuzz_config.h"

#define ROUND_TRIP_RUNS 16 /* round-trip this many runs per sweep (each costs a YAML parse) */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init(true);
    fuzz_mkdir("ablations");
    return 0;
}

static int cmp_id(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_ids(const Sweep *s) {
    const char **ids = malloc(sizeof *ids * (size_t)s->n_runs);
    for (int r = 0; r < s->n_runs; r++) {
        const char *id = s->runs[r].id;
        if (!id[0] || id[0] == '.') fuzz_fail("run %d has id '%s'", r, id);
        for (const char *p = id; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._,=+-", *p)))
                fuzz_fail("run id '%s' has a character outside [A-Za-z0-9._,=+-]", id);
        ids[r] = id;
    }
    qsort(ids, (size_t)s->n_runs, sizeof *ids, cmp_id);
    for (int r = 1; r < s->n_runs; r++)
        if (!strcmp(ids[r - 1], ids[r])) fuzz_fail("two runs share the id '%s' (one would overwrite the other)", ids[r]);
    free(ids);
}

/* swept = "k1=v1; k2=v2; seed=N" with the axis keys in order: cut at "; <next key>=". */
static void check_swept(const Sweep *s, const SweepRun *run) {
    const char *p = run->swept;
    for (int i = 0; i <= s->n_axes; i++) {
        char key[SWEEP_KEY_MAX + 2];
        snprintf(key, sizeof key, "%s=", i < s->n_axes ? s->axes[i] : "seed");
        if (strncmp(p, key, strlen(key))) fuzz_fail("run %s: swept '%s' lacks '%s' in order", run->id, run->swept, key);
        const char *next = p + strlen(key);
        if (i + 1 <= s->n_axes) {
            char sep[SWEEP_KEY_MAX + 4];
            snprintf(sep, sizeof sep, "; %s=", i + 1 < s->n_axes ? s->axes[i + 1] : "seed");
            next = strstr(next, sep);
            if (!next) fuzz_fail("run %s: swept '%s' lacks '%s'", run->id, run->swept, sep);
        } else {
            next += strlen(next);
        }
        char assignment[SWEEP_SWEPT_MAX];
        snprintf(assignment, sizeof assignment, "%.*s", (int)(next - p), p);
        Config c = run->config;
        Err err;
        if (spec_override(&c, assignment, &err))
            fuzz_fail("run %s: swept entry '%s' is not a valid override: %s", run->id, assignment, err.msg);
        if (!config_equal(&c, &run->config))
            fuzz_fail("run %s: swept entry '%s' does not reproduce the run's config", run->id, assignment);
        p = next + (*next ? 2 : 0);
    }
}

static void check_sweep(const Sweep *s) {
    long expect = s->seeds;
    for (int i = 0; i < s->n_axes; i++) expect *= s->axis_len[i];
    if (s->n_runs < 1 || s->n_runs != expect) fuzz_fail("%d runs, expected %ld", s->n_runs, expect);
    check_ids(s);
    for (int r = 0; r < s->n_runs; r++) {
        check_swept(s, &s->runs[r]);
        if (s->runs[r].seed != s->runs[r].config.seed) fuzz_fail("run %s: seed differs from its config's", s->runs[r].id);
        if (r < ROUND_TRIP_RUNS) fuzz_check_round_trip(&s->runs[r].config, s->runs[r].id);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_with_base(data, size, "ablations/fuzz.yaml");

    const char *const prefixes[] = {fuzz_dir, NULL};
    for (int p = 0; profile_name(p); p++) {
        Sweep s;
        Err err;
        fuzz_capture_begin();
        int rc = sweep_load(path, profile_name(p), &s, &err);
        fuzz_check_silent(fuzz_capture_end(), "sweep_load");
        if (rc) {
            fuzz_check_error(&err, prefixes);
            if (s.runs || s.n_runs) fuzz_fail("a failed sweep_load left runs behind");
            continue;
        }
        check_sweep(&s);
        if (p == PROFILE_DEFAULT) {
            FILE *devnull = fopen("/dev/null", "w");
            sweep_print_dry_run(devnull, &s);
            fclose(devnull);
        }
        sweep_free(&s);
    }
    return 0;
}
