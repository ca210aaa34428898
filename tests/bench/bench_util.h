/* bench_util.h — process measurements shared by the benchmarks (header-only: each benchmark is
 * one program). Deliberately left out: anything but Linux /proc. */
#ifndef CLIPLAB_BENCH_UTIL_H
#define CLIPLAB_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
