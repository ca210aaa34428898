/* bench_dist.c — one run data-parallel over MPI ranks: step time at W = 1 and W = 2, the share of
 * the step spent in communication, and the bytes a rank sends per step, for every objective.
 *
 * Started plainly (as `make bench` does) it first times W = 1 itself (comm_serial, B rows, both
 * cores), then re-executes itself under `mpirun -np 2 --oversubscribe --bind-to none` (Open MPI's
 * run-as-root variables set for that child only) for W = 2 (B/2 rows per rank, one core each) and
 * hands it the W = 1 times (BENCH_DIST_W1_MS): timed inside the job, W = 1 would share the
 * machine with the idle rank, which spins in its next collective. Each objective's spec model at
 * the global batch B, exactly train_share_step, the trainer's step. The
 * rows print the best step of a few (other processes only ever add time) and, at W = 2, the time
 * inside the collectives, measured by a Comm that times and forwards every call, and the bytes a
 * rank sent (Comm.bytes_sent). Both rows use the whole machine, so their ratio is the speed-up
 * (or loss) of spreading one run over two processes on one machine, not over a network: the
 * collectives here go through shared memory. docs/DESIGN.md (Scale-out) turns the bytes into a
 * cost model for a network and larger W.
 * Then one evaluation at W = 2 (intermediate: eval.task only; final: also the probe and retrieval),
 * shared by the ranks (each extracting the features of its share of the images, evaluate_model)
 * against rank 0 alone while rank 1 waits in a barrier, as it waits in its next collective during
 * training; one thread per rank, best of EVAL_REPEATS after a warm-up that builds the evaluation
 * sets; for the first case (contrastive cbow) and caption, whose zero-shot scoring stays rank 0's.
 * Deliberately left out: W > 2 (the machine has 2 cores).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check.h"
#include "common/comm.h"
#include "common/timer.h"
#include "dist/dist.h"
#include "spec/spec.h"
#include "train/trainer.h"

#define N_RANKS "2"
#define MPIRUN_TIMEOUT_S "900"
#define GLOBAL_BATCH 256
#define WARMUP_STEPS 2
#define TIMED_STEPS 6
#define EVAL_REPEATS 2

void openblas_set_num_threads(int n);

typedef struct {
    const char *label, *spec, *override; /* the experiment and one override ("" for none) */
} Case;

static const Case CASES[] = {
    {"contrastive cbow", "experiments/contrastive.yaml", ""},
    {"contrastive transformer", "experiments/contrastive-transformer.yaml", ""},
    {"bow", "experiments/bow.yaml", ""},
    {"caption", "experiments/caption.yaml", ""},
};

/* A Comm that forwards every call to `inner` and adds the seconds spent in it. */
typedef struct {
    Comm base;
    const Comm *inner;
    double seconds;
} TimedComm;

static TimedComm *timed(const Comm *c) { return (TimedComm *)c->impl; }

#define TIMED_CALL(c, call)                                                                    \
    do {                                                                                       \
        TimedComm *t_ = timed(c);                                                              \
        double t0_ = time_now();                                                               \
        call;                                                                                  \
        t_->seconds += time_now() - t0_;                                                       \
    } while (0)

static void t_allgather(const Comm *c, float *out, const float *in, size_t n) {
    TIMED_CALL(c, timed(c)->inner->ops->allgather(timed(c)->inner, out, in, n));
}
static void t_reduce_scatter(const Comm *c, float *out, const float *in, size_t n) {
    TIMED_CALL(c, timed(c)->inner->ops->reduce_scatter(timed(c)->inner, out, in, n));
}
static void t_allreduce(const Comm *c, float *buf, size_t n) {
    TIMED_CALL(c, timed(c)->inner->ops->allreduce(timed(c)->inner, buf, n));
}
static void t_allreduce_f64(const Comm *c, double *buf, size_t n) {
    TIMED_CALL(c, timed(c)->inner->ops->allreduce_f64(timed(c)->inner, buf, n));
}
static void t_barrier(const Comm *c) { timed(c)->inner->ops->barrier(timed(c)->inner); }
static int t_any(const Comm *c, int flag) { return timed(c)->inner->ops->any(timed(c)->inner, flag); }
static size_t t_bytes_sent(const Comm *c) { return timed(c)->inner->ops->bytes_sent(timed(c)->inner); }
static long t_ticket(const Comm *c) { return timed(c)->inner->ops->ticket(timed(c)->inner); }
static void t_ticket_reset(const Comm *c) { timed(c)->inner->ops->ticket_reset(timed(c)->inner); }

