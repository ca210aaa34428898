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
 * Deliberately left out: the PyTorch side (tests/bench/losses_ref.py), thread scaling.
 */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "cliplab.h"
#include "common/check.h"
#include "common/rng.h"
#include "common/timer.h"
#include "losses/losses.h"

#define BENCH_TILE 512



static void unit_rows(float *x, int N, int D) {
    for (int i = 0; i < N; i++) {
        double n2 = 0.0;
        for (int k = 0; k < D; k++) n2 += (double)x[(size_t)i * D + k] * x[(size_t)i * D + k];
        float inv = (float)(1.0 / sqrt(n2));
        for (int k = 0; k < D; k++) x[(size_t)i * D + k] *= inv;
    }
}

static void bench_row(int kind, int N, int D, int tile, int reps) {
    LossConfig cfg = loss_default_config(kind);
    cfg.tile = tile;
    size_t nd = (size_t)N * D;
    float *img = mallocCheck(nd * sizeof(float)), *txt = mallocCheck(nd * sizeof(float));
    float *dimg = callocCheck(nd, sizeof(float)), *dtxt = callocCheck(nd, sizeof(float));
    size_t ws_floats = loss_workspace_floats(&cfg, N, D);
    float *ws = mallocCheck(ws_floats * sizeof(float));
    Rng r;
    rng_init(&r, 7);
    rng_fill_normal(&r, img, (long)nd, 1.0f);
    rng_fill_normal(&r, txt, (long)nd, 1.0f);
    unit_rows(img, N, D);
    unit_rows(txt, N, D);
    float scalars[2], dscalars[2] = {0};
    loss_init_scalars(&cfg, scalars);

    int have_peak = proc_reset_hwm() == 0;
    long rss0 = proc_status_kb("VmRSS:");
    double t0 = time_now();
    float loss = 0.0f;
    for (int rep = 0; rep < reps; rep++)
        loss = loss_forward_backward(&cfg, dimg, dtxt, dscalars, img, txt, scalars, N, D, ws);
    double dt = (time_now() - t0) / reps;
    long hwm = proc_status_kb("VmHWM:");
    int tiled = tile > 0 && tile < N;
    double products = kind == LOSS_SIGLIP           ? 3.0
                      : kind == LOSS_ALIGN_UNIFORM ? 2.0 * (tiled ? 3 : 2)
                                                   : (tiled ? 4 : 3);
    double gflops = products * 2.0 * N * (double)N * D / dt / 1e9;
    char peak[32];
    if (have_peak && hwm >= 0 && rss0 >= 0)
        snprintf(peak, sizeof peak, "%9.1f", (hwm - rss0) / 1024.0);
    else
        snprintf(peak, sizeof peak, "%9s", "n/a");
    printf("%-14s %6d %4d %-6s %5d %4d %9.4f %7.1f %10.1f %s %8.4f\n", loss_registry_name(kind), N, D,
           tiled ? "tiled" : "dense", tiled ? tile : N, reps, dt, gflops,
           ws_floats * sizeof(float) / 1048576.0, peak, loss);
    fflush(stdout);
    free(img);
    free(txt);
    free(dimg);
    free(dtxt);
    free(ws);
}

static void header(void) {
    printf("%-14s %6s %4s %-6s %5s %4s %9s %7s %10s %9s %8s\n", "loss", "N", "D", "mode", "tile",
           "reps", "s/step", "GFLOP/s", "ws MiB", "peak MiB", "loss");
}

int main(void) {
    cliplab_runtime_init();
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    double start = time_now();
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
    printf("\ntotal %.1f s\n", time_now() - start);
    return 0;
}
