/* test_dist.c — data parallelism over MPI (core/dist/, core/common/comm.h), run on 2 ranks.
 *
 * Started plainly, as tests/run_tests.sh does, the binary re-executes itself under
 * `mpirun -np 2 --oversubscribe` with Open MPI's run-as-root variables set for that child only
 * (never globally) and a time limit, so a desynchronised collective fails the suite instead of
 * hanging it. Both ranks run every test in the same order, and each test asserts only after its
 * last collective, so a failing rank never leaves the other waiting in a collective it skipped.
 * Rank 0 prints cmocka's report; the others write theirs to /tmp/cliplab_test_dist.rank<r>.log,
 * and a failure on any rank fails mpirun's exit status.
 *
 * In the ranks: the collectives against their definitions, the replicated all-reduce bitwise
 * equal on both ranks, and W = 2 ranks x B/2 equal to one process x B (losses and all parameters
 * after k steps) for infonce, siglip and dcl, dense and tiled, and an evaluation shared by the ranks
 * bitwise equal to rank 0's alone (contrastive, caption). Before that, from the top process:
 * `mpirun ... cliplab-mpi run` killed (kill -9) or stopped (SIGTERM to mpirun) and resumed bitwise
 * equal to an uninterrupted 2-rank run, a sweep over ranks (straight, or stopped and resumed) equal
 * to a --jobs sweep, and plain build/cliplab without MPI.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/check.h"
#include "common/comm.h"
#include "dist/dist.h"
#include "log/report.h"
#include "spec/spec.h"
#include "train/trainer.h"

#define N_RANKS "2"
#define MPIRUN_TIMEOUT_S "600"

static const Comm *world;

/* Rank r's share of a collective input: distinct, exactly representable values. */
static float value_of(int rank, size_t i) { return (float)(rank * 1000 + (int)i) * 0.25f; }

static void test_allgather_and_reduce_scatter_follow_their_definitions(void **state) {
    (void)state;
    enum { N = 37 };
    int W = world->size, r = world->rank;
    float in[N], gathered[2 * N], scattered[N], rs_in[2 * N];
    for (size_t i = 0; i < N; i++) in[i] = value_of(r, i);
    world->ops->allgather(world, gathered, in, N);
    for (size_t i = 0; i < (size_t)W * N; i++) rs_in[i] = value_of(r, i);
    world->ops->reduce_scatter(world, scattered, rs_in, N);
    assert_int_equal(W, 2);
    for (int q = 0; q < W; q++)
        for (size_t i = 0; i < N; i++) assert_true(gathered[(size_t)q * N + i] == value_of(q, i));
    for (size_t i = 0; i < N; i++) {
        size_t g = (size_t)r * N + i; /* this rank's block of every rank's input */
        assert_true(scattered[i] == value_of(0, g) + value_of(1, g));
    }
}

/* The replicated optimiser steps need bitwise equal sums on every rank: odd lengths (padding)
 * and values whose sum depends on the order of additions. */
static void test_allreduce_sums_and_is_bitwise_equal_on_every_rank(void **state) {
    (void)state;
    enum { N = 1001 };
    int r = world->rank;
    float *buf = mallocCheck(N * sizeof(float)), *mine = mallocCheck(N * sizeof(float));
    float *both = mallocCheck(2 * N * sizeof(float));
    for (size_t i = 0; i < N; i++) buf[i] = mine[i] = (r ? 1e-3f : 1.0f) * sinf((float)i * 0.37f + (float)r);
    world->ops->allreduce(world, buf, N);
    world->ops->allgather(world, both, buf, N);
    double x[2] = {1.5 + r, 0.25};
    world->ops->allreduce_f64(world, x, 2);
    int any_none = world->ops->any(world, 0), any_one = world->ops->any(world, r == 1);
    for (size_t i = 0; i < N; i++) {
        float expect = sinf((float)i * 0.37f) + 1e-3f * sinf((float)i * 0.37f + 1.0f);
        assert_true(fabsf(buf[i] - expect) <= 1e-6f * (1.0f + fabsf(expect)));
        assert_memory_equal(&both[i], &both[N + i], sizeof(float)); /* rank 0's sum == rank 1's */
    }
    assert_true(x[0] == 4.0 && x[1] == 0.5);
    assert_int_equal(any_none, 0);
    assert_int_equal(any_one, 1);
    free(buf);
    free(mine);
    free(both);
}

