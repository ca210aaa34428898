/* sweep_cli.c — `cliplab sweep ABLATION.yaml [--profile P] [--dry-run] [--resume] [--only ID]
 * [--force] [--out DIR]`: runs every run of an ablation, one after the other.
 *
 * Results go to results/<name> for the quick profile and results/<name>-<profile> otherwise, so
 * budgets of different profiles never mix. A finished run file is never overwritten without
 * --force; --resume skips finished runs and continues unfinished ones from their checkpoint. A
 * diverged or failed run is recorded and the sweep goes on. DIR/ablation.txt records the question,
 * the report metrics and the axes for `cliplab report`.
 * Deliberately left out: running several runs at once (each run already uses every core).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/timer.h"
#include "log/h5io.h"
#include "log/report.h"
#include "spec/sweep.h"
#include "train/trainer.h"


/* "a=1; b=x,y; seed=2" -> "a=1,b=x y,seed=2": the log's swept attribute is comma-separated, so
 * commas inside list values become spaces. */
static void swept_for_log(const char *in, char *out, size_t n) {
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < n; p++) {
        if (p[0] == ';' && p[1] == ' ') {
            out[o++] = ',';
            p++;
        } else out[o++] = *p == ',' ? ' ' : *p;
    }
    out[o] = 0;
}

static int write_ablation_info(const char *dir, const Sweep *s) {
    char path[1100];
    snprintf(path, sizeof path, "%s/ablation.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "name: %s\nquestion: %s\nprofile: %s\nreport: ", s->name, s->question, s->profile);
    for (int i = 0; i < s->n_report; i++) fprintf(f, "%s%s", i ? "," : "", s->report[i]);
    fprintf(f, "\naxes: ");
    for (int i = 0; i < s->n_axes; i++) fprintf(f, "%s%s", i ? "," : "", s->axes[i]);
    /* the first axis's value in the first run of the grid: what the others are compared against */
    char baseline[128] = "", key[SWEEP_KEY_MAX + 2];
    snprintf(key, sizeof key, "%s=", s->n_axes ? s->axes[0] : "");
    const char *p = s->n_runs && s->n_axes ? strstr(s->runs[0].swept, key) : NULL;
    if (p) {
        /* in the log's form (commas inside list values become spaces), as report compares them */
        char raw[128];
        snprintf(raw, sizeof raw, "%.*s", (int)strcspn(p + strlen(key), ";"), p + strlen(key));
        swept_for_log(raw, baseline, sizeof baseline);
    }
    fprintf(f, "\nbaseline: %s\nsource: %s\n", baseline, s->path);
    return fclose(f);
}

static int is_valid_run(const RunInfo *runs, int n, const char *id) {
    for (int i = 0; i < n; i++)
        if (!strcmp(runs[i].run_id, id)) return 1;
    return 0;
}

/* The overall bar, printed as its own line above each run's progress: runs done, elapsed, ETA. */
static void print_sweep_bar(int done, int total, double elapsed) {
    char bar[31];
    int filled = total > 0 ? 30 * done / total : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
    bar[30] = 0;
    double eta = done > 0 ? elapsed / done * (total - done) : 0;
    fprintf(stderr, "sweep [%s] %d/%d runs done, %02d:%02d elapsed, ETA %02d:%02d\n", bar, done, total,
            (int)elapsed / 60, (int)elapsed % 60, (int)eta / 60, (int)eta % 60);
}

enum { SWEEP_EXIT_COMPLETED = 0, SWEEP_EXIT_DIVERGED = 3, SWEEP_EXIT_FAILED = 1 };

/* Cores / jobs, at least 1. */
static int sweep_threads_per_job(int jobs) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores > 0 ? cores : 1) / jobs;
    return t > 0 ? t : 1;
}

/* Runs one run of the sweep; returns a SWEEP_EXIT_* code (also the exit status of a --jobs child). */
static int sweep_one_run(SweepRun *r, const char *out, int resume, int k, int n_todo) {
    char label[320], swept[SWEEP_SWEPT_MAX];
    Err err;
    snprintf(label, sizeof label, "[%d/%d] %s", k, n_todo, r->id);
    swept_for_log(r->swept, swept, sizeof swept);
    RunOptions opt = {.results_dir = out, .run_id = r->id, .swept = swept, .resume = resume, .progress_label = label};
    RunOutcome o;
    if (train_run(&r->config, &opt, &o, &err)) {
        fprintf(stderr, "%s: failed: %s\n", r->id, err.msg);
        return SWEEP_EXIT_FAILED;
    }
    return strcmp(o.status, "completed") ? SWEEP_EXIT_DIVERGED : SWEEP_EXIT_COMPLETED;
}

