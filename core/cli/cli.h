/* cli.h — the cliplab command line: one entry point per subcommand and the one argument parser
 * they all use.
 *
 * Every subcommand accepts --help / -h (usage on stdout, exit 0), rejects an unknown option or a
 * missing value with one line and exit 1, and parses numbers strictly (the whole word, in range:
 * `--jobs 2x` is an error). Positional arguments are collected into a caller array of argc
 * entries, so there is no fixed limit on them (run's key=value overrides).
 * Deliberately left out: combined short options (-rf), `--opt=value` spelling, abbreviations.
 */
#ifndef CLIPLAB_CLI_H
#define CLIPLAB_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    CLI_FLAG,   /* no value; dest is int *, set to 1 */
    CLI_STRING, /* dest is const char ** (points into argv) */
    CLI_INT,    /* dest is long *, an integer in [min, max] */
    CLI_NUMBER, /* dest is double *, a finite number in [min, max] */
} CliKind;

typedef struct {
    const char *name; /* "--jobs" */
    CliKind kind;
    void *dest;
    double min, max; /* CLI_INT and CLI_NUMBER */
} CliOpt;

/* The table rows, one per option kind (dest as above). */
#define CLI_OPT_FLAG(name, dest) {(name), CLI_FLAG, (dest), 0, 0}
#define CLI_OPT_STRING(name, dest) {(name), CLI_STRING, (dest), 0, 0}
#define CLI_OPT_INT(name, dest, min, max) {(name), CLI_INT, (dest), (min), (max)}
#define CLI_OPT_NUMBER(name, dest, min, max) {(name), CLI_NUMBER, (dest), (min), (max)}

typedef struct {
    const char *command; /* "sweep": messages start with "cliplab sweep: " */
    const char *usage;   /* the full usage text, ending in a newline */
    const CliOpt *opts;
    int n_opts;
    int min_pos, max_pos; /* positional arguments; max_pos < 0: any number */
} CliSpec;

/* cli_parse's result when the subcommand should go on; any other value is its exit status. */
#define CLI_CONTINUE (-1)

/* Parses argv[1..argc-1] (argv[0] is the subcommand's name) into the options' destinations and
 * pos[0..*n_pos-1] (pos has room for argc entries). Prints the usage for --help (returns 0), the
 * usage on stderr when positional arguments are missing, or one line for any other error
 * (returns 1). */
int cli_parse(const CliSpec *spec, int argc, char **argv, const char **pos, int *n_pos);

/* Strict integer: all of s, in [min, max]. 0 or -1. */
int cli_parse_long(const char *s, long min, long max, long *out);

/* Run ids name files inside a results folder: non-empty, at most RUN_ID_MAX characters from
 * [A-Za-z0-9._,=+-], not starting with '.', so no id reaches outside the folder. */
#define RUN_ID_MAX 120 /* RunInfo (log/report.h) holds ids of up to 127 characters */
bool cli_run_id_valid(const char *id);

/* The default id of `cliplab run`, derived from the overrides as Hydra names its output folders:
 * name, then each override except seed in the order given, then seed, joined by '_'
 * ("contrastive_loss.kind=siglip_seed=1"). Characters outside the run-id set become '-'; an id
 * longer than RUN_ID_MAX keeps its head and ends in a hash of the whole, so it stays unique. */
void cli_default_run_id(char *out, size_t cap, const char *name, int seed, const char *const *overrides,
                        int n_overrides);

/* SIGINT and SIGTERM: a run finishes its current step, checkpoints and exits 128 + the signal
 * (130, 143). cli_catch_stop_signals installs the handler (sigaction; it only stores the signal
 * number, which the trainer reads between steps); cli_stop_flag is that flag, 0 until a signal. */
void cli_catch_stop_signals(void);
const volatile sig_atomic_t *cli_stop_flag(void);
/* Prints to f the command this process was started with, with --force dropped and --resume added
 * (once), each word shell-quoted when needed: what continues an interrupted run or sweep. Under
 * mpirun it starts with `mpirun -np W` (mpirun's own options are not known to the ranks). */
void cli_print_resume_command(FILE *f);

typedef struct Comm Comm;
/* The program: dispatches argv[1] to its subcommand, with `world` the group of processes this one
 * belongs to (comm_serial() for build/cliplab, MPI_COMM_WORLD's ranks for build/cliplab-mpi). */
int cli_main(int argc, char **argv, const Comm *world);
/* The world cli_main was given (the subcommands' way to it). */
const Comm *cli_world(void);

/* The subcommands; argv[0] is the subcommand's name. Each returns the process exit status. */
int run_main(int argc, char **argv);
int sweep_main(int argc, char **argv);
int report_main(int argc, char **argv);
int export_main(int argc, char **argv);
int data_main(int argc, char **argv);
int help_spec_main(int argc, char **argv);

#endif