/* Tickets hand out 0, 1, 2, ... once each over both ranks, and start again after a reset. */
static void test_tickets_are_handed_out_once_each(void **state) {
    (void)state;
    enum { PER_RANK = 50 };
    float mine[PER_RANK], all[2 * PER_RANK];
    for (int i = 0; i < PER_RANK; i++) mine[i] = (float)world->ops->ticket(world);
    world->ops->allgather(world, all, mine, PER_RANK);
    world->ops->ticket_reset(world);
    long after = world->ops->ticket(world);
    world->ops->ticket_reset(world);
    int seen[2 * PER_RANK] = {0};
    for (int i = 0; i < 2 * PER_RANK; i++) {
        int t = (int)all[i];
        assert_true(t >= 0 && t < 2 * PER_RANK);
        seen[t]++;
    }
    for (int t = 0; t < 2 * PER_RANK; t++) assert_int_equal(seen[t], 1);
    assert_true(after == 0 || after == 1);
    assert_int_equal(world->local_size, 2);
}

/* A tiny contrastive model with a global batch of 16: 8 rows per rank. */
static void tiny_config(Config *c, const char *loss, int tile) {
    config_defaults(c);
    Err err;
    const char *over[] = {"data.image_size=16", "data.context=10", "data.eval_images=16", "model.image.widths=4,6",
                          "model.image.tap=img.stage2", "model.text.kind=cbow", "model.text.width=8",
                          "model.embed_dim=5", "train.batch_size=16", "train.warmup_images=16", "train.threads=1"};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) assert_int_equal(spec_override(c, over[i], &err), 0);
    snprintf(c->loss.kind, sizeof c->loss.kind, "%s", loss);
    c->loss.tile = tile;
}

/* Why these tolerances: the two computations differ only in the order of fp32 additions (each
 * rank sums its own rows' gradient terms, the all-reduce adds the two partial sums; one process
 * sums all rows in one product). That perturbs a gradient by a few ulps of the sum of its terms'
 * magnitudes, ~1e-6 relative, and the loss the same. AdamW divides the moment by its root
 * (an update of lr * sign for a consistent gradient), so a parameter moves by lr * (relative
 * perturbation) per step: measured 3e-8..6e-8 after 3 steps at lr 2e-3 for every loss and tiling,
 * so PARAM_ATOL = 1e-6 leaves a margin of ~16x, while a real error (a missing rank's rows, a
 * double-counted loss share) moves parameters by ~lr = 2e-3 in the first step. */
#define STEPS 3
#define LOSS_RTOL 1e-5
#define PARAM_ATOL 1e-6

