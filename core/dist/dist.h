/* dist.h — start and stop of the MPI world for build/cliplab-mpi (core/dist/, built only into that
 * binary; see core/common/comm.h for the operations the training code calls).
 * Deliberately left out: anything a rank needs beyond the world communicator. */
#ifndef CLIPLAB_DIST_H
#define CLIPLAB_DIST_H

#include "common/comm.h"

/* MPI_Init and the world's Comm (valid until dist_finalize). */
const Comm *dist_init(int *argc, char ***argv);
/* MPI_Finalize. Every rank must reach it: code that can fail on one rank alone agrees on the
 * failure first (Comm.any), so no rank is left waiting in a collective. */
void dist_finalize(void);

#endif