static const CommOps TIMED_OPS = {
    .allgather = t_allgather,
    .reduce_scatter = t_reduce_scatter,
    .allreduce = t_allreduce,
    .allreduce_f64 = t_allreduce_f64,
    .barrier = t_barrier,
    .any = t_any,
    .bytes_sent = t_bytes_sent,
    .ticket = t_ticket,
    .ticket_reset = t_ticket_reset,
};

typedef struct {
    double step_s, comm_s; /* best step, and the collectives' time in that step */
    double bytes;          /* sent by this rank per step */
} Timing;

/* The case's spec at the global batch; 0 or -1 after the message. */
static int load_case(const Case *cs, int threads, Config *cfg) {
    Err err;
    char batch[64];
    snprintf(batch, sizeof batch, "train.batch_size=%d", GLOBAL_BATCH);
    if (spec_load(cs->spec, cfg, &err) || spec_override(cfg, batch, &err) ||
        (cs->override[0] && spec_override(cfg, cs->override, &err))) {
        fprintf(stderr, "bench_dist: %s\n", err.msg);
        return -1;
    }
    cfg->train.threads = threads;
    return 0;
}

/* Builds the case's model over `comm`, takes WARMUP_STEPS, then times TIMED_STEPS. */
static int time_steps(const Case *cs, const Comm *comm, int threads, Timing *out) {
    Config cfg;
    Err err;
    if (load_case(cs, threads, &cfg)) return -1;
    TimedComm tc = {.base = {.ops = &TIMED_OPS, .rank = comm->rank, .size = comm->size, .local_size = comm->local_size},
                    .inner = comm};
    tc.base.impl = &tc;
    TrainShare s;
    if (train_share_build(&s, &cfg, &tc.base, &err)) {
        fprintf(stderr, "bench_dist: %s: %s\n", cs->label, err.msg);
        train_share_free(&s);
        return -1;
    }
    float loss, gnorm, lr;
    for (int k = 0; k < WARMUP_STEPS; k++) train_share_step(&s, &loss, &gnorm, &lr);
    out->step_s = INFINITY;
    size_t bytes0 = tc.base.ops->bytes_sent(&tc.base);
    for (int k = 0; k < TIMED_STEPS; k++) {
        tc.seconds = 0;
        comm->ops->barrier(comm); /* start together: a step waits for the slower rank anyway */
        double t0 = time_now();
        train_share_step(&s, &loss, &gnorm, &lr);
        double dt = time_now() - t0;
        if (dt < out->step_s) out->step_s = dt, out->comm_s = tc.seconds;
    }
    out->bytes = (double)(tc.base.ops->bytes_sent(&tc.base) - bytes0) / TIMED_STEPS;
    train_share_free(&s);
    return 0;
}

static void set_threads(int threads) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

#define N_CASES (sizeof CASES / sizeof CASES[0])

/* W = 2 of case i on the world's ranks, printed with its W = 1 time one_ms (NaN: not measured). */
static void bench_case(const Case *cs, const Comm *world, double one_ms) {
    Timing two = {0};
    set_threads(1);
    if (time_steps(cs, world, 1, &two) || world->rank != 0) return;
    printf("%-24s %6d %9.1f %9.1f %7.2fx %9.2f %6.1f%% %10.0f\n", cs->label, GLOBAL_BATCH, one_ms,
           two.step_s * 1e3, one_ms / (two.step_s * 1e3), two.comm_s * 1e3, 100 * two.comm_s / two.step_s, two.bytes);
}

/* The parts of a run's final evaluation (the trainer's): the intermediate ones compute none. */
static int final_parts(const Model *m) {
    return (m->cfg.eval.probe ? EVAL_PROBE : 0) | (m->cfg.eval.all_tasks ? EVAL_ALL_TASKS : 0) | EVAL_RETRIEVAL;
}

/* Rank 0's seconds of the best of EVAL_REPEATS evaluations over `comm` (rank 0 alone when comm
 * is comm_serial(): the other ranks wait in a barrier). */