static void check_two_ranks_equal_one_process(const char *loss, int tile) {
    Config c;
    tiny_config(&c, loss, tile);
    TrainShare ranks, one;
    Err err;
    int rc_ranks = train_share_build(&ranks, &c, world, &err);
    int rc_one = world->rank == 0 ? train_share_build(&one, &c, comm_serial(), &err) : 0;
    float loss_ranks[STEPS], loss_one[STEPS], gnorm, lr;
    int finite = 1;
    for (int k = 0; k < STEPS && !rc_ranks && !rc_one; k++) {
        finite &= train_share_step(&ranks, &loss_ranks[k], &gnorm, &lr);
        if (world->rank == 0) finite &= train_share_step(&one, &loss_one[k], &gnorm, &lr);
    }
    /* every collective is behind us: assertions may now leave early */
    assert_int_equal(rc_ranks, 0);
    assert_int_equal(rc_one, 0);
    assert_true(finite);
    if (world->rank == 0) {
        assert_int_equal(ranks.m.params.total, one.m.params.total);
        for (int k = 0; k < STEPS; k++)
            assert_true(fabsf(loss_ranks[k] - loss_one[k]) <= LOSS_RTOL * fabsf(loss_one[k]));
        const float *a = ranks.m.params.buf[TBUF_VALUE], *b = one.m.params.buf[TBUF_VALUE];
        double worst = 0;
        for (size_t i = 0; i < one.m.params.total; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
        printf("%s tile %d: losses %.6f %.6f %.6f; largest parameter difference %.3g after %d steps\n", loss, tile,
               loss_ranks[0], loss_ranks[1], loss_ranks[2], worst, STEPS);
        assert_true(worst <= PARAM_ATOL);
        /* and the parameters did move: the comparison is not of two untouched initialisations */
        Model fresh;
        assert_int_equal(model_build(&fresh, &c, &err), 0);
        double moved = 0;
        for (size_t i = 0; i < one.m.params.total; i++)
            moved = fmax(moved, fabs((double)fresh.params.buf[TBUF_VALUE][i] - b[i]));
        assert_true(moved > 100 * PARAM_ATOL);
        model_free(&fresh);
        train_share_free(&one);
    }
    train_share_free(&ranks);
}

static void test_two_ranks_equal_one_process_infonce(void **state) {
    (void)state;
    check_two_ranks_equal_one_process("infonce", 0);
    check_two_ranks_equal_one_process("infonce", 4);
}
static void test_two_ranks_equal_one_process_siglip(void **state) {
    (void)state;
    check_two_ranks_equal_one_process("siglip", 0);
    check_two_ranks_equal_one_process("siglip", 4);
}
static void test_two_ranks_equal_one_process_dcl(void **state) {
    (void)state;
    check_two_ranks_equal_one_process("dcl", 0);
    check_two_ranks_equal_one_process("dcl", 4);
}

/* An evaluation shared by the ranks (each extracting the features of its chunks of images) and,
 * on rank 0, one by rank 0 alone with the same model: shared [0] and alone [0] (empty elsewhere). */
static int evaluate_shared_and_alone(const Config *c, Metrics *shared, Metrics *alone) {
    TrainShare s;
    Err err;
    memset(shared, 0, sizeof *shared);
    memset(alone, 0, sizeof *alone);
    int rc = train_share_build(&s, c, world, &err);
    const int all = EVAL_PROBE | EVAL_ALL_TASKS | EVAL_RETRIEVAL;
    if (!rc) evaluate_model(&s.m, all, world, shared);
    if (!rc && world->rank == 0) evaluate_model(&s.m, all, comm_serial(), alone);
    train_share_free(&s);
    return rc;
}

/* Rank 0's shared evaluation is bitwise its evaluation alone; the other ranks hold no metrics. */
static void assert_shared_equals_alone(const Metrics *shared, const Metrics *alone, const char *label,
                                       const char *must_have) {
    if (world->rank != 0) {
        assert_int_equal(shared->n, 0);
        return;
    }
    assert_true(metrics_find(alone, must_have) >= 0);
    assert_true(metrics_find(alone, "probe.pre_head") >= 0);
    assert_int_equal(shared->n, alone->n);
    for (int i = 0; i < alone->n; i++) {
        assert_string_equal(shared->names[i], alone->names[i]);
        assert_memory_equal(&shared->values[i], &alone->values[i], sizeof(double));
        assert_int_equal(shared->counts[i], alone->counts[i]);
    }
    printf("%s: %d metrics of the shared evaluation bitwise rank 0's alone\n", label, alone->n);
}

/* Contrastive: the zero-shot scores, probe features and retrieval embeddings split over the ranks
 * by chunks of 8 images (B/W): 16 task images one chunk each, 27 probe images 16 and 11 (a short
 * last chunk), 8 retrieval pairs all rank 0's (rank 1 has none). Caption: the same, except that
 * its second zero-shot rule (pmi) couples the images, so rank 0 scores them alone. */
static void test_shared_evaluation_equals_rank0_alone(void **state) {
    (void)state;
    Config c;
    Err err;
    tiny_config(&c, "infonce", 0);
    const char *smaller[] = {"eval.probe_images=27", "eval.retrieval_n=8"};
    for (size_t i = 0; i < 2; i++) assert_int_equal(spec_override(&c, smaller[i], &err), 0);
    static Metrics shared[2], alone[2];
    int rc_contrastive = evaluate_shared_and_alone(&c, &shared[0], &alone[0]);
    const char *caption[] = {"objective.kind=caption", "objective.prefix_tokens=2", "model.text.kind=transformer",
                             "model.text.layers=1", "model.text.heads=2"};
    int over = 0;
    for (size_t i = 0; i < sizeof caption / sizeof caption[0]; i++) over |= spec_override(&c, caption[i], &err);
    int rc_caption = over ? -1 : evaluate_shared_and_alone(&c, &shared[1], &alone[1]);
    /* every collective is behind us */
    assert_int_equal(rc_contrastive, 0);
    assert_int_equal(rc_caption, 0);
    assert_shared_equals_alone(&shared[0], &alone[0], "contrastive", "retrieval.i2t_r1");
    assert_shared_equals_alone(&shared[1], &alone[1], "caption", "zs.colour_shape_seen.pmi.top1");
}

/* A loss without a per-rank share (align_uniform, or any loss within groups), and a batch that
 * does not split, are refused in one line on every rank (so no rank waits for another in a
 * collective). */
static void test_data_parallel_refusals(void **state) {
    (void)state;
    Config c;
    TrainShare s;
    Err err;
    tiny_config(&c, "align_uniform", 0);
    int rc_loss = train_share_build(&s, &c, world, &err);
    char msg_loss[ERR_MSG_MAX];
    snprintf(msg_loss, sizeof msg_loss, "%s", err.msg);
    train_share_free(&s);
    tiny_config(&c, "infonce", 0);
    c.loss.group_size = 4;
    int rc_group = train_share_build(&s, &c, world, &err);
    char msg_group[ERR_MSG_MAX];
    snprintf(msg_group, sizeof msg_group, "%s", err.msg);
    train_share_free(&s);
    tiny_config(&c, "infonce", 0);
    c.train.batch_size = 15;
    int rc_split = train_share_build(&s, &c, world, &err);
    train_share_free(&s);
    assert_int_equal(rc_group, -1);
    assert_non_null(strstr(msg_group, "loss.group_size 4 has no per-rank share"));
    assert_int_equal(rc_loss, -1);
    assert_non_null(strstr(msg_loss, "loss align_uniform has no per-rank share"));
    assert_int_equal(rc_split, -1);
    assert_string_equal(err.msg, "train.batch_size 15 does not split evenly over 2 ranks");
}

/* ---- the command line under mpirun (run from the top process, not from a rank) ----------------- */

static char g_dir[64]; /* per-test scratch directory */

static const char *bin(const char *env, const char *fallback) {
    const char *p = getenv(env);
    return p && *p ? p : fallback;
}

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/cliplab_test_dist_XXXXXX");
    return mkdtemp(g_dir) && access(bin("CLIPLAB_MPI", "build/cliplab-mpi"), X_OK) == 0 ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The shell command `fmt` (g_dir is $D, the binaries $CLIPLAB and $CLIPLAB_MPI, mpirun's two
 * ranks $MPIRUN), its output into $D/log; returns its exit status. */
static int sh(const char *fmt, ...) {
    char body[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd,
             "D='%s'; CLIPLAB='%s'; CLIPLAB_MPI='%s'; MPIRUN='mpirun -np " N_RANKS " --oversubscribe --timeout "
             MPIRUN_TIMEOUT_S "'; { %s ; } >>\"$D/log\" 2>&1",
             g_dir, bin("CLIPLAB", "build/cliplab"), bin("CLIPLAB_MPI", "build/cliplab-mpi"), body);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void fail_with_log(const char *what) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tail -n 30 '%s/log' >&2", g_dir);
    if (system(cmd)) {}
    fail_msg("%s", what);
}

/* Every series of /group in two run files is bitwise equal, except `skip` (a wall-clock value). */
static void assert_group_equal(const char *a, const char *b, const char *group, const char *skip) {
    char(*names)[REPORT_NAME_MAX] = NULL;
    int n = report_list_series(a, group, &names);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], skip)) continue;
        double *va = NULL, *vb = NULL;
        long na = report_read_series(a, group, names[i], &va), nb = report_read_series(b, group, names[i], &vb);
        if (na <= 0 || na != nb || memcmp(va, vb, (size_t)na * sizeof(double)))
            fail_msg("/%s/%s differs between %s and %s", group, names[i], a, b);
        free(va);
        free(vb);
    }
    free(names);
}

