/* tuning.c — a tuning stage's candidates per configuration, their scores and flags (see tuning.h). */
#include "log/tuning.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log/runtable.h"

/* Appends to buf [n] at len (cut to fit); returns the new length, at most n - 1. */
static size_t put(char *buf, size_t n, size_t len, const char *fmt, ...) {
    if (len >= n) return n ? n - 1 : 0;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
    len += k > 0 ? (size_t)k : 0;
    return len < n ? len : n - 1;
}

/* Part i of tuned values "k=v; k=v" into out; 0, or -1 past the last part. */
static int values_part(const char *values, int i, char *out, size_t n) {
    for (int k = 0; *values; k++) {
        while (*values == ' ') values++;
        size_t m = strcspn(values, ";");
        if (k == i) {
            snprintf(out, n, "%.*s", (int)m, values);
            return 0;
        }
        values += m + (values[m] == ';');
    }
    return -1;
}

/* The value of key [klen] in tuned values into out; 0, or -1 if the values do not set it. */
static int values_get(const char *values, const char *key, size_t klen, char *out, size_t n) {
    char part[TUNING_VALUES_MAX];
    for (int i = 0; values_part(values, i, part, sizeof part) == 0; i++)
        if (strcspn(part, "=") == klen && strncmp(part, key, klen) == 0 && part[klen] == '=') {
            snprintf(out, n, "%s", part + klen + 1);
            return 0;
        }
    return -1;
}

/* A candidate's configuration: its swept entries minus seed and the keys it tunes. */
static void candidate_key(const char *swept, const char *values, char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    char v[TUNING_VALUES_MAX];
    while (*swept) {
        size_t m = strcspn(swept, ","), klen = strcspn(swept, "=");
        if (klen > m) klen = m;
        int drop = (klen == 4 && strncmp(swept, "seed", 4) == 0) || values_get(values, swept, klen, v, sizeof v) == 0;
        if (!drop) len = put(out, n, len, "%s%.*s", len ? "," : "", (int)m, swept);
        swept += m + (swept[m] == ',');
    }
}

static int find_config(const TuneTable *t, const char *key) {
    for (int c = 0; c < t->n_configs; c++)
        if (strcmp(t->configs[c].key, key) == 0) return c;
    return -1;
}

int tuning_add(TuneTable *t, const char *swept, const char *values, const RunInfo *run) {
    char key[sizeof t->configs->key];
    candidate_key(swept, values, key, sizeof key);
    int c = find_config(t, key);
    if (c < 0) {
        t->configs = reallocCheck(t->configs, (size_t)(t->n_configs + 1) * sizeof *t->configs);
        c = t->n_configs++;
        memset(&t->configs[c], 0, sizeof t->configs[c]);
        snprintf(t->configs[c].key, sizeof t->configs[c].key, "%s", key);
        t->configs[c].chosen = -1;
    }
    TuneConfig *tc = &t->configs[c];
    tc->cand = reallocCheck(tc->cand, (size_t)(tc->n_cand + 1) * sizeof *tc->cand);
    TuneCandidate *k = &tc->cand[tc->n_cand++];
    memset(k, 0, sizeof *k);
    snprintf(k->values, sizeof k->values, "%s", values);
    k->run = run;
    k->score = k->left = NAN;
    if (run && runtable_completed(run)) {
        k->left = runtable_left_chance(run);
        for (int i = 0; i < run->n_summary; i++)
            if (strcmp(run->summary_names[i], t->metric) == 0) {
                k->score = run->summary_values[i];
                k->n = run->summary_counts ? run->summary_counts[i] : 0;
            }
    }
    return c;
}

void tuning_set_applied(TuneConfig *c, const char *applied) {
    c->chosen = -1;
    for (int i = 0; i < c->n_cand && applied[0]; i++)
        if (strcmp(c->cand[i].values, applied) == 0) c->chosen = i;
}

/* A candidate's label: its values "/"-joined ("0.001", "-5/10"), or with keys, its keys. */
static size_t put_label(char *buf, size_t n, size_t len, const char *values, int keys) {
    char part[TUNING_VALUES_MAX];
    for (int i = 0; values_part(values, i, part, sizeof part) == 0; i++) {
        size_t klen = strcspn(part, "=");
        const char *text = keys || !part[klen] ? part : part + klen + 1;
        len = put(buf, n, len, "%s%.*s", i ? "/" : "", (int)(keys ? klen : strlen(text)), text);
    }
    return len;
}

/* Its score, or why it has none. */
static size_t put_score(char *buf, size_t n, size_t len, const TuneCandidate *k) {
    if (!isnan(k->score)) return put(buf, n, len, "%.3f%s", k->score, k->left == 0 ? "~" : "");
    if (!k->run) return put(buf, n, len, "missing");
    return put(buf, n, len, "%s", runtable_completed(k->run) ? "no score" : k->run->status);
}

