/* cliplab.h — the one public header of cliplab.
 *
 * Build a model from a spec, train, evaluate, log; and the contrastive losses on plain float
 * arrays (row-major, so other languages can call them through libcliplab.so).
 * Deliberately left out: anything a caller of the library does not need (kernels and internals
 * live in the module headers under core/).
 */
#ifndef CLIPLAB_H
#define CLIPLAB_H

#define CLIPLAB_VERSION "0.1.0"

/* Process-wide set-up: checks that the linked OpenBLAS is its OpenMP build (Debian's default is
 * the pthread build, which oversubscribes cores under OpenMP) and exits with a message if not. */
void cliplab_runtime_init(void);

/* The contrastive losses on plain row-major float arrays: value and gradients, dense and tiled. */
#include "losses/losses.h"

/* Subcommands of the cliplab CLI (argv[0] is the subcommand's name); each returns the exit status. */
int run_main(int argc, char **argv);
int sweep_main(int argc, char **argv);
int report_main(int argc, char **argv);
int export_main(int argc, char **argv);
int data_main(int argc, char **argv);
int spec_help_main(int argc, char **argv);

#endif