static void assert_runs_equal(const char *a, const char *b) {
    assert_group_equal(a, b, "train", "wall_s");
    assert_group_equal(a, b, "eval", "");
    assert_group_equal(a, b, "summary", "images_per_s");
}

#define TINY_RUN "data.image_size=16 data.eval_images=32 model.image.widths=[4,8] model.image.tap=img.stage2 " \
                 "model.text.width=16 model.embed_dim=8 eval.retrieval_n=32 eval.probe=false train.threads=1 " \
                 "train.batch_size=32 train.warmup_images=256 eval.every_images=1024"

#define RUN_16K "run experiments/contrastive.yaml " TINY_RUN " train.images=16384"
/* The stop test's run: it must outlast mpirun's STOP_GRACE_S after its first evaluation, with a
 * margin for faster machines and code. 16384 images took ~1 s at 2 idle ranks after the direct
 * convolutions, and 163840 took 2.3 s once retrieval moved to the final evaluation: both finished
 * inside the grace. 819200 take ~12 s at 2 idle ranks, 4x the grace. */
#define STOP_RUN_IMAGES "819200"
#define RUN_STOP "run experiments/contrastive.yaml " TINY_RUN " train.images=" STOP_RUN_IMAGES
#define SMOKE_SWEEP "sweep ablations/projection.yaml --profile smoke"