static double time_evaluation(Model *m, int final, const Comm *comm, const Comm *world) {
    double best = INFINITY;
    for (int k = 0; k < EVAL_REPEATS; k++) {
        Metrics mt;
        world->ops->barrier(world);
        double t0 = time_now();
        if (comm == world || world->rank == 0) evaluate_model(m, final ? final_parts(m) : 0, comm, &mt);
        best = fmin(best, time_now() - t0);
        world->ops->barrier(world);
    }
    return best;
}

/* The evaluation row of a case at W = 2: intermediate and final, shared and rank 0 alone. */
static void bench_eval_case(const Case *cs, const Comm *world) {
    Config cfg;
    Err err;
    TrainShare s;
    set_threads(1);
    if (load_case(cs, 1, &cfg) || train_share_build(&s, &cfg, world, &err)) {
        if (world->rank == 0) fprintf(stderr, "bench_dist: %s: evaluation not measured\n", cs->label);
        return;
    }
    Metrics warm;
    evaluate_model(&s.m, final_parts(&s.m), world, &warm); /* builds and caches the evaluation sets */
    double t[2][2]; /* [final][shared, alone] */
    for (int final = 0; final < 2; final++) {
        t[final][0] = time_evaluation(&s.m, final, world, world);
        t[final][1] = time_evaluation(&s.m, final, comm_serial(), world);
    }
    train_share_free(&s);
    if (world->rank == 0)
        printf("%-24s %10.2f %10.2f %7.2fx %10.2f %10.2f %7.2fx\n", cs->label, t[0][0], t[0][1], t[0][1] / t[0][0],
               t[1][0], t[1][1], t[1][1] / t[1][0]);
}

/* W = 1 of every case in this process, on 2 threads, into "ms,ms,..." (NaN where it failed). */
static void time_one_process(char *out, size_t cap) {
    size_t len = 0;
    set_threads(2);
    for (size_t i = 0; i < N_CASES; i++) {
        Timing one = {0};
        double ms = time_steps(&CASES[i], comm_serial(), 2, &one) ? NAN : one.step_s * 1e3;
        len += (size_t)snprintf(out + len, cap - len, "%s%.3f", i ? "," : "", ms);
    }
}

/* Re-executes this binary under mpirun unless it is already one of its ranks. */
static int run_under_mpirun(char **argv) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        /* --bind-to none: Open MPI pins each of 2 ranks to one core by default, which would put the
         * W = 1 row's two threads on one core */
        char *args[] = {"mpirun", "-np", N_RANKS, "--oversubscribe", "--bind-to", "none", "--timeout",
                        MPIRUN_TIMEOUT_S, argv[0], NULL};
        execvp("mpirun", args);
        perror("bench_dist: cannot start mpirun");
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    if (!getenv("OMPI_COMM_WORLD_SIZE")) {
        char w1[256];
        time_one_process(w1, sizeof w1);
        setenv("BENCH_DIST_W1_MS", w1, 1);
        return run_under_mpirun(argv);
    }
    double one_ms[N_CASES];
    const char *w1 = getenv("BENCH_DIST_W1_MS");
    for (size_t i = 0; i < N_CASES; i++) {
        one_ms[i] = w1 && *w1 ? strtod(w1, NULL) : NAN;
        w1 = w1 ? strchr(w1, ',') : NULL;
        if (w1) w1++;
    }
    const Comm *world = dist_init(&argc, &argv);
    if (world->rank == 0) {
        printf("one run over MPI ranks on this machine: W=1 is one process on 2 threads, W=2 two processes of 1 "
               "thread, each B/2 rows; best of %d steps\n", TIMED_STEPS);
        printf("%-24s %6s %9s %9s %8s %9s %7s %10s\n", "objective", "B", "W=1 ms", "W=2 ms", "speedup", "comm ms",
               "comm%", "bytes/rank");
    }
    for (size_t i = 0; i < N_CASES; i++) bench_case(&CASES[i], world, one_ms[i]);
    if (world->rank == 0) {
        printf("\none evaluation at W=2 (1 thread per rank), seconds: shared by the ranks vs rank 0 alone; "
               "best of %d\n%-24s %10s %10s %8s %10s %10s %8s\n", EVAL_REPEATS, "objective", "mid shared",
               "mid alone", "gain", "end shared", "end alone", "gain");
    }
    for (size_t i = 0; i < N_CASES; i += N_CASES - 1) bench_eval_case(&CASES[i], world); /* the first and caption */
    dist_finalize();
    return 0;
}
