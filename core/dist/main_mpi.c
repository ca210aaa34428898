/* main_mpi.c — build/cliplab-mpi: the same command line as build/cliplab, run as one rank of an MPI
 * world (`mpirun -np W build/cliplab-mpi run|sweep ...`). A second binary rather than MPI inside
 * build/cliplab, because Open MPI's singleton start costs ~0.5 s of every plain command (measured
 * on this machine), and because MPI_Init as root outside mpirun needs the OMPI_ALLOW_RUN_AS_ROOT
 * variables, which plain users should never meet. */
#include "cli/cli.h"
#include "dist/dist.h"

int main(int argc, char **argv) {
    const Comm *world = dist_init(&argc, &argv);
    int status = cli_main(argc, argv, world);
    dist_finalize();
    return status;
}