/* The group's reference results, made by the first test that asks and shared by the others:
 * g_ref/A/r.h5, the uninterrupted 2-rank run of RUN_16K, and g_ref/jobs, a `--jobs 2` sweep. */
static char g_ref[64];

static int setup_group(void **state) {
    (void)state;
    snprintf(g_ref, sizeof g_ref, "/tmp/cliplab_test_dist_ref_XXXXXX");
    return mkdtemp(g_ref) ? 0 : -1;
}

static int teardown_group(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_ref);
    return system(cmd) == 0 ? 0 : -1;
}

/* The uninterrupted 2-rank run of `run` into g_ref/<sub>/r.h5 (path [n]), made once (*made). */
static const char *reference_of(const char *run, const char *sub, char *path, size_t n, int *made) {
    snprintf(path, n, "%s/%s/r.h5", g_ref, sub);
    if (!*made && sh("$MPIRUN \"$CLIPLAB_MPI\" %s --out '%s/%s' --id r", run, g_ref, sub))
        fail_with_log("the uninterrupted 2-rank run failed");
    *made = 1;
    return path;
}

static const char *reference_run(void) {
    static char path[128];
    static int made;
    return reference_of(RUN_16K, "A", path, sizeof path, &made);
}

static const char *reference_sweep(void) {
    static char dir[128];
    static int made;
    snprintf(dir, sizeof dir, "%s/jobs", g_ref);
    if (!made && sh("\"$CLIPLAB\" " SMOKE_SWEEP " --out '%s' --jobs 2", dir)) fail_with_log("the --jobs sweep failed");
    made = 1;
    return dir;
}

/* Every run of the sweep in folder a equals the run of the same id in folder b. */
static void assert_sweeps_equal(const char *a_dir, const char *b_dir) {
    RunInfo *runs = NULL;
    int n = 0;
    Err err;
    char a[512], b[512];
    assert_int_equal(report_scan(a_dir, &runs, &n, &err), 0);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/%s.h5", a_dir, runs[i].run_id);
        snprintf(b, sizeof b, "%s/%s.h5", b_dir, runs[i].run_id);
        assert_runs_equal(a, b);
    }
    report_free(runs, n);
}

/* A checkpoint written by 2 ranks, killed with kill -9 (the whole job: mpirun and its ranks),
 * resumed by 2 ranks: bitwise the uninterrupted 2-rank run. */