int sweep_main(int argc, char **argv) {
    const char *file = NULL, *profile = "quick", *only = NULL, *out_arg = NULL;
    int dry = 0, resume = 0, force = 0, jobs = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--profile") && i + 1 < argc) profile = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_arg = argv[++i];
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc) {
            jobs = atoi(argv[++i]);
            if (jobs < 1 || jobs > 64) {
                fprintf(stderr, "cliplab sweep: --jobs must be 1..64, not '%s'\n", argv[i]);
                return 1;
            }
        }
        else if (!strcmp(argv[i], "--dry-run")) dry = 1;
        else if (!strcmp(argv[i], "--resume")) resume = 1;
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "cliplab sweep: unknown option '%s'\n", argv[i]);
            return 1;
        } else if (!file) file = argv[i];
        else {
            fprintf(stderr, "cliplab sweep: unexpected argument '%s'\n", argv[i]);
            return 1;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: cliplab sweep ABLATION.yaml [--profile smoke|quick|full] [--dry-run] [--resume] "
                        "[--only RUN_ID] [--force] [--out DIR] [--jobs N]\n");
        return 1;
    }
    Sweep s;
    Err err;
    if (sweep_load(file, profile, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (dry) {
        sweep_print_dry_run(stdout, &s);
        sweep_free(&s);
        return 0;
    }
    if (s.n_runs > SWEEP_CONFIRM_RUNS && !force) {
        fprintf(stderr, "cliplab sweep: %s expands to %d runs (more than %d); pass --force to run them all\n", file,
                s.n_runs, SWEEP_CONFIRM_RUNS);
        sweep_free(&s);
        return 1;
    }
    char out[1024];
    if (out_arg) snprintf(out, sizeof out, "%s", out_arg);
    else if (!strcmp(profile, "quick")) snprintf(out, sizeof out, "results/%s", s.name);
    else snprintf(out, sizeof out, "results/%s-%s", s.name, profile);
    if (h5io_mkdirs(out, &err)) {
        fprintf(stderr, "cliplab sweep: %s\n", err.msg);
        sweep_free(&s);
        return 1;
    }
    if (write_ablation_info(out, &s)) {
        fprintf(stderr, "cliplab sweep: cannot write to results folder '%s': %s\n", out, strerror(errno));
        sweep_free(&s);
        return 1;
    }
    RunInfo *done = NULL;
    int n_done = 0;
    if (report_scan(out, &done, &n_done, &err)) {
        fprintf(stderr, "cliplab sweep: %s\n", err.msg);
        sweep_free(&s);
        return 1;
    }
    /* refuse up front to overwrite finished runs, so nothing is lost by a forgotten --resume */
    int n_todo = 0, n_skip = 0, n_blocked = 0;
    for (int i = 0; i < s.n_runs; i++) {
        if (only && strcmp(s.runs[i].id, only)) continue;
        char path[1300];
        snprintf(path, sizeof path, "%s/%s.h5", out, s.runs[i].id);
        if (access(path, F_OK) || force) n_todo++;
        else if (resume && is_valid_run(done, n_done, s.runs[i].id)) n_skip++;
        else if (resume) {
            fprintf(stderr, "cliplab sweep: %s is not a readable cliplab run file; refusing to overwrite it "
                            "without --force\n", path);
            n_blocked++;
        } else {
            fprintf(stderr, "cliplab sweep: %s already exists; use --resume to skip finished runs or --force to "
                            "overwrite\n", path);
            report_free(done, n_done);
            sweep_free(&s);
            return 1;
        }
    }
    if (only && n_todo + n_skip + n_blocked == 0) {
        fprintf(stderr, "cliplab sweep: no run with id '%s' in %s (see --dry-run)\n", only, file);
        report_free(done, n_done);
        sweep_free(&s);
        return 1;
    }
    fprintf(stderr, "sweep %s (profile %s): %d runs, %d to run, %d already finished -> %s\n", s.name, profile,
            s.n_runs, n_todo, n_skip, out);
    int completed = 0, diverged = 0, failed = n_blocked, k = 0, running = 0;
    if (jobs > 1) progress_force_plain(1); /* interleaved bars would be unreadable */
    double t0 = time_now();
    for (int i = 0; i <= s.n_runs; i++) {
        /* reap a child when all slots are busy, or every child at the end */
        while (running > 0 && (running >= jobs || i == s.n_runs)) {
            int status;
            if (wait(&status) < 0) break;
            running--;
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            if (code == SWEEP_EXIT_COMPLETED) completed++;
            else if (code == SWEEP_EXIT_DIVERGED) diverged++;
            else failed++;
        }
        if (i == s.n_runs) break;
        SweepRun *r = &s.runs[i];
        char path[1300];
        snprintf(path, sizeof path, "%s/%s.h5", out, r->id);
        if (only && strcmp(r->id, only)) continue;
        if (!(access(path, F_OK) || force)) continue;
        k++;
        double elapsed = time_now() - t0;
        int finished = completed + diverged + failed - n_blocked;
        if (finished > 0) print_sweep_bar(finished, n_todo, elapsed);
        if (jobs > 1) {
            if (r->config.train.threads == 0) r->config.train.threads = sweep_threads_per_job(jobs);
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) {
                fprintf(stderr, "%s: failed: cannot fork: %s\n", r->id, strerror(errno));
                failed++;
                continue;
            }
            if (pid > 0) {
                running++;
                continue;
            }
            /* a child outliving a killed sweep would race a later --resume on the same .tmp */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            _exit(sweep_one_run(r, out, resume, k, n_todo));
        }
        int code = sweep_one_run(r, out, resume, k, n_todo);
        if (code == SWEEP_EXIT_COMPLETED) completed++;
        else if (code == SWEEP_EXIT_DIVERGED) diverged++;
        else failed++;
    }
    fprintf(stderr, "sweep %s: %d completed, %d diverged, %d failed, %d skipped (finished before) in %.0f s\n", s.name,
            completed, diverged, failed, n_skip, time_now() - t0);
    report_free(done, n_done);
    sweep_free(&s);
    return failed ? 1 : 0;
}
