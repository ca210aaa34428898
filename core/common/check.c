/* check.c — implementation of CHECK and the checked allocators (see check.h). */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void check_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: check failed: %s", file, line, cond);
    if (fmt && fmt[0]) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    exit(2);
}

void *malloc_check(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) check_fail(file, line, "malloc", "out of memory allocating %zu bytes", n);
    return p;
}

void *calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) check_fail(file, line, "calloc", "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *realloc_check(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) check_fail(file, line, "realloc", "out of memory allocating %zu bytes", n);
    return q;
}

FILE *fopen_check(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) check_fail(file, line, "fopen", "cannot open '%s' (mode %s)", path, mode);
    return f;
}

int err_set(Err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int names_find(NameFn fn, const char *name) {
    for (int i = 0; name && fn(i); i++)
        if (!strcmp(fn(i), name)) return i;
    return -1;
}

void names_join(char *out, size_t cap, NameFn fn) {
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; fn(i) && n < cap; i++) {
        int m = snprintf(out + n, cap - n, "%s%s", i ? ", " : "", fn(i));
        if (m < 0) break;
        n += (size_t)m;
    }
}

int err_unknown_name(Err *err, const char *what, const char *got, NameFn fn) {
    char valid[ERR_MSG_MAX / 2];
    names_join(valid, sizeof valid, fn);
    return err_set(err, "unknown %s '%.100s'; valid: %s", what, got, valid);
}