static void test_mpi_kill9_then_resume_is_bitwise_identical(void **state) {
    (void)state;
    const char *run = "$MPIRUN \"$CLIPLAB_MPI\" " RUN_16K " train.checkpoint_every_images=64";
    const char *ref = reference_run();
    /* the job in its own process group, killed as a whole once its first checkpoint is there */
    if (sh("setsid %s --out \"$D/B\" --id r & pid=$!; "
           "for i in $(seq 600); do [ -e \"$D/B/r.ckpt.h5\" ] && break; sleep 0.05; done; sleep 0.3; "
           "kill -9 -$pid; wait $pid; [ -e \"$D/B/r.ckpt.h5\" ] && [ ! -e \"$D/B/r.h5\" ]", run))
        fail_with_log("the 2-rank run was not killed between its first checkpoint and its end");
    if (sh("%s --out \"$D/B\" --id r --resume | grep -q 'results:' && grep -q 'resuming at' \"$D/log\"", run))
        fail_with_log("the 2-rank resume failed");
    char b[128];
    snprintf(b, sizeof b, "%s/B/r.h5", g_dir);
    assert_runs_equal(ref, b);
}

/* Open MPI's mpirun (4.1) does not forward SIGINT or SIGTERM: it sends its ranks SIGCONT, after
 * odls_base_sigkill_timeout seconds (default 1) SIGTERM, and as long again later SIGKILL. A rank's
 * MPI_Finalize then waits 2 s for the exiting mpirun (PMIx's time-out), so the ranks are killed in
 * it unless the time-out is longer: after their checkpoint, and mpirun exits 1 either way. The
 * test gives them STOP_GRACE_S seconds, so a loaded machine cannot turn the stop into a kill
 * before the checkpoint; the run must outlast it (RUN_STOP: ~10 s on 2 idle cores). */
#define STOP_GRACE_S "3"

/* Starts `$MPIRUN $CLIPLAB_MPI args` with each rank under $D/rank.sh, which records its process
 * group in $D/pgid.<rank> and the rank's exit status in $D/rc.<rank> and exits with it (the
 * wrapping shell ignores the signals, which go to a rank's process group), sends SIGTERM to `whom`
 * (kill's operands: "$pid" is mpirun, "-$(cat "$D/pgid.1")" rank 1 alone) as soon as the shell
 * test `ready` holds, and waits for the job. 0 if it ended with `expect` (a shell test on
 * $rc0, $rc1: the ranks' exit statuses, empty if killed, and $mpirun, mpirun's). */
