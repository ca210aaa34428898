/* main.c — build/cliplab: the command line in one process (no MPI: see core/dist/main_mpi.c). */
#include "cli/cli.h"
#include "common/comm.h"

int main(int argc, char **argv) { return cli_main(argc, argv, comm_serial()); }
