/* bench_util.h — measurements shared by the benchmarks (header-only: each benchmark is one
 * program): /proc/self/status values, and the in-process square-sgemm peak that fractions of the
 * peak are taken against. Deliberately left out: anything but Linux /proc. */
#ifndef CLIPLAB_BENCH_UTIL_H
#define CLIPLAB_BENCH_UTIL_H

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* CPU seconds of every thread of this process: unlike wall time, not inflated while another
 * process holds the core, so on a 1-thread row it compares two builds on a busy machine. */
static inline double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best GFLOP/s of reps n^3 cblas_sgemm after one warm-up, at the current thread count: the peak
 * every fraction of the peak is taken against, measured in the process that reports the fraction
 * (other jobs on a shared machine slow both down). *per_cpu_s (if not NULL): the best GFLOP per
 * CPU second of the process, the same peak with the time other processes held the cores left out. */
static inline double bench_sgemm_peak(int n, int reps, double *per_cpu_s) {
    size_t nn = (size_t)n * n;
    float *a = mallocCheck(nn * sizeof(float)), *b = mallocCheck(nn * sizeof(float));
    float *c = mallocCheck(nn * sizeof(float));
    Rng r;
    rng_init(&r, 3);
    rng_fill_uniform(&r, a, (long)nn, -1.0f, 1.0f);
    rng_fill_uniform(&r, b, (long)nn, -1.0f, 1.0f);
    double best = 1e30, best_cpu = 1e30;
    for (int i = 0; i <= reps; i++) {
        double t0 = time_now(), c0 = bench_cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = time_now() - t0, dc = bench_cpu_now() - c0;
        if (i > 0 && dt < best) best = dt; /* i = 0 warms up threads and caches */
        if (i > 0 && dc < best_cpu) best_cpu = dc;
    }
    free(a), free(b), free(c);
    if (per_cpu_s) *per_cpu_s = 2.0 * n * (double)nn / best_cpu * 1e-9;
    return 2.0 * n * (double)nn / best * 1e-9;
}

#endif
