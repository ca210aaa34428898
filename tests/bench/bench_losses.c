/* bench_losses.c — forward+backward time and memory of the contrastive losses, dense vs tiled.
 *
 * Table 1: infonce for N = 1k..64k at D = 64 and 256, dense (N <= 16k: its N x N block is 1 GiB
 * at 16k) and tiled (tile 512). Table 2: every loss at N = 4096, D = 256. Per row: seconds per
 * forward+backward, achieved GFLOP/s of the block products (products of 2N^2D: infonce/dcl dense
 * 3, tiled 4 as the backward recomputes each block; siglip 3, fused; align_uniform 2 or 3 per
 * side), workspace MiB, and the process peak RSS (VmHWM, reset before each row through
 * /proc/self/clear_refs) above the RSS at the start of the row, which already holds the inputs
 * and gradients. Large blocks are always mmap-ed (fixed M_MMAP_THRESHOLD), so a workspace never
 * reuses pages a previous row left resident and the peak shows what each row really touches.
 * Fewer repetitions for large N keep the whole run around 2-3 minutes on 2 cores.
 *
 * Last, the tiled loss against its floor (issue 15 item 5): infonce at N = 32768, D = 64, forward
 * + backward on TILED_THREADS threads. Its floor is the time of its block products (4 of 2 N^2 D
 * FLOPs: the backward recomputes each block) at the square-sgemm peak plus its 4 N^2 exponentials
 * (row and column softmax, forward and backward) at the exp throughput, both measured in this
 * process on the same threads just before and after the loss (the better of the two). Printed,
 * and written to tiled_loss.tsv next to this binary for run_bench.sh's table. `bench_losses floor`
 * runs only this row.
 * Deliberately left out: the PyTorch side (tests/bench/losses_ref.py), thread scaling.
 */
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "cliplab.h"
#include "common/check.h"
#include "common/rng.h"
#include "common/timer.h"
#include "losses/losses.h"
#include "ops/ops.h"

#define BENCH_TILE 512
#define TILED_N 32768
#define TILED_D 64
#define TILED_THREADS 2
#define TILED_REPS 2     /* the loss: best of */
#define PEAK_N 2048      /* sgemm peak: PEAK_N^3, best of PEAK_REPS */
#define PEAK_REPS 3
#define EXP_LEN 4096     /* exp throughput: per thread, EXP_PASSES passes over EXP_LEN floats (L1) */
#define EXP_PASSES 8192

static void unit_rows(float *x, int N, int D) {
    for (int i = 0; i < N; i++) {
        double n2 = 0.0;
        for (int k = 0; k < D; k++) n2 += (double)x[(size_t)i * D + k] * x[(size_t)i * D + k];
        float inv = (float)(1.0 / sqrt(n2));
        for (int k = 0; k < D; k++) x[(size_t)i * D + k] *= inv;
    }
}

/* One loss's inputs and outputs, made and touched before the measurement starts. */
typedef struct {
    LossConfig cfg;
    int N, D;
    float *img, *txt, *dimg, *dtxt, *ws;
    float scalars[2], dscalars[2];
    size_t ws_floats;
} LossRun;

static void run_make(LossRun *lr, int kind, int N, int D, int tile) {
    lr->cfg = loss_default_config(kind);
    lr->cfg.tile = tile;
    lr->N = N, lr->D = D;
    size_t nd = (size_t)N * D;
    lr->img = mallocCheck(nd * sizeof(float)), lr->txt = mallocCheck(nd * sizeof(float));
    lr->dimg = mallocCheck(nd * sizeof(float)), lr->dtxt = mallocCheck(nd * sizeof(float));
    memset(lr->dimg, 0, nd * sizeof(float)), memset(lr->dtxt, 0, nd * sizeof(float));
    lr->ws_floats = loss_workspace_floats(&lr->cfg, N, D);
    lr->ws = mallocCheck(lr->ws_floats * sizeof(float));
    Rng r;
    rng_init(&r, 7);
    rng_fill_normal(&r, lr->img, (long)nd, 1.0f);
    rng_fill_normal(&r, lr->txt, (long)nd, 1.0f);
    unit_rows(lr->img, N, D);
    unit_rows(lr->txt, N, D);
    lr->dscalars[0] = lr->dscalars[1] = 0.0f;
    loss_init_scalars(&lr->cfg, lr->scalars);
}

static void run_free(LossRun *lr) {
    free(lr->img), free(lr->txt), free(lr->dimg), free(lr->dtxt), free(lr->ws);
}

/* Best seconds of reps forward+backward passes (*cpu_s: best process CPU seconds, all threads);
 * *loss the last value, *extra_mib the peak RSS above the RSS at the start (-1 when /proc cannot
 * tell). */