void tuning_line(const TuneConfig *c, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    const TuneCandidate *ch = c->chosen >= 0 ? &c->cand[c->chosen] : NULL;
    if (!ch) len = put(buf, n, len, "none applied (");
    else if (isnan(ch->score)) len = put(buf, n, len, "%s (", ch->values);
    else if (ch->n > 0) len = put(buf, n, len, "%s (validation %.3f of %ld images; ", ch->values, ch->score, ch->n);
    else len = put(buf, n, len, "%s (validation %.3f; ", ch->values, ch->score);
    char part[TUNING_VALUES_MAX];
    if (c->n_cand && values_part(c->cand[0].values, 1, part, sizeof part) == 0) { /* several keys: name them once */
        len = put_label(buf, n, len, c->cand[0].values, 1);
        len = put(buf, n, len, " ");
    }
    for (int i = 0; i < c->n_cand; i++) {
        len = put(buf, n, len, "%s", i ? ", " : "");
        len = put_label(buf, n, len, c->cand[i].values, 0);
        len = put(buf, n, len, ": ");
        len = put_score(buf, n, len, &c->cand[i]);
        len = put(buf, n, len, "%s", i == c->chosen ? "*" : "");
    }
    put(buf, n, len, ")");
}

/* The "edge of its grid" flag's detail for one tuned key of the chosen candidate: where its value
 * sits among the distinct numeric values offered, appended to buf ("k=v: the lowest of 5 offered");
 * nothing if inside, or if the grid is not numeric or has fewer than 3 values. */
static size_t put_edge(char *buf, size_t n, size_t len, const TuneConfig *c, const char *part) {
    size_t klen = strcspn(part, "=");
    char v[TUNING_VALUES_MAX], *end;
    double chosen = part[klen] ? strtod(part + klen + 1, &end) : NAN, lo = INFINITY, hi = -INFINITY;
    if (isnan(chosen) || *end) return len;
    double *seen = mallocCheck((size_t)c->n_cand * sizeof *seen);
    int distinct = 0, numeric = 1;
    for (int i = 0; i < c->n_cand && numeric; i++) {
        if (values_get(c->cand[i].values, part, klen, v, sizeof v)) continue;
        double x = strtod(v, &end);
        numeric = v[0] && !*end && isfinite(x);
        int j = 0;
        while (j < distinct && seen[j] != x) j++;
        if (j == distinct) seen[distinct++] = x;
        lo = fmin(lo, x);
        hi = fmax(hi, x);
    }
    free(seen);
    if (!numeric || distinct < 3 || (chosen != lo && chosen != hi)) return len;
    return put(buf, n, len, "%s%s: the %s of %d offered", len ? ", " : "", part, chosen == lo ? "lowest" : "highest",
               distinct);
}

/* "chosen value at the edge of its grid (k=v: the lowest of 5 offered, ...)", or nothing. */
static size_t put_edges(char *buf, size_t n, size_t len, const TuneConfig *c) {
    if (c->chosen < 0) return len;
    char part[TUNING_VALUES_MAX], detail[TUNING_LINE_MAX] = "";
    size_t dl = 0;
    for (int i = 0; values_part(c->cand[c->chosen].values, i, part, sizeof part) == 0; i++)
        dl = put_edge(detail, sizeof detail, dl, c, part);
    if (!dl) return len;
    return put(buf, n, len, "%schosen value at the edge of its grid (%s)", len ? "; " : "", detail);
}

void tuning_flags(const TuneConfig *c, char *buf, size_t n) {
    int scored = 0, at_chance = 0, missing = 0, unscored = 0, diverged = 0, failed = 0;
    for (int i = 0; i < c->n_cand; i++) {
        const TuneCandidate *k = &c->cand[i];
        if (!isnan(k->score)) scored++, at_chance += k->left == 0;
        else if (!k->run) missing++;
        else if (runtable_completed(k->run)) unscored++;
        else if (strcmp(k->run->status, "diverged") == 0) diverged++;
        else failed++;
    }
    size_t len = 0;
    buf[0] = '\0';
    if (scored && at_chance == scored) len = put(buf, n, len, "every candidate at chance: the choice is noise");
    len = put_edges(buf, n, len, c);
    if (scored == c->n_cand) return;
    len = put(buf, n, len, "%s%d of %d candidates without a score:", len ? "; " : "", c->n_cand - scored, c->n_cand);
    const char *what[] = {"diverged", "failed", "missing (no run file)", "completed without the tune metric"};
    const int count[] = {diverged, failed, missing, unscored};
    for (int i = 0, first = 1; i < 4; i++) {
        if (!count[i]) continue;
        len = put(buf, n, len, "%s %d %s", first ? "" : ",", count[i], what[i]);
        first = 0;
    }
}