static int stop_with_sigterm(const char *ready, const char *whom, const char *args, const char *expect) {
    char path[128];
    snprintf(path, sizeof path, "%s/rank.sh", g_dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs("echo $$ >\"${0%/*}/pgid.$OMPI_COMM_WORLD_RANK\"\ntrap '' TERM INT\n\"$@\"\n"
          "rc=$?; echo $rc >\"${0%/*}/rc.$OMPI_COMM_WORLD_RANK\"; exit $rc\n", f);
    fclose(f);
    return sh("rm -f \"$D\"/rc.*; $MPIRUN --mca odls_base_sigkill_timeout " STOP_GRACE_S " sh \"$D/rank.sh\" "
              "\"$CLIPLAB_MPI\" %s & pid=$!; for i in $(seq 1200); do %s && break; sleep 0.05; done; kill -TERM %s; "
              "wait $pid; mpirun=$?; rc0=$(cat \"$D/rc.0\"); rc1=$(cat \"$D/rc.1\"); "
              "echo \"exit statuses: ranks '$rc0' '$rc1', mpirun $mpirun\"; %s",
              args, ready, whom, expect);
}

/* The images at which the last stop of run r in $D/log happened, into $D/stopped_at; 0 if the
 * stop left a checkpoint of its step and an unfinished run file, and the log holds n_stops
 * messages of how to resume. */
static int check_stopped(int n_stops) {
    return sh("[ -e \"$D/B/r.ckpt.h5\" ] && [ -e \"$D/B/r.h5.tmp\" ] && [ ! -e \"$D/B/r.h5\" ] && "
              "n=$(sed -n 's/.*r: stopped at \\([0-9]*\\) of " STOP_RUN_IMAGES " images.*/\\1/p' \"$D/log\" | tail -n 1) && "
              "[ \"$n\" -gt 0 ] && echo \"$n\" >\"$D/stopped_at\" && "
              "[ $(grep -c 'interrupted by SIGTERM.*resume with: mpirun -np 2 .* --resume$' \"$D/log\") -eq %d ]",
              n_stops);
}

/* A 2-rank run stopped twice, each time resumed at 2 ranks from the checkpoint of the stop (the
 * run has no periodic ones): first by SIGTERM to mpirun (Ctrl-C or kill; the ranks exit 143 or are
 * killed in MPI_Finalize, see STOP_GRACE_S), then by SIGTERM to rank 1 alone (rank 0, never
 * signalled, must stop at the same step; both exit 143, which mpirun passes on). The end result
 * is bitwise the uninterrupted 2-rank run. */
static void test_mpi_sigterm_then_resume_is_bitwise_identical(void **state) {
    (void)state;
    static char ref_path[128];
    static int ref_made;
    const char *ref = reference_of(RUN_STOP, "S", ref_path, sizeof ref_path, &ref_made);
    if (sh(": >\"$D/log\"")) fail_msg("cannot empty %s/log", g_dir); /* the stops read only their own run's lines */
    if (stop_with_sigterm("grep -q 'eval @ 0 images' \"$D/log\"", "$pid", RUN_STOP " --out \"$D/B\" --id r",
                          "[ \"$mpirun\" -ne 0 ] && case \"$rc0,$rc1\" in 143,143|143,|,143|,) ;; *) false ;; esac") ||
        check_stopped(1))
        fail_with_log("SIGTERM to mpirun left no checkpoint of the stop's step or did not print how to resume");
    if (stop_with_sigterm("grep -q \"r: resuming at $(cat \"$D/stopped_at\") images\" \"$D/log\"",
                          "-$(cat \"$D/pgid.1\")", RUN_STOP " --out \"$D/B\" --id r --resume",
                          "[ \"$rc0 $rc1 $mpirun\" = '143 143 143' ]") ||
        check_stopped(2))
        fail_with_log("SIGTERM to rank 1 did not stop both ranks with 143 and a checkpoint of the stop's step");
    if (sh("$MPIRUN \"$CLIPLAB_MPI\" " RUN_STOP " --out \"$D/B\" --id r --resume | grep -q 'results:' && "
           "grep -q \"r: resuming at $(cat \"$D/stopped_at\") images\" \"$D/log\""))
        fail_with_log("the 2-rank resume did not start at the step the stop checkpointed");
    char b[128];
    snprintf(b, sizeof b, "%s/B/r.h5", g_dir);
    assert_runs_equal(ref, b);
}

/* `mpirun -np 2 cliplab-mpi sweep` spreads the runs over the ranks: the same run files as a
 * `--jobs 2` sweep, every run once. */
static void test_mpi_sweep_equals_jobs_sweep(void **state) {
    (void)state;
    const char *jobs = reference_sweep();
    if (sh("$MPIRUN \"$CLIPLAB_MPI\" " SMOKE_SWEEP " --out \"$D/ranks\"")) fail_with_log("the sweep over ranks failed");
    if (sh("[ $(grep -o 'rank [01]: run [0-9]*/' \"$D/log\" | wc -l) -eq $(ls '%s' | grep -c '\\.h5$') ]", jobs))
        fail_with_log("the ranks did not run every run exactly once");
    char ranks[128];
    snprintf(ranks, sizeof ranks, "%s/ranks", g_dir);
    assert_sweeps_equal(jobs, ranks);
}

/* A sweep over ranks stopped before its end by SIGTERM to every rank (as a batch system's
 * scancel sends it; both ranks exit 143), then resumed over ranks: the same run files as the
 * --jobs sweep. */
static void test_mpi_sweep_stopped_then_resumed_equals_jobs_sweep(void **state) {
    (void)state;
    const char *jobs = reference_sweep();
    if (stop_with_sigterm("ls \"$D\"/ranks/*.h5.tmp >/dev/null 2>&1", "-$(cat \"$D/pgid.0\") -$(cat \"$D/pgid.1\")",
                          SMOKE_SWEEP " --out \"$D/ranks\"", "[ \"$rc0 $rc1 $mpirun\" = '143 143 143' ]"))
        fail_with_log("the ranks and mpirun did not all exit 143 after the ranks were sent SIGTERM");
    if (sh("grep -q 'interrupted by SIGTERM' \"$D/log\" && [ $(ls \"$D/ranks\" | grep -c '\\.h5$') -lt $(ls '%s' | "
           "grep -c '\\.h5$') ]", jobs))
        fail_with_log("the sweep was not stopped before its end");
    if (sh("$MPIRUN \"$CLIPLAB_MPI\" " SMOKE_SWEEP " --out \"$D/ranks\" --resume"))
        fail_with_log("the resumed sweep over ranks failed");
    char ranks[128];
    snprintf(ranks, sizeof ranks, "%s/ranks", g_dir);
    assert_sweeps_equal(jobs, ranks);
}

/* Plain build/cliplab never starts MPI: it does not even link it. */
static void test_plain_binary_does_not_link_mpi(void **state) {
    (void)state;
    if (sh("! ldd \"$CLIPLAB\" | grep -q libmpi && ldd \"$CLIPLAB_MPI\" | grep -q libmpi"))
        fail_with_log("build/cliplab links libmpi, or build/cliplab-mpi does not");
}

/* What the processes this test starts need (never set globally): Open MPI's consent to run as
 * root, and under ASan the suppressions of Open MPI's own allocations (tests/lsan_mpi.supp). */
static void set_child_env(void) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    char supp[PATH_MAX], opts[PATH_MAX + 64];
    if (!getenv("LSAN_OPTIONS") && realpath("tests/lsan_mpi.supp", supp)) {
        snprintf(opts, sizeof opts, "suppressions=%s:fast_unwind_on_malloc=0", supp);
        setenv("LSAN_OPTIONS", opts, 1);
    }
}

