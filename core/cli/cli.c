/* cli.c — the argument parser every subcommand uses, run ids (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

void cli_catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a write or read the signal lands in carries on; the step ends normally */
    CHECK(sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0, "sigaction failed");
}

const volatile sig_atomic_t *cli_stop_flag(void) { return &stop_signal; }

int cli_parse_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_number(const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static const CliOpt *find_opt(const CliSpec *spec, const char *name) {
    for (int i = 0; i < spec->n_opts; i++)
        if (!strcmp(spec->opts[i].name, name)) return &spec->opts[i];
    return NULL;
}

/* Stores the value of o (argv word v); 0, or -1 after printing the one-line error. */
static int set_value(const CliSpec *spec, const CliOpt *o, const char *v) {
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = 1; return 0;
    case CLI_STRING: *(const char **)o->dest = v; return 0;
    case CLI_INT:
        if (!cli_parse_long(v, (long)o->min, (long)o->max, (long *)o->dest)) return 0;
        fprintf(stderr, "cliplab %s: %s '%s' is not an integer in [%ld, %ld]\n", spec->command, o->name, v,
                (long)o->min, (long)o->max);
        return -1;
    case CLI_NUMBER:
        if (!parse_number(v, o->min, o->max, (double *)o->dest)) return 0;
        fprintf(stderr, "cliplab %s: %s '%s' is not a number in [%g, %g]\n", spec->command, o->name, v, o->min, o->max);
        return -1;
    }
    return -1;
}

int cli_parse(const CliSpec *spec, int argc, char **argv, const char **pos, int *n_pos) {
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(spec->usage, stdout);
            return 0;
        }
        if (a[0] != '-' || a[1] == 0) {
            if (spec->max_pos >= 0 && *n_pos >= spec->max_pos) {
                fprintf(stderr, "cliplab %s: unexpected argument '%s' (see cliplab %s --help)\n", spec->command, a,
                        spec->command);
                return 1;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        const CliOpt *o = find_opt(spec, a);
        if (!o) {
            fprintf(stderr, "cliplab %s: unknown option '%s' (see cliplab %s --help)\n", spec->command, a, spec->command);
            return 1;
        }
        if (o->kind != CLI_FLAG && i + 1 >= argc) {
            fprintf(stderr, "cliplab %s: %s needs a value\n", spec->command, a);
            return 1;
        }
        if (set_value(spec, o, o->kind == CLI_FLAG ? NULL : argv[++i])) return 1;
    }
    if (*n_pos < spec->min_pos) {
        fputs(spec->usage, stderr);
        return 1;
    }
    return CLI_CONTINUE;
}

static int run_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._,=+-", c);
}

bool cli_run_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > RUN_ID_MAX || id[0] == '.') return false;
    for (size_t i = 0; i < n; i++)
        if (!run_id_char(id[i])) return false;
    return true;
}

/* Appends "_" (unless first) and s with characters outside the run-id set replaced by '-'. */
static void append_part(char *buf, size_t cap, size_t *len, const char *s) {
    if (*len && *len + 1 < cap) buf[(*len)++] = '_';
    for (; *s && *len + 1 < cap; s++) buf[(*len)++] = run_id_char(*s) ? *s : '-';
    buf[*len] = 0;
}

/* 64-bit FNV-1a: a stable hash of the full id, for ids cut to RUN_ID_MAX. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void cli_default_run_id(char *out, size_t cap, const char *name, int seed, const char *const *overrides,
                        int n_overrides) {
    size_t full_cap = strlen(name) + 32;
    for (int i = 0; i < n_overrides; i++) full_cap += strlen(overrides[i]) + 1;
    char *full = mallocCheck(full_cap), seed_part[32];
    size_t len = 0;
    full[0] = 0;
    append_part(full, full_cap, &len, name);
    for (int i = 0; i < n_overrides; i++)
        if (strncmp(overrides[i], "seed=", 5) && strncmp(overrides[i], "name=", 5))
            append_part(full, full_cap, &len, overrides[i]);
    snprintf(seed_part, sizeof seed_part, "seed=%d", seed);
    append_part(full, full_cap, &len, seed_part);
    size_t max = cap - 1 < RUN_ID_MAX ? cap - 1 : RUN_ID_MAX;
    if (len <= max) snprintf(out, cap, "%s", full);
    else snprintf(out, cap, "%.*s_%016" PRIx64, (int)(max - 17), full, fnv1a(full));
    free(full);
}
