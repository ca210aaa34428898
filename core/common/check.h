/* check.h — the two error channels of cliplab.
 *
 * CHECK(cond, fmt, ...) is always on (never compiled out by NDEBUG): it is for programmer and
 * resource errors (a shape mismatch, a failed malloc, an HDF5 call that must not fail). It prints
 * "file:line: message" to stderr and exits with status 2.
 *
 * User-input errors (a bad spec key, a corrupt dataset file) do NOT use CHECK: the function that
 * detects them returns a non-zero code and writes one line into an Err, so tests can assert the
 * message and the CLI can print it and exit 1.
 *
 * Deliberately left out: error stacks, errno translation tables, longjmp recovery.
 */
#ifndef CLIPLAB_CHECK_H
#define CLIPLAB_CHECK_H

#include <stddef.h>
#include <stdio.h>

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) check_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                    \
    } while (0)

/* malloc/calloc/realloc that CHECK on failure; the xxxCheck family carries file:line. */
#define mallocCheck(n) malloc_check((n), __FILE__, __LINE__)
#define callocCheck(n, sz) calloc_check((n), (sz), __FILE__, __LINE__)
#define reallocCheck(p, n) realloc_check((p), (n), __FILE__, __LINE__)
#define fopenCheck(path, mode) fopen_check((path), (mode), __FILE__, __LINE__)

void check_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
void *malloc_check(size_t n, const char *file, int line);
void *calloc_check(size_t n, size_t size, const char *file, int line);
void *realloc_check(void *p, size_t n, const char *file, int line);
FILE *fopen_check(const char *path, const char *mode, const char *file, int line);

/* A user-facing error: one line, e.g. "specs/a.yaml:3:5: unknown key 'lr'; did you mean 'train.lr'?".
 * Functions that can fail on user input take an Err* and return 0 on success, non-zero on error. */
#define ERR_MSG_MAX 512
typedef struct {
    char msg[ERR_MSG_MAX];
} Err;

/* Formats into err->msg (err may be NULL: then the message is dropped). Always returns -1, so a
 * caller can write `return err_set(err, "...")`. */
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A registry's names: the i-th name (i >= 0), or NULL past the last one. Every registry of named
 * plug-ins (heads, text towers, objectives, losses, datasets, ...) exposes one, and the spec, its
 * help and the "valid:" lists of error messages read the names through it, never a copy. */
typedef const char *(*NameFn)(int i);
/* Index of `name` among fn's names, or -1 (name may be NULL). */
int names_find(NameFn fn, const char *name);
/* "a, b, c" into out[cap] (cut at cap - 1). */
void names_join(char *out, size_t cap, NameFn fn);
/* err = "unknown <what> '<got>'; valid: a, b, c". Returns -1, like err_set. */
int err_unknown_name(Err *err, const char *what, const char *got, NameFn fn);

#endif
