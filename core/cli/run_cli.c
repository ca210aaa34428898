/* run_cli.c — `cliplab run SPEC.yaml [key=value ...] [--out DIR] [--id RUN_ID] [--resume]
 * [--force]`: one experiment, its HDF5 result under DIR (default results/run) and a final table of
 * metrics on stdout. The default id follows the overrides (cli_default_run_id), so variants
 * compared by hand get their own files. --resume continues an interrupted run from its checkpoint
 * (and leaves a finished one alone); --force replaces a finished run. SIGINT or SIGTERM stops the
 * run after its current step with a checkpoint, prints the command that resumes it and exits 130
 * or 143.
 * Under mpirun (build/cliplab-mpi) the ranks train the one run data-parallel (trainer.h); rank 0
 * prints the table, and a rank's own failure is printed with its rank. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/check.h"
#include "common/comm.h"
#include "spec/spec.h"
#include "train/trainer.h"

static const char RUN_USAGE[] =
    "usage: cliplab run SPEC.yaml [key=value ...] [--out DIR] [--id RUN_ID] [--resume] [--force]\n"
    "Trains and evaluates one experiment; keys are those of `cliplab help-spec`.\n"
    "  --out DIR     results folder (default results/run)\n"
    "  --id RUN_ID   the run's file name in DIR (default: the spec's name, the overrides and the seed)\n"
    "  --resume      continue an interrupted run from its checkpoint (train.checkpoint_every_images)\n"
    "  --force       replace a finished run of the same id\n";

static void print_metrics_table(FILE *f, const RunOutcome *o) {
    fprintf(f, "\n%-32s %12s\n", "metric", "value");
    for (int i = 0; i < o->final.n; i++) fprintf(f, "%-32s %12.4f\n", o->final.names[i], o->final.values[i]);
    fprintf(f, "%-32s %12.0f\n%-32s %12.1f\n", "images", o->images, "images_per_s", o->images_per_s);
    if (!isnan(o->images_to_target)) fprintf(f, "%-32s %12.0f\n", "images_to_target", o->images_to_target);
    fprintf(f, "%-32s %12s\n", "status", o->status);
}

/* Loads the spec and applies the overrides in order; 0 or -1 after printing the one line (once:
 * every rank of an MPI world reads the same spec). */
static int load_config(const char *path, const char *const *overrides, int n, Config *cfg) {
    Err err;
    int rc = spec_load(path, cfg, &err);
    for (int i = 0; !rc && i < n; i++) rc = spec_override(cfg, overrides[i], &err);
    if (rc && cli_world()->rank == 0) fprintf(stderr, "%s\n", err.msg);
    if (!rc && spec_check(cfg, &err)) {
        rc = -1;
        if (cli_world()->rank == 0) fprintf(stderr, "%s: %s\n", path, err.msg);
    }
    return rc ? -1 : 0;
}

/* Trains the run unless its finished file is there; returns the exit status. */
static int run_experiment(const Config *cfg, const char *out_dir, const char *run_id, int resume, int force) {
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
    const Comm *world = cli_world();
    RunOptions opt = {.results_dir = out_dir, .run_id = run_id, .swept = "", .resume = resume, .comm = world,
                      .overwrite = force, .stop = cli_stop_flag()};
    RunOutcome o;
    Err err;
    if (train_run(cfg, &opt, &o, &err)) {
        if (world->size > 1) fprintf(stderr, "cliplab run: rank %d: %s\n", world->rank, err.msg);
        else fprintf(stderr, "cliplab run: %s\n", err.msg);
        return 1;
    }
    if (!strcmp(o.status, "interrupted")) {
        if (world->rank == 0) {
            fprintf(stderr, "cliplab run: interrupted by %s at %.0f images; resume with: ",
                    o.stop_signal == SIGTERM ? "SIGTERM" : "SIGINT", o.images);
            cli_print_resume_command(stderr);
            fputc('\n', stderr);
        }
        return 128 + o.stop_signal;
    }
    if (world->rank != 0) return strcmp(o.status, "completed") ? 3 : 0;
    print_metrics_table(stdout, &o);
    printf("results: %s/%s.h5\n", out_dir, run_id);
    return strcmp(o.status, "completed") ? 3 : 0;
}

int run_main(int argc, char **argv) {
    const char *out_dir = "results/run", *run_id = NULL;
    int force = 0, resume = 0;
    const CliOpt opts[] = {
        CLI_OPT_STRING("--out", &out_dir),
        CLI_OPT_STRING("--id", &run_id),
        CLI_OPT_FLAG("--force", &force),
        CLI_OPT_FLAG("--resume", &resume),
    };
    const CliSpec spec = {"run", RUN_USAGE, opts, (int)(sizeof opts / sizeof opts[0]), 1, -1};
    cli_catch_stop_signals();
    const char **pos = mallocCheck((size_t)argc * sizeof *pos);
    int n_pos, rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != CLI_CONTINUE) goto done;
    rc = 1;
    if (run_id && !cli_run_id_valid(run_id)) {
        /* the id is not echoed: it may hold a newline or a terminal escape */
        fprintf(stderr, "cliplab run: --id must be 1..%d characters from A-Z a-z 0-9 . _ , = + - and not start with "
                        "'.'\n", RUN_ID_MAX);
        goto done;
    }
    Config cfg;
    if (load_config(pos[0], pos + 1, n_pos - 1, &cfg)) goto done;
    char id[RUN_ID_MAX + 1];
    if (!run_id) {
        cli_default_run_id(id, sizeof id, cfg.name, cfg.seed, pos + 1, n_pos - 1);
        run_id = id;
    }
    rc = run_experiment(&cfg, out_dir, run_id, resume, force);
done:
    free(pos);
    return rc;
}
