/* comm.h — the collective operations of data-parallel training, behind one vtable.
 *
 * A Comm is a group of `size` ranks that each run the same program on their own share of a batch.
 * Training needs four operations, all on float arrays of the same length on every rank:
 *   allgather       out [size * n] = every rank's in [n], in rank order (embeddings of the batch);
 *   reduce_scatter  out [n] = sum over ranks of their in [rank * n .. rank * n + n) (embedding
 *                   gradients back to the rank that owns the rows);
 *   allreduce       buf [n] = sum over ranks of buf [n], bitwise the same result on every rank
 *                   (parameter gradients, in one call over the whole GRAD arena);
 *   allreduce_f64   the same for a few doubles (loss values, token counts).
 * plus a barrier, `any` (1 on every rank if any rank passes non-zero: a failure all must know
 * of) and `ticket`, a shared counter for handing out work (a sweep's runs) in the order asked.
 *
 * comm_serial() is the group of one process: gather and scatter copy, reductions are no-ops, so a
 * run through it is bitwise the single-process code. The MPI implementation (core/dist/mpi/) is
 * linked only into build/cliplab-mpi, so nothing below the CLI includes mpi.h and plain
 * build/cliplab never starts MPI.
 *
 * Deliberately left out: point-to-point messages, non-blocking overlap of communication and
 * backward, groups smaller than the world.
 */
#ifndef CLIPLAB_COMM_H
#define CLIPLAB_COMM_H

#include <stddef.h>

typedef struct Comm Comm;

typedef struct {
    /* out [size * n], in [n] */
    void (*allgather)(const Comm *c, float *out, const float *in, size_t n);
    /* out [n], in [size * n] */
    void (*reduce_scatter)(const Comm *c, float *out, const float *in, size_t n);
    /* buf [n] */
    void (*allreduce)(const Comm *c, float *buf, size_t n);
    /* buf [n] */
    void (*allreduce_f64)(const Comm *c, double *buf, size_t n);
    void (*barrier)(const Comm *c);
    /* 1 on every rank if any rank passed non-zero */
    int (*any)(const Comm *c, int flag);
    /* bytes a rank has sent through the collectives so far (for the bench's per-step volume) */
    size_t (*bytes_sent)(const Comm *c);
    /* 0, 1, 2, ... over all ranks' calls, each value once (not collective: ranks call it whenever
     * they are free); ticket_reset (collective) starts it again at 0 */
    long (*ticket)(const Comm *c);
    void (*ticket_reset)(const Comm *c);
} CommOps;

struct Comm {
    const CommOps *ops;
    int rank, size;
    int local_size; /* ranks on this machine (they share its cores) */
    void *impl; /* the implementation's state (MPI: the communicator) */
};

/* The one-process group (rank 0 of 1). */
const Comm *comm_serial(void);

/* Rows [*r0, *r1) of a global batch of B rows that `rank` of `size` owns (B % size == 0). */
void comm_rows(int B, int rank, int size, int *r0, int *r1);
/* Rows [*r0, *r1) of n that `rank` of `size` computes when they go in whole chunks of `chunk`
 * rows, as one process computes them (chunk k: rows [k * chunk, k * chunk + chunk)). Returns the
 * rows per rank, the same on every rank (an allgather's block): the last ranks' share runs past n
 * (clipped) or is empty. */
int comm_chunk_rows(int n, int chunk, int rank, int size, int *r0, int *r1);

#endif