static double run_time(LossRun *lr, int reps, float *loss, double *extra_mib, double *cpu_s) {
    int have_peak = proc_reset_hwm() == 0;
    long rss0 = proc_status_kb("VmRSS:");
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = time_now(), c0 = bench_cpu_now();
        *loss = loss_forward_backward(&lr->cfg, lr->dimg, lr->dtxt, lr->dscalars, lr->img, lr->txt,
                                      lr->scalars, lr->N, lr->D, lr->ws);
        double dt = time_now() - t0, dc = bench_cpu_now() - c0;
        best = dt < best ? dt : best;
        best_cpu = dc < best_cpu ? dc : best_cpu;
    }
    long hwm = proc_status_kb("VmHWM:");
    *extra_mib = have_peak && hwm >= 0 && rss0 >= 0 ? (hwm - rss0) / 1024.0 : -1.0;
    *cpu_s = best_cpu;
    return best;
}

static void bench_row(int kind, int N, int D, int tile, int reps) {
    LossRun lr;
    run_make(&lr, kind, N, D, tile);
    float loss = 0.0f;
    double extra_mib, cpu_s, dt = run_time(&lr, reps, &loss, &extra_mib, &cpu_s);
    int tiled = tile > 0 && tile < N;
    double products = kind == LOSS_SIGLIP           ? 3.0
                      : kind == LOSS_ALIGN_UNIFORM ? 2.0 * (tiled ? 3 : 2)
                                                   : (tiled ? 4 : 3);
    double gflops = products * 2.0 * N * (double)N * D / dt / 1e9;
    char peak[32];
    if (extra_mib >= 0.0)
        snprintf(peak, sizeof peak, "%9.1f", extra_mib);
    else
        snprintf(peak, sizeof peak, "%9s", "n/a");
    printf("%-14s %6d %4d %-6s %5d %4d %9.4f %7.1f %10.1f %s %8.4f\n", loss_registry_name(kind), N, D,
           tiled ? "tiled" : "dense", tiled ? tile : N, reps, dt, gflops,
           lr.ws_floats * sizeof(float) / 1048576.0, peak, loss);
    fflush(stdout);
    run_free(&lr);
}

/* A rate per wall second and per CPU second of the process (the latter leaves out the time
 * other processes held the cores: on a busy machine it is the one two measurements compare by). */
typedef struct {
    double wall, cpu;
} Rate;

static void rate_keep_best(Rate *best, Rate r) {
    best->wall = r.wall > best->wall ? r.wall : best->wall;
    best->cpu = r.cpu > best->cpu ? r.cpu : best->cpu;
}

/* Exponentials per second of ops_expf (the loss's exp) on the current threads, each thread
 * summing EXP_PASSES passes over its own EXP_LEN arguments in [-16, 0]; best of 3. */
static Rate exp_throughput(void) {
    int nt = omp_get_max_threads();
    float *x = mallocCheck((size_t)nt * EXP_LEN * sizeof(float));
    for (size_t i = 0; i < (size_t)nt * EXP_LEN; i++) x[i] = -16.0f * (float)(i % EXP_LEN) / EXP_LEN;
    double best = 1e30, best_cpu = 1e30, sink = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = time_now(), c0 = bench_cpu_now();
#pragma omp parallel reduction(+ : sink)
        {
            const float *xt = x + (size_t)omp_get_thread_num() * EXP_LEN;
            float acc = 0.0f;
            for (int p = 0; p < EXP_PASSES; p++) {
                float shift = (float)(p & 7) * 1e-3f; /* a new argument every pass */
#pragma omp simd reduction(+ : acc)
                for (int i = 0; i < EXP_LEN; i++) acc += ops_expf(xt[i] - shift);
            }
            sink += acc;
        }
        double dt = time_now() - t0, dc = bench_cpu_now() - c0;
        best = dt < best ? dt : best;
        best_cpu = dc < best_cpu ? dc : best_cpu;
    }
    free(x);
    CHECK(sink > 0.0, "exp throughput: no work done");
    double n = (double)nt * EXP_LEN * EXP_PASSES;
    return (Rate){n / best, n / best_cpu};
}

/* The better of the sgemm peak (GFLOP/s) and exp rate (exps/s) before and after the loss, the
 * loss's best time, and the floor from them, each in wall and in CPU seconds. */
typedef struct {
    Rate peak, exps;
    double seconds, cpu_seconds, floor_seconds, floor_cpu_seconds, extra_mib;
    float loss;
} FloorRow;

static void write_floor_tsv(const char *path, const LossRun *lr, const FloorRow *f) {
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "bench_losses: cannot write %s\n", path);
        return;
    }
    fprintf(out, "loss\tN\tD\tthreads\ttile\tseconds\tfloor_seconds\tfloor_frac\textra_mib\tpeak_gflops\t"
                 "gexp_s\tcpu_seconds\tfloor_cpu_seconds\tfloor_frac_cpu\tloss_value\n");
    fprintf(out, "%s\t%d\t%d\t%d\t%d\t%.4f\t%.4f\t%.4f\t%.1f\t%.1f\t%.3f\t%.4f\t%.4f\t%.4f\t%.6f\n",
            loss_registry_name(lr->cfg.kind), lr->N, lr->D, omp_get_max_threads(), lr->cfg.tile,
            f->seconds, f->floor_seconds, f->floor_seconds / f->seconds, f->extra_mib, f->peak.wall,
            f->exps.wall * 1e-9, f->cpu_seconds, f->floor_cpu_seconds,
            f->floor_cpu_seconds / f->cpu_seconds, f->loss);
    fclose(out);
}