/* The whole job under mpirun: this binary's ranks run the in-process tests. */
static int run_ranks(char **argv) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        set_child_env();
        char *args[] = {"mpirun", "-np", N_RANKS, "--oversubscribe", "--timeout", MPIRUN_TIMEOUT_S, argv[0], NULL};
        execvp("mpirun", args);
        perror("test_dist: cannot start mpirun");
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* The top process: the command-line tests, then the in-process tests on N_RANKS ranks. */
static int run_top(char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_binary_does_not_link_mpi),
        cmocka_unit_test_setup_teardown(test_mpi_kill9_then_resume_is_bitwise_identical, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_mpi_sigterm_then_resume_is_bitwise_identical, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_mpi_sweep_equals_jobs_sweep, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_mpi_sweep_stopped_then_resumed_equals_jobs_sweep, setup_dir, teardown_dir),
    };
    set_child_env(); /* for the commands under test, which are this process's children */
    int failed = cmocka_run_group_tests_name("dist command line", tests, setup_group, teardown_group);
    return run_ranks(argv) || failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (!getenv("OMPI_COMM_WORLD_SIZE")) return run_top(argv);
    world = dist_init(&argc, &argv);
    /* one report: the other ranks write theirs to a file (their exit status still counts) */
    char rank_log[64];
    snprintf(rank_log, sizeof rank_log, "/tmp/cliplab_test_dist.rank%d.log", world->rank);
    if (world->rank != 0 && (!freopen(rank_log, "w", stdout) || !freopen(rank_log, "a", stderr))) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allgather_and_reduce_scatter_follow_their_definitions),
        cmocka_unit_test(test_allreduce_sums_and_is_bitwise_equal_on_every_rank),
        cmocka_unit_test(test_tickets_are_handed_out_once_each),
        cmocka_unit_test(test_two_ranks_equal_one_process_infonce),
        cmocka_unit_test(test_two_ranks_equal_one_process_siglip),
        cmocka_unit_test(test_two_ranks_equal_one_process_dcl),
        cmocka_unit_test(test_data_parallel_refusals),
        cmocka_unit_test(test_shared_evaluation_equals_rank0_alone),
    };
    int failed = cmocka_run_group_tests_name("dist", tests, NULL, NULL);
    dist_finalize();
    return failed ? 1 : 0;
}
