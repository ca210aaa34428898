/* comm_mpi.c — the Comm of MPI_COMM_WORLD (Open MPI), linked only into build/cliplab-mpi.
 *
 * allreduce is a reduce-scatter followed by an allgather (the ring all-reduce's two halves): each
 * element is summed on exactly one rank and then copied, so every rank holds bitwise the same sums
 * and the replicated optimiser steps never drift apart. MPI_Allreduce does not promise that.
 * Errors of MPI calls abort the job (MPI_ERRORS_ARE_FATAL, the default): a collective that fails
 * on one rank cannot be recovered by the others. Deliberately left out: non-blocking collectives.
 */
#include "dist/dist.h"

#include <mpi.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/check.h"

typedef struct {
    MPI_Comm comm;
    MPI_Win ticket_win; /* one long on rank 0: the next ticket */
    long *ticket_base;
    size_t bytes_sent;
    float *stage;     /* allreduce staging: [size * chunk] padded input, then [chunk] own sums */
    size_t stage_cap;
} MpiComm;

static MpiComm *mpi_of(const Comm *c) { return (MpiComm *)c->impl; }

/* MPI counts are ints: the arrays here are parameter arenas and embeddings, far below 2^31. */
static int count_of(size_t n) {
    CHECK(n <= (size_t)0x7fffffff, "collective of %zu elements exceeds MPI's int count", n);
    return (int)n;
}

static void mpi_allgather(const Comm *c, float *out, const float *in, size_t n) {
    MpiComm *m = mpi_of(c);
    MPI_Allgather(in, count_of(n), MPI_FLOAT, out, count_of(n), MPI_FLOAT, m->comm);
    m->bytes_sent += n * sizeof(float) * (size_t)(c->size - 1);
}

static void mpi_reduce_scatter(const Comm *c, float *out, const float *in, size_t n) {
    MpiComm *m = mpi_of(c);
    MPI_Reduce_scatter_block(in, out, count_of(n), MPI_FLOAT, MPI_SUM, m->comm);
    m->bytes_sent += n * sizeof(float) * (size_t)(c->size - 1);
}

static void mpi_allreduce(const Comm *c, float *buf, size_t n) {
    if (n == 0) return;
    MpiComm *m = mpi_of(c);
    size_t W = (size_t)c->size, chunk = (n + W - 1) / W, need = chunk * (W + 1);
    if (m->stage_cap < need) {
        free(m->stage);
        m->stage = mallocCheck(need * sizeof(float));
        m->stage_cap = need;
    }
    float *padded = m->stage, *own = m->stage + chunk * W;
    memcpy(padded, buf, n * sizeof(float));
    memset(padded + n, 0, (chunk * W - n) * sizeof(float));
    MPI_Reduce_scatter_block(padded, own, count_of(chunk), MPI_FLOAT, MPI_SUM, m->comm);
    MPI_Allgather(own, count_of(chunk), MPI_FLOAT, padded, count_of(chunk), MPI_FLOAT, m->comm);
    memcpy(buf, padded, n * sizeof(float));
    m->bytes_sent += 2 * chunk * sizeof(float) * (W - 1);
}

static void mpi_allreduce_f64(const Comm *c, double *buf, size_t n) {
    MpiComm *m = mpi_of(c);
    /* a handful of doubles: MPI_Allreduce of 2 ranks is a + b on both (commutative), and for the
     * logged values a last-bit difference between ranks is harmless: only rank 0 writes them */
    MPI_Allreduce(MPI_IN_PLACE, buf, count_of(n), MPI_DOUBLE, MPI_SUM, m->comm);
    m->bytes_sent += n * sizeof(double) * (size_t)(c->size - 1);
}

static void mpi_barrier(const Comm *c) { MPI_Barrier(mpi_of(c)->comm); }

static int mpi_any(const Comm *c, int flag) {
    int local = flag != 0, global = 0;
    MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_LOR, mpi_of(c)->comm);
    return global;
}

static size_t mpi_bytes_sent(const Comm *c) { return mpi_of(c)->bytes_sent; }

/* An atomic fetch-and-add on rank 0's counter (MPI one-sided, passive target): no rank has to
 * answer, so a rank busy training never delays another one asking for work. */
static long mpi_ticket(const Comm *c) {
    MpiComm *m = mpi_of(c);
    long one = 1, got = 0;
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, m->ticket_win);
    MPI_Fetch_and_op(&one, &got, MPI_LONG, 0, 0, MPI_SUM, m->ticket_win);
    MPI_Win_unlock(0, m->ticket_win);
    return got;
}

static void mpi_ticket_reset(const Comm *c) {
    MpiComm *m = mpi_of(c);
    MPI_Barrier(m->comm); /* every rank is done taking tickets */
    if (c->rank == 0) {
        long zero = 0;
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, m->ticket_win);
        MPI_Put(&zero, 1, MPI_LONG, 0, 0, 1, MPI_LONG, m->ticket_win);
        MPI_Win_unlock(0, m->ticket_win);
    }
    MPI_Barrier(m->comm);
}

static const CommOps mpi_ops = {
    .allgather = mpi_allgather,
    .reduce_scatter = mpi_reduce_scatter,
    .allreduce = mpi_allreduce,
    .allreduce_f64 = mpi_allreduce_f64,
    .barrier = mpi_barrier,
    .any = mpi_any,
    .bytes_sent = mpi_bytes_sent,
    .ticket = mpi_ticket,
    .ticket_reset = mpi_ticket_reset,
};

static MpiComm world_state;
static Comm world;

const Comm *dist_init(int *argc, char ***argv) {
    /* Open MPI puts each rank in a process group of its own, so a kill -9 of mpirun (or of its
     * daemon on another machine) would leave the ranks training on, still writing the run file that
     * a --resume then finds busy. A rank dies with the process that started it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) raise(SIGKILL); /* the parent was already gone */
    MPI_Init(argc, argv);
    world_state.comm = MPI_COMM_WORLD;
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &world.local_size);
    MPI_Comm_free(&node);
    MPI_Win_allocate(world.rank == 0 ? (MPI_Aint)sizeof(long) : 0, sizeof(long), MPI_INFO_NULL, MPI_COMM_WORLD,
                     &world_state.ticket_base, &world_state.ticket_win);
    if (world.rank == 0) *world_state.ticket_base = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    world.ops = &mpi_ops;
    world.impl = &world_state;
    return &world;
}

void dist_finalize(void) {
    MPI_Win_free(&world_state.ticket_win);
    free(world_state.stage);
    world_state.stage = NULL;
    MPI_Finalize();
}
