/* commands.c — the cliplab command-line interface: dispatches the first word to its subcommand
 * (core/cli/<name>_cli.c) and prints the overall help. The programs are two thin mains around
 * cli_main: core/cli/main.c (build/cliplab, one process) and core/dist/main_mpi.c
 * (build/cliplab-mpi, one rank of an MPI world). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/comm.h"
#include "common/runtime.h"

typedef struct {
    const char *name;
    const char *usage;
    int (*run)(int argc, char **argv);
} Command;

/* To add a subcommand: implement `int xxx_main(int argc, char **argv)` in core/cli/xxx_cli.c with
 * cli_parse, declare it in cli/cli.h and add one row here. */
static const Command COMMANDS[] = {
    {"run", "run SPEC.yaml [key=value ...] [--out DIR] [--id ID] [--resume] [--force]   train and evaluate one experiment", run_main},
    {"sweep", "sweep ABLATION.yaml [--profile smoke|quick|long|full] [--dry-run] [--resume] [--only ID] [--force] [--out DIR] [--jobs N]",
     sweep_main},
    {"report", "report results/<ablation> [--metrics a,b]   table of runs and the ablation's answer", report_main},
    {"export", "export results/<ablation> --out DIR        TSV files for gnuplot", export_main},
    {"data", "data preview|stats [--dataset shapes|fashion-mnist] ...   look at a dataset", data_main},
    {"help-spec", "help-spec [SECTION]                       every spec key: type, default, range, help", help_spec_main},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void print_help(FILE *f) {
    fprintf(f, "cliplab %s — CLIP-style image-text training experiments on CPU\n\nusage:\n", CLIPLAB_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  cliplab %s\n", COMMANDS[i].usage);
    fprintf(f, "\nEvery subcommand takes --help. See README.md and docs/DESIGN.md.\n");
}

static const Comm *world;

const Comm *cli_world(void) { return world ? world : comm_serial(); }

static int main_argc;
static char **main_argv;

void cli_print_resume_command(FILE *f) {
    int has_resume = 0;
    if (cli_world()->size > 1) fprintf(f, "mpirun -np %d ", cli_world()->size); /* restarts keep the rank count */
    for (int i = 0; i < main_argc; i++) {
        if (i > 1 && !strcmp(main_argv[i], "--force")) continue; /* it would redo finished runs */
        has_resume |= i > 1 && !strcmp(main_argv[i], "--resume");
        const char *w = main_argv[i];
        fputs(i ? " " : "", f);
        if (*w && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._,=+-/:@%") == strlen(w)) {
            fputs(w, f);
            continue;
        }
        fputc('\'', f);
        for (; *w; w++) *w == '\'' ? fputs("'\\''", f) : fputc(*w, f);
        fputc('\'', f);
    }
    if (!has_resume) fputs(" --resume", f);
}

int cli_main(int argc, char **argv, const Comm *w) {
    world = w;
    main_argc = argc;
    main_argv = argv;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return argc < 2 ? 1 : 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], COMMANDS[i].name)) continue;
        cliplab_runtime_init();
        return COMMANDS[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "cliplab: unknown command '%s' (try 'cliplab --help')\n", argv[1]);
    return 1;
}