static void print_floor(const LossRun *lr, const FloorRow *f) {
    double n2 = (double)lr->N * lr->N, gflop = 8.0 * n2 * lr->D * 1e-9;
    printf("\ntiled infonce N = %d, D = %d, tile %d, %d threads (best of %d): %.2f s forward+backward "
           "(%.2f CPU s), %.0f MiB beyond the inputs\n", lr->N, lr->D, lr->cfg.tile,
           omp_get_max_threads(), TILED_REPS, f->seconds, f->cpu_seconds, f->extra_mib);
    printf("floor %.2f s = products %.2f s (%.0f GFLOP at the %.1f GFLOP/s sgemm peak) + exps %.2f s "
           "(%.2e at %.2f Gexp/s): achieved %.0f%% of the floor (targets: <= 8 s, <= 205 MiB)\n",
           f->floor_seconds, gflop / f->peak.wall, gflop, f->peak.wall, 4.0 * n2 / f->exps.wall,
           4.0 * n2, f->exps.wall * 1e-9, 100.0 * f->floor_seconds / f->seconds);
    printf("in CPU seconds (other processes' share of the cores left out): floor %.2f = %.2f at %.1f "
           "GFLOP/CPU-s + %.2f at %.2f Gexp/CPU-s: achieved %.0f%%\n", f->floor_cpu_seconds,
           gflop / f->peak.cpu, f->peak.cpu, 4.0 * n2 / f->exps.cpu, f->exps.cpu * 1e-9,
           100.0 * f->floor_cpu_seconds / f->cpu_seconds);
}

/* The tiled loss against its floor (see the header comment), on TILED_THREADS threads. */
static void bench_tiled_floor(const char *tsv) {
    int threads_before = omp_get_max_threads();
    omp_set_num_threads(TILED_THREADS);
    LossRun lr;
    run_make(&lr, LOSS_INFONCE, TILED_N, TILED_D, loss_auto_tile(TILED_N));
    FloorRow f = {{0.0, 0.0}, {0.0, 0.0}, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0f};
    for (int round = 0; round < 2; round++) { /* before and after the loss */
        Rate peak;
        peak.wall = bench_sgemm_peak(PEAK_N, PEAK_REPS, &peak.cpu);
        rate_keep_best(&f.peak, peak);
        rate_keep_best(&f.exps, exp_throughput());
        if (round == 0) f.seconds = run_time(&lr, TILED_REPS, &f.loss, &f.extra_mib, &f.cpu_seconds);
    }
    double n2 = (double)TILED_N * TILED_N, flop = 4.0 * 2.0 * n2 * TILED_D;
    f.floor_seconds = flop / (f.peak.wall * 1e9) + 4.0 * n2 / f.exps.wall;
    f.floor_cpu_seconds = flop / (f.peak.cpu * 1e9) + 4.0 * n2 / f.exps.cpu;
    print_floor(&lr, &f);
    write_floor_tsv(tsv, &lr, &f);
    printf("wrote %s\n", tsv);
    run_free(&lr);
    omp_set_num_threads(threads_before);
}

static void header(void) {
    printf("%-14s %6s %4s %-6s %5s %4s %9s %7s %10s %9s %8s\n", "loss", "N", "D", "mode", "tile",
           "reps", "s/step", "GFLOP/s", "ws MiB", "peak MiB", "loss");
}

int main(int argc, char **argv) {
    cliplab_runtime_init();
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    double start = time_now();
    char tsv[1100];
    const char *slash = strrchr(argv[0], '/');
    snprintf(tsv, sizeof tsv, "%.*s%s", slash ? (int)(slash - argv[0] + 1) : 0, argv[0], "tiled_loss.tsv");
    if (argc > 1 && !strcmp(argv[1], "floor")) { /* only the floor row (for perf and A/B runs) */
        bench_tiled_floor(tsv);
        return 0;
    }
    printf("infonce forward+backward, dense vs tiled (tile %d)\n", BENCH_TILE);
    header();
    static const int Ns[] = {1024, 4096, 16384, 65536}, Ds[] = {64, 256};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 2; b++) {
            int N = Ns[a], reps = N <= 1024 ? 5 : N <= 4096 ? 2 : 1;
            if (N <= 16384) bench_row(LOSS_INFONCE, N, Ds[b], 0, reps);
            bench_row(LOSS_INFONCE, N, Ds[b], BENCH_TILE, reps);
        }
    printf("\nevery loss at N = 4096, D = 256\n");
    header();
    for (int kind = 0; kind < loss_count(); kind++) {
        bench_row(kind, 4096, 256, 0, 2);
        bench_row(kind, 4096, 256, BENCH_TILE, 2);
    }
    bench_tiled_floor(tsv);
    printf("\ntotal %.1f s\n", time_now() - start);
    return 0;
}
