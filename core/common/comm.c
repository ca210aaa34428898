/* comm.c — the one-process Comm: gather and scatter copy, reductions leave their buffers as they
 * are. Deliberately left out: anything MPI (core/dist/mpi/). */
#include "common/comm.h"

#include <string.h>

#include "common/check.h"

static void serial_copy(const Comm *c, float *out, const float *in, size_t n) {
    (void)c;
    if (out != in) memmove(out, in, n * sizeof(float));
}

static void serial_allreduce(const Comm *c, float *buf, size_t n) { (void)c, (void)buf, (void)n; }
static void serial_allreduce_f64(const Comm *c, double *buf, size_t n) { (void)c, (void)buf, (void)n; }
static void serial_barrier(const Comm *c) { (void)c; }
static int serial_any(const Comm *c, int flag) { (void)c; return flag != 0; }
static size_t serial_bytes_sent(const Comm *c) { (void)c; return 0; }

/* One process: the counter is this process's own. */
static long serial_next_ticket;
static long serial_ticket(const Comm *c) { (void)c; return serial_next_ticket++; }
static void serial_ticket_reset(const Comm *c) { (void)c; serial_next_ticket = 0; }

static const CommOps serial_ops = {
    .allgather = serial_copy,
    .reduce_scatter = serial_copy,
    .allreduce = serial_allreduce,
    .allreduce_f64 = serial_allreduce_f64,
    .barrier = serial_barrier,
    .any = serial_any,
    .bytes_sent = serial_bytes_sent,
    .ticket = serial_ticket,
    .ticket_reset = serial_ticket_reset,
};

static const Comm serial_comm = {.ops = &serial_ops, .rank = 0, .size = 1, .local_size = 1, .impl = NULL};

const Comm *comm_serial(void) { return &serial_comm; }

void comm_rows(int B, int rank, int size, int *r0, int *r1) {
    CHECK(size > 0 && B % size == 0 && 0 <= rank && rank < size, "batch %d over %d ranks (rank %d)", B, size,
          rank);
    *r0 = rank * (B / size);
    *r1 = *r0 + B / size;
}

int comm_chunk_rows(int n, int chunk, int rank, int size, int *r0, int *r1) {
    CHECK(n >= 0 && chunk > 0 && size > 0 && 0 <= rank && rank < size, "%d rows in chunks of %d over %d ranks (rank %d)",
          n, chunk, size, rank);
    int chunks = (n + chunk - 1) / chunk, per = (chunks + size - 1) / size * chunk;
    *r0 = rank * per < n ? rank * per : n;
    *r1 = *r0 + per < n ? *r0 + per : n;
    return per;
}
