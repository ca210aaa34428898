/* bench_util.h — measurements shared by the benchmarks (header-only: each benchmark is one
 * program): /proc/self/status values, and the in-process square-sgemm peak that fractions of the
 * peak are taken against. Deliberately left out: anything but Linux /proc. */
#ifndef CLIPLAB_BENCH_UTIL_H
#define CLIPLAB_BENCH_UTIL_H

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/rng.h"
#include "common/timer.h"

/* kB value of a "Key:" line of /proc/self/status (e.g. "VmHWM:"), or -1. */
static inline long proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) {
            kb = atol(line + n);
            break;
        }
    fclose(f);
    return kb;
}

/* VmHWM := current RSS (Linux >= 4.0), so each measurement's peak is its own. 0 on success. */
static inline int proc_reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Best GFLOP/s of reps n^3 cblas_sgemm after one warm-up, at the current thread count: the peak
 * every fraction of the peak is taken against, measured in the process that reports the fraction
 * (other jobs on a shared machine slow both down). */
static inline double bench_sgemm_peak(int n, int reps) {
    size_t nn = (size_t)n * n;
    float *a = mallocCheck(nn * sizeof(float)), *b = mallocCheck(nn * sizeof(float));
    float *c = mallocCheck(nn * sizeof(float));
    Rng r;
    rng_init(&r, 3);
    rng_fill_uniform(&r, a, (long)nn, -1.0f, 1.0f);
    rng_fill_uniform(&r, b, (long)nn, -1.0f, 1.0f);
    double best = 1e30;
    for (int i = 0; i <= reps; i++) {
        double t0 = time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = time_now() - t0;
        if (i > 0 && dt < best) best = dt; /* i = 0 warms up threads and caches */
    }
    free(a), free(b), free(c);
    return 2.0 * n * (double)nn / best * 1e-9;
}

#endif
