/* fuzz_util.h — what the libFuzzer targets share: a private scratch folder, writing inputs to
 * files, copying the tree's experiment files next to them, capturing what the code under test
 * prints on stderr, and the oracles every target applies to user-input errors.
 *
 * An oracle failure prints "fuzz oracle: ..." and abort()s, so libFuzzer saves the input like a
 * sanitizer finding. A CHECK failure (exit 2) on user input is a finding too: libFuzzer reports
 * "fuzz target exited". Deliberately left out: anything specific to one target.
 */
#ifndef CLIPLAB_FUZZ_UTIL_H
#define CLIPLAB_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"

#ifndef FUZZ_TREE
#error "FUZZ_TREE (the source tree, for experiments/) must be defined by the Makefile"
#endif

static char fuzz_dir[512]; /* this process's scratch folder */

static inline __attribute__((noreturn, format(printf, 1, 2))) void fuzz_fail(const char *fmt, ...);

/* ---- stderr capture: cliplab code prints through the `stderr` FILE*, sanitizers write to fd 2,
 * so swapping the FILE* captures the former and never hides the latter. */
static FILE *fuzz_real_stderr;
static char *fuzz_captured;
static size_t fuzz_captured_len;

static inline void fuzz_capture_begin(void) {
    fflush(stderr);
    free(fuzz_captured);
    fuzz_captured = NULL;
    fuzz_real_stderr = stderr;
    stderr = open_memstream(&fuzz_captured, &fuzz_captured_len);
    if (!stderr) {
        stderr = fuzz_real_stderr;
        fuzz_real_stderr = NULL;
        fuzz_fail("open_memstream failed");
    }
}

/* Ends the capture; returns what was printed ("" if nothing), valid until the next begin. */
static inline const char *fuzz_capture_end(void) {
    if (!fuzz_real_stderr) return "";
    fclose(stderr);
    stderr = fuzz_real_stderr;
    fuzz_real_stderr = NULL;
    return fuzz_captured ? fuzz_captured : "";
}

static inline void fuzz_fail(const char *fmt, ...) {
    const char *captured = fuzz_capture_end();
    if (captured[0]) fprintf(stderr, "captured stderr:\n%s\n", captured);
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz oracle: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* A CHECK (exit 2) inside a capture must still show its message before libFuzzer reports the
 * exit; atexit handlers run last-registered first, so this runs before libFuzzer's. */
static inline void fuzz_flush_capture_at_exit(void) {
    const char *captured = fuzz_capture_end();
    if (captured[0]) fputs(captured, stderr);
}

static inline int fuzz_rm(const char *path) {
    DIR *d = opendir(path);
    if (!d) return unlink(path);
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        fuzz_rm(sub);
    }
    closedir(d);
    return rmdir(path);
}

static inline void fuzz_cleanup(void) {
    if (fuzz_dir[0]) fuzz_rm(fuzz_dir);
}

static inline void fuzz_copy_experiments(void);

/* Creates the scratch folder (under $TMPDIR or /tmp), removed at exit; with `experiments`, copies
 * the tree's experiment files into it (fuzz_copy_experiments). */
static inline void fuzz_init(bool experiments) {
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/cliplab-fuzz-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir)) {
        fuzz_dir[0] = 0;
        fuzz_fail("cannot create a scratch folder");
    }
    atexit(fuzz_cleanup);
    atexit(fuzz_flush_capture_at_exit);
    if (experiments) fuzz_copy_experiments();
}

/* "<scratch>/<rel>" in a static ring of buffers (a few live at once). */
static inline const char *fuzz_path(const char *rel) {
    static char ring[8][1024];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, sizeof ring[0], "%s/%s", fuzz_dir, rel);
    return p;
}

static inline void fuzz_mkdir(const char *rel) {
    if (mkdir(fuzz_path(rel), 0700) && errno != EEXIST) fuzz_fail("cannot create %s", fuzz_path(rel));
}

static inline void fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) fuzz_fail("cannot write %s", path);
}

/* Whole file into a malloc'd, NUL-terminated buffer. */
static inline char *fuzz_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fuzz_fail("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) fuzz_fail("cannot read %s", path);
    fclose(f);
    buf[len] = 0;
    *n = (size_t)len;
    return buf;
}

/* Copies the tree's experiments/ *.yaml into <scratch>/experiments, so inputs can name real bases
 * (`base: contrastive.yaml`, `base: ../experiments/contrastive.yaml`). */
static inline void fuzz_copy_experiments(void) {
    fuzz_mkdir("experiments");
    const char *src = FUZZ_TREE "/experiments";
    DIR *d = opendir(src);
    if (!d) fuzz_fail("cannot read %s", src);
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        char from[1024], to[300];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "experiments/%s", e->d_name);
        size_t n;
        char *text = fuzz_read(from, &n);
        fuzz_write(fuzz_path(to), text, n);
        free(text);
    }
    closedir(d);
}

/* Spec inputs carry an optional second file after this separator: experiments/b.yaml. */
#define FUZZ_BASE_SEP "\n%%base%%\n"

/* Writes the input's first part to <scratch>/<rel> and its second part (if any) to
 * experiments/b.yaml, which is removed otherwise; returns the first file's path. */
static inline const char *fuzz_write_with_base(const uint8_t *data, size_t size, const char *rel) {
    size_t m = strlen(FUZZ_BASE_SEP);
    const uint8_t *hit = size >= m ? memmem(data, size, FUZZ_BASE_SEP, m) : NULL;
    const char *path = fuzz_path(rel), *base_path = fuzz_path("experiments/b.yaml");
    fuzz_write(path, data, hit ? (size_t)(hit - data) : size);
    if (hit) fuzz_write(base_path, hit + m, size - (size_t)(hit - data) - m);
    else unlink(base_path);
    return path;
}

/* The user-input error oracle: one non-empty line, no control characters, starting with one of the
 * NULL-terminated prefixes (the file it names, or "command line"). */
static inline void fuzz_check_error(const Err *err, const char *const *prefixes) {
    const char *m = err->msg;
    if (!m[0]) fuzz_fail("error with an empty message");
    for (const char *p = m; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            fuzz_fail("error message is not one clean line (byte 0x%02x at %zu): %s", (unsigned char)*p,
                      (size_t)(p - m), m);
    for (int i = 0; prefixes[i]; i++)
        if (!strncmp(m, prefixes[i], strlen(prefixes[i]))) return;
    fuzz_fail("error message does not start with the file or 'command line': %s", m);
}

/* Code that reports through an Err must print nothing itself. */
static inline void fuzz_check_silent(const char *captured, const char *what) {
    if (captured[0]) fuzz_fail("%s printed to stderr instead of returning one line: %s", what, captured);
}

#endif