/* One `candidate: <run id>\t<swept>\t<tuned>` line of the plan; -1 if malformed. */
static int add_planned(TuneTable *t, char *line, char *used) {
    char *swept = strchr(line, '\t'), *values = swept ? strchr(swept + 1, '\t') : NULL;
    if (!values) return -1;
    *swept++ = '\0';
    *values++ = '\0';
    const RunInfo *run = NULL;
    for (int i = 0; i < t->n_runs && !run; i++)
        if (strcmp(t->runs[i].run_id, line) == 0) run = &t->runs[i], used[i] = 1;
    tuning_add(t, swept, values, run);
    return 0;
}

/* The plan of <tdir>/ablation.txt: the metric first, then the candidates (which need it). */
static void read_plan(TuneTable *t, const char *tdir, char *used) {
    char path[PATH_MAX + 16], *line = NULL;
    size_t cap = 0;
    snprintf(path, sizeof path, "%s/ablation.txt", tdir);
    const size_t metric_len = TUNING_PREFIX_LEN(TUNING_PLAN_METRIC), cand_len = TUNING_PREFIX_LEN(TUNING_PLAN_CANDIDATE);
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = fopen(path, "r");
        for (int no = 1; f && getline(&line, &cap, f) > 0; no++) {
            line[strcspn(line, "\n")] = '\0';
            if (pass == 0 && strncmp(line, TUNING_PLAN_METRIC, metric_len) == 0)
                snprintf(t->metric, sizeof t->metric, "%s", line + metric_len);
            if (pass == 1 && strncmp(line, TUNING_PLAN_CANDIDATE, cand_len) == 0) {
                t->planned = 1;
                if (add_planned(t, line + cand_len, used))
                    fprintf(stderr, "warning: %s:%d: not a 'candidate: <run id>\\t<swept>\\t<tuned>' line; ignored\n", path, no);
            }
        }
        if (f) fclose(f);
    }
    free(line);
}

int tuning_read(const char *dir, TuneTable *t, Err *err) {
    memset(t, 0, sizeof *t);
    char tdir[PATH_MAX];
    struct stat st;
    snprintf(tdir, sizeof tdir, "%s/tune", dir);
    if (stat(tdir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    if (report_scan(tdir, &t->runs, &t->n_runs, err)) return -1;
    char *used = callocCheck(t->n_runs ? (size_t)t->n_runs : 1, 1);
    read_plan(t, tdir, used);
    for (int i = 0; i < t->n_runs; i++) {
        if (!t->planned) tuning_add(t, t->runs[i].swept, t->runs[i].tuned, &t->runs[i]);
        else t->unplanned += !used[i];
    }
    free(used);
    return 0;
}

static void print_header(FILE *f, const TuneTable *t) {
    fprintf(f, "\ntuned per configuration (tuning stage: one unreported seed; each candidate's %s on the validation "
               "sets; * applied, ~ never left chance):\n", t->metric[0] ? t->metric : "score");
    if (!t->metric[0] && t->n_configs)
        fprintf(f, "  (the tune metric is not recorded in tune/ablation.txt: no scores)\n");
    if (!t->planned && t->n_configs)
        fprintf(f, "  (the candidate list is not recorded in tune/ablation.txt: the run files found are shown, and "
                   "missing candidates cannot be counted)\n");
    if (t->unplanned) fprintf(f, "  (%d run files in tune/ are not in the recorded plan: ignored)\n", t->unplanned);
}

void tuning_print(FILE *f, TuneTable *t, const RunInfo *runs, int n) {
    RunTable rt;
    runtable_build(&rt, runs, n);
    char line[TUNING_LINE_MAX], flags[TUNING_LINE_MAX];
    for (int c = 0, header = 0; c < rt.n_configs; c++) {
        const char *key = rt.configs[c].key, *applied = runs[rt.configs[c].runs[0]].tuned;
        int k = find_config(t, key);
        if (!applied[0] && k < 0) continue;
        if (!header++) print_header(f, t);
        if (k < 0) {
            fprintf(f, "  %s: %s (its candidates are not in tune/)\n", key[0] ? key : "(all)", applied);
            continue;
        }
        tuning_set_applied(&t->configs[k], applied);
        tuning_line(&t->configs[k], line, sizeof line);
        tuning_flags(&t->configs[k], flags, sizeof flags);
        if (applied[0] && t->configs[k].chosen < 0)
            fprintf(f, "  %s: applied %s, which is not among its candidates in tune/\n", key[0] ? key : "(all)", applied);
        fprintf(f, "  %s: %s\n", key[0] ? key : "(all)", line);
        if (flags[0]) fprintf(f, "    (!) %s\n", flags);
    }
    runtable_free(&rt);
}

void tuning_free(TuneTable *t) {
    for (int c = 0; c < t->n_configs; c++) free(t->configs[c].cand);
    free(t->configs);
    report_free(t->runs, t->n_runs);
    memset(t, 0, sizeof *t);
}
