/* runtime.h — the library's version and the process-wide set-up done once at start-up.
 * Deliberately left out: configuration (threads are set per run from the spec). */
#ifndef CLIPLAB_RUNTIME_H
#define CLIPLAB_RUNTIME_H

#define CLIPLAB_VERSION "0.1.0"

/* Checks that the linked OpenBLAS is its OpenMP build (Debian's default is the pthread build,
 * which oversubscribes cores under OpenMP) and exits with a message if not. */
void cliplab_runtime_init(void);

#endif
