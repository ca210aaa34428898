/* run_cli.c — `cliplab run SPEC.yaml [key=value ...] [--out DIR] [--id RUN_ID] [--resume]
 * [--force]`: one experiment, its HDF5 result under DIR (default results/run) and a final table of
 * metrics on stdout. --resume continues an interrupted run from its checkpoint (and leaves a
 * finished one alone); --force replaces a finished run. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cliplab.h"
#include "spec/spec.h"
#include "train/trainer.h"

void print_metrics_table(FILE *f, const RunOutcome *o) {
    fprintf(f, "\n%-32s %12s\n", "metric", "value");
    for (int i = 0; i < o->final.n; i++) fprintf(f, "%-32s %12.4f\n", o->final.names[i], o->final.values[i]);
    fprintf(f, "%-32s %12.0f\n%-32s %12.1f\n", "images", o->images, "images_per_s", o->images_per_s);
    if (!isnan(o->images_to_target)) fprintf(f, "%-32s %12.0f\n", "images_to_target", o->images_to_target);
    fprintf(f, "%-32s %12s\n", "status", o->status);
}

int run_main(int argc, char **argv) {
    const char *spec_path = NULL, *out_dir = "results/run", *run_id = NULL;
    int force = 0, resume = 0;
    Config cfg;
    Err err;
    int n_over = 0;
    const char *overrides[128];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_dir = argv[++i];
        else if (!strcmp(argv[i], "--id") && i + 1 < argc) run_id = argv[++i];
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--resume")) resume = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cliplab run SPEC.yaml [key=value ...] [--out DIR] [--id RUN_ID] [--resume] [--force]\n"
                   "Trains and evaluates one experiment; keys are those of `cliplab help-spec`.\n"
                   "--resume continues an interrupted run from its checkpoint (train.checkpoint_every_images).\n");
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "cliplab run: unknown option '%s'\n", argv[i]);
            return 1;
        } else if (!spec_path) spec_path = argv[i];
        else if (n_over < 128) overrides[n_over++] = argv[i];
    }
    if (!spec_path) {
        fprintf(stderr, "usage: cliplab run SPEC.yaml [key=value ...] [--out DIR] [--id RUN_ID] [--resume] [--force]\n");
        return 1;
    }
    if (spec_load(spec_path, &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n_over; i++)
        if (spec_override(&cfg, overrides[i], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    char id[160];
    if (!run_id) {
        snprintf(id, sizeof id, "%s_seed=%d", cfg.name, cfg.seed);
        run_id = id;
    }
    char final_path[1300];
    snprintf(final_path, sizeof final_path, "%s/%s.h5", out_dir, run_id);
    if (!force && access(final_path, F_OK) == 0) {
        if (resume) {
            fprintf(stderr, "cliplab run: %s is finished; nothing to resume\n", final_path);
            return 0;
        }
        fprintf(stderr, "cliplab run: %s already exists; pass --force to overwrite it or --id to name this run\n",
                final_path);
        return 1;
    }
    RunOptions opt = {.results_dir = out_dir, .run_id = run_id, .swept = "", .resume = resume};
    RunOutcome o;
    if (train_run(&cfg, &opt, &o, &err)) {
        fprintf(stderr, "cliplab run: %s\n", err.msg);
        return 1;
    }
    print_metrics_table(stdout, &o);
    printf("results: %s/%s.h5\n", out_dir, run_id);
    return strcmp(o.status, "completed") ? 3 : 0;
}
