/* sweep_cli.c — `cliplab sweep ABLATION.yaml [--profile P] [--dry-run] [--resume] [--only ID]
 * [--force] [--out DIR] [--jobs N]`: runs every run of an ablation, N at a time (default 1).
 *
 * Results go to results/<name> for the quick profile and results/<name>-<profile> otherwise, so
 * budgets of different profiles never mix. A finished run file is never overwritten without
 * --force; --resume skips finished runs and continues unfinished ones from their checkpoint. A
 * diverged or failed run is recorded and the sweep goes on. DIR/ablation.txt records the question,
 * the report metrics and the axes for `cliplab report`.
 * An ablation's tuning stage (sweep.h) runs first, into DIR/tune, like a sweep of its own; its plan
 * goes to DIR/tune/ablation.txt, and each configuration's choice is printed with every candidate's
 * score and the flags of log/tuning.h.
 * The steps: load (and --dry-run), prepare the results folder, tune, plan (refuse to overwrite), execute;
 * sweep_main frees what they built on one path.
 * Under mpirun (build/cliplab-mpi, a world of W ranks) the runs are spread over the ranks: every
 * rank plans the same list, then takes the next unstarted run from a shared ticket counter until
 * none is left, one run at a time with cores/ranks-on-its-machine threads, as a --jobs child would.
 * Rank 0 alone writes the folder's ablation.txt and prints the totals.
 * Deliberately left out: one run spread over a group of ranks inside a sweep (use `run` for that).
 * SIGINT or SIGTERM: the running runs (in process, or the --jobs children, to which the signal is
 * forwarded) finish their step and checkpoint, no further run starts, and the sweep names the
 * unfinished runs, prints the command that resumes it and exits 130 or 143.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/comm.h"
#include "common/timer.h"
#include "log/h5io.h"
#include "log/report.h"
#include "log/tuning.h"
#include "model/model.h"
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

/* The `candidate:` lines of an existing tune plan at path whose run is not one of s's, as one
 * malloc'd string (empty if none): the candidates of another ablation file written into the same
 * folder (efficiency.yaml and efficiency-transformer.yaml), which rewriting the plan must keep. */
static char *other_candidates(const char *path, const Sweep *s) {
    size_t len = 0, cap = 0, n = 0;
    char *keep = NULL, *line = NULL;
    FILE *f = fopen(path, "r");
    while (f && getline(&line, &cap, f) > 0) {
        const size_t prefix = TUNING_PREFIX_LEN(TUNING_PLAN_CANDIDATE);
        if (strncmp(line, TUNING_PLAN_CANDIDATE, prefix)) continue;
        const char *id = line + prefix;
        size_t id_len = strcspn(id, "\t\n");
        int ours = 0;
        for (int i = 0; i < s->n_runs && !ours; i++)
            ours = strlen(s->runs[i].id) == id_len && !strncmp(s->runs[i].id, id, id_len);
        if (ours) continue;
        n = strlen(line);
        keep = reallocCheck(keep, len + n + 1);
        memcpy(keep + len, line, n + 1);
        len += n;
    }
    if (f) fclose(f);
    free(line);
    return keep ? keep : callocCheck(1, 1);
}

/* DIR/ablation.txt for `cliplab report`; with a tuning stage, its metric, and in the tune folder
 * (candidates) one line per candidate, so that report counts the ones without a run file. */
static int write_ablation_info(const char *dir, const Sweep *s, int candidates) {
    char path[1100];
    snprintf(path, sizeof path, "%s/ablation.txt", dir);
    char *others = candidates ? other_candidates(path, s) : NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(others);
        return -1;
    }
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
    for (int i = 0; i < s->n_arms; i++) fprintf(f, "arm: %s\n", s->arms[i]);
    for (int i = 0; i < s->n_ratios; i++) fprintf(f, "ratio: %s\n", s->ratios[i]);
    if (s->tune_metric[0]) fprintf(f, TUNING_PLAN_METRIC "%s\n", s->tune_metric);
    if (others) fputs(others, f);
    free(others);
    for (int i = 0; candidates && i < s->n_runs; i++) {
        char swept[SWEEP_SWEPT_MAX];
        swept_for_log(s->runs[i].swept, swept, sizeof swept);
        fprintf(f, TUNING_PLAN_CANDIDATE "%s\t%s\t%s\n", s->runs[i].id, swept, s->runs[i].tuned);
    }
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

#define SWEEP_MAX_JOBS 64

/* BUSY: another process holds the run or finished it meanwhile (two sweeps on one folder).
 * INTERRUPTED: a stop signal ended the run after a checkpoint. */
enum {
    SWEEP_EXIT_COMPLETED = 0,
    SWEEP_EXIT_DIVERGED = 3,
    SWEEP_EXIT_FAILED = 1,
    SWEEP_EXIT_BUSY = 4,
    SWEEP_EXIT_INTERRUPTED = 5
};
/* How often a --jobs sweep looks for a finished child or a stop signal to forward. */
#define SWEEP_POLL_MS 20

/* Cores / runs at once on this machine (jobs, or ranks), at least 1. */
static int sweep_threads_per_job(int jobs) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores > 0 ? cores : 1) / jobs;
    return t > 0 ? t : 1;
}

/* Runs one run of the sweep; returns a SWEEP_EXIT_* code (also the exit status of a --jobs child). */
static int sweep_one_run(SweepRun *r, const char *out, int resume, int force, int k, int n_todo) {
    char label[320], swept[SWEEP_SWEPT_MAX];
    Err err;
    snprintf(label, sizeof label, "[%d/%d] %s", k, n_todo, r->id);
    swept_for_log(r->swept, swept, sizeof swept);
    RunOptions opt = {.results_dir = out, .run_id = r->id, .swept = swept, .tuned = r->tuned, .resume = resume,
                      .overwrite = force, .progress_label = label, .stop = cli_stop_flag()};
    RunOutcome o;
    int rc = train_run(&r->config, &opt, &o, &err);
    if (rc == TRAIN_BUSY) {
        fprintf(stderr, "%s: skipped: %s\n", r->id, err.msg);
        return SWEEP_EXIT_BUSY;
    }
    if (rc) {
        fprintf(stderr, "%s: failed: %s\n", r->id, err.msg);
        return SWEEP_EXIT_FAILED;
    }
    if (!strcmp(o.status, "interrupted")) return SWEEP_EXIT_INTERRUPTED;
    return strcmp(o.status, "completed") ? SWEEP_EXIT_DIVERGED : SWEEP_EXIT_COMPLETED;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static const char SWEEP_USAGE[] =
    "usage: cliplab sweep ABLATION.yaml [--profile smoke|quick|long|full] [--dry-run] [--resume] [--only RUN_ID] "
    "[--force] [--out DIR] [--jobs N]\n"
    "Runs every run of an ablation (its grid of sweep axes x seeds) into DIR (default results/<name> for\n"
    "the quick profile, results/<name>-<profile> otherwise).\n"
    "  --profile P   budget: smoke (seconds), quick (default, minutes), long (~2 h), full (longest)\n"
    "  --dry-run     list the runs and their resolved specs, run nothing\n"
    "  --resume      skip finished runs, continue unfinished ones from their checkpoints\n"
    "  --only ID     run just this run of the grid\n"
    "  --force       overwrite finished runs; allow grids of more than " STRINGIFY(SWEEP_CONFIRM_RUNS) " runs\n"
    "  --jobs N      runs at once, 1.." STRINGIFY(SWEEP_MAX_JOBS) " (each gets cores/N threads unless the spec sets train.threads)\n";

typedef struct {
    const char *file, *profile, *only;
    int resume, force, jobs;
    int tuning; /* the tuning stage's job: its runs are the candidates */
    const Comm *world; /* the ranks that share the sweep (one process: comm_serial) */
    Sweep s;
    char out[1024];
    RunInfo *done; /* readable run files already in out */
    int n_done;
    int n_todo, n_skip, n_blocked;
    int *todo; /* [n_todo] indices of the runs to run, in grid order (the same on every rank) */
    int completed, diverged, failed, busy; /* busy: held or finished by another process */
    pid_t child_pid[SWEEP_MAX_JOBS]; /* the running --jobs children (0: free slot) and their runs */
    const SweepRun *child_run[SWEEP_MAX_JOBS];
    int forwarded; /* the stop signal was passed on to the children */
    char unfinished[1024]; /* ids of the runs a stop signal interrupted, ", "-separated */
    int n_unfinished;
} SweepJob;

/* Whether run r is to run now: selected by --only, and without a finished file (or --force). */
static int sweep_wants(const SweepJob *j, const SweepRun *r) {
    if (j->only && strcmp(r->id, j->only)) return 0;
    char path[1300];
    snprintf(path, sizeof path, "%s/%s.h5", j->out, r->id);
    return access(path, F_OK) != 0 || j->force;
}

/* The results folder: created, ablation.txt written, the runs already there read. 0 or -1. */
static int sweep_prepare_folder(SweepJob *j, const char *out_arg) {
    Err err;
    if (out_arg) snprintf(j->out, sizeof j->out, "%s", out_arg);
    else if (!strcmp(j->profile, "quick")) snprintf(j->out, sizeof j->out, "results/%s", j->s.name);
    else snprintf(j->out, sizeof j->out, "results/%s-%s", j->s.name, j->profile);
    int failed = 0;
    if (j->world->rank == 0) { /* one writer; the other ranks wait for the folder */
        if (h5io_mkdirs(j->out, &err)) {
            fprintf(stderr, "cliplab sweep: %s\n", err.msg);
            failed = 1;
        } else if (write_ablation_info(j->out, &j->s, j->tuning)) {
            fprintf(stderr, "cliplab sweep: cannot write to results folder '%s': %s\n", j->out, strerror(errno));
            failed = 1;
        }
    }
    if (j->world->ops->any(j->world, failed)) return -1;
    if (report_scan(j->out, &j->done, &j->n_done, &err)) {
        fprintf(stderr, "cliplab sweep: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Counts what is to run, finished or blocked; refuses up front to overwrite finished runs, so
 * nothing is lost by a forgotten --resume. 0 or -1. */
static int sweep_plan(SweepJob *j) {
    j->todo = reallocCheck(j->todo, (size_t)(j->s.n_runs + 1) * sizeof *j->todo);
    for (int i = 0; i < j->s.n_runs; i++) {
        const SweepRun *r = &j->s.runs[i];
        if (j->only && strcmp(r->id, j->only)) continue;
        char path[1300];
        snprintf(path, sizeof path, "%s/%s.h5", j->out, r->id);
        if (sweep_wants(j, r)) j->todo[j->n_todo++] = i;
        else if (j->resume && is_valid_run(j->done, j->n_done, r->id)) j->n_skip++;
        else if (j->resume) {
            fprintf(stderr, "cliplab sweep: %s is not a readable cliplab run file; refusing to overwrite it "
                            "without --force\n", path);
            j->n_blocked++;
        } else {
            fprintf(stderr, "cliplab sweep: %s already exists; use --resume to skip finished runs or --force to "
                            "overwrite\n", path);
            return -1;
        }
    }
    if (j->only && j->n_todo + j->n_skip + j->n_blocked == 0) {
        fprintf(stderr, "cliplab sweep: no run with id '%s' in %s (see --dry-run)\n", j->only, j->file);
        return -1;
    }
    j->failed = j->n_blocked;
    return 0;
}

static void sweep_count(SweepJob *j, const SweepRun *r, int code) {
    if (code == SWEEP_EXIT_INTERRUPTED) {
        size_t n = strlen(j->unfinished);
        snprintf(j->unfinished + n, sizeof j->unfinished - n, "%s%s", j->n_unfinished++ ? ", " : "", r->id);
    } else if (code == SWEEP_EXIT_COMPLETED) j->completed++;
    else if (code == SWEEP_EXIT_DIVERGED) j->diverged++;
    else if (code == SWEEP_EXIT_BUSY) j->busy++;
    else j->failed++;
}

/* Waits for one --jobs child and counts its outcome; 0, or -1 if there is none. Meanwhile a stop
 * signal is forwarded to every running child (the handler itself does no work). */
static int sweep_reap(SweepJob *j) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) == 0) {
        int sig = *cli_stop_flag();
        if (sig && !j->forwarded) {
            for (int i = 0; i < SWEEP_MAX_JOBS; i++)
                if (j->child_pid[i] > 0) kill(j->child_pid[i], sig);
            j->forwarded = 1;
        }
        nanosleep(&(struct timespec){0, SWEEP_POLL_MS * 1000000L}, NULL);
    }
    if (pid < 0) return -1;
    for (int i = 0; i < SWEEP_MAX_JOBS; i++)
        if (j->child_pid[i] == pid) {
            sweep_count(j, j->child_run[i], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            j->child_pid[i] = 0;
        }
    return 0;
}

/* Starts run r in a forked child; 1 if started, 0 if it failed (counted). */
static int sweep_fork(SweepJob *j, SweepRun *r, int k) {
    if (r->config.train.threads == 0) r->config.train.threads = sweep_threads_per_job(j->jobs);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: failed: cannot fork: %s\n", r->id, strerror(errno));
        j->failed++;
        return 0;
    }
    if (pid > 0) {
        for (int i = 0; i < SWEEP_MAX_JOBS; i++)
            if (j->child_pid[i] == 0) {
                j->child_pid[i] = pid;
                j->child_run[i] = r;
                break;
            }
        return 1;
    }
    /* a child outliving a killed sweep would race a later --resume on the same .tmp */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    _exit(sweep_one_run(r, j->out, j->resume, j->force, k, j->n_todo));
}

/* Over ranks: each takes the next planned run from the shared tickets until none is left; then
 * the outcomes are summed, so every rank returns the same totals. Every rank must have planned
 * the same list, and none may start a run before all have planned (the caller's `any`). */
static void sweep_execute_ranks(SweepJob *j) {
    const Comm *w = j->world;
    progress_force_plain(1);
    for (long t; !*cli_stop_flag() && (t = w->ops->ticket(w)) < j->n_todo;) {
        SweepRun *r = &j->s.runs[j->todo[t]];
        if (r->config.train.threads == 0) r->config.train.threads = sweep_threads_per_job(w->local_size);
        fprintf(stderr, "rank %d: run %ld/%d %s\n", w->rank, t + 1, j->n_todo, r->id);
        sweep_count(j, r, sweep_one_run(r, j->out, j->resume, j->force, (int)t + 1, j->n_todo));
    }
    w->ops->ticket_reset(w);
    double counts[4] = {j->completed, j->diverged, j->failed - j->n_blocked, j->busy};
    w->ops->allreduce_f64(w, counts, 4);
    j->completed = (int)counts[0];
    j->diverged = (int)counts[1];
    j->failed = (int)counts[2] + j->n_blocked;
    j->busy = (int)counts[3];
}

/* Runs the planned runs, jobs at a time (or spread over the ranks), and counts their outcomes. */
static void sweep_execute(SweepJob *j) {
    int running = 0;
    if (j->jobs > 1) progress_force_plain(1); /* interleaved bars would be unreadable */
    double t0 = time_now();
    if (j->world->size > 1) sweep_execute_ranks(j);
    for (int k = 0; j->world->size == 1 && k < j->n_todo; k++) {
        SweepRun *r = &j->s.runs[j->todo[k]];
        while (running >= j->jobs && sweep_reap(j) == 0) running--;
        if (*cli_stop_flag()) break;
        int finished = j->completed + j->diverged + j->failed + j->busy - j->n_blocked;
        if (finished > 0) print_sweep_bar(finished, j->n_todo, time_now() - t0);
        if (j->jobs > 1) running += sweep_fork(j, r, k + 1);
        else sweep_count(j, r, sweep_one_run(r, j->out, j->resume, j->force, k + 1, j->n_todo));
    }
    while (running > 0 && sweep_reap(j) == 0) running--;
    if (j->world->rank == 0)
        fprintf(stderr,
                "sweep %s: %d completed, %d diverged, %d failed, %d skipped (finished before), %d taken by another "
                "process in %.0f s\n",
                j->s.name, j->completed, j->diverged, j->failed, j->n_skip, j->busy, time_now() - t0);
    int sig = *cli_stop_flag();
    if (sig) { /* over ranks, each names the runs it was running */
        int not_started =
            j->n_todo - (j->completed + j->diverged + j->failed + j->busy - j->n_blocked) - j->n_unfinished;
        fprintf(stderr, "sweep %s: interrupted by %s: unfinished (checkpointed): %s; not started: %d; resume with: ",
                j->s.name, sig == SIGTERM ? "SIGTERM" : "SIGINT", j->n_unfinished ? j->unfinished : "none", not_started);
        cli_print_resume_command(stderr);
        fputc('\n', stderr);
    }
}

/* Scores the finished candidates of the tuning job t (log/tuning.h), applies each configuration's
 * best (sweep_tune_apply) and prints one "tuned" line per configuration with every candidate's
 * score and the flags that make a choice untrustworthy. 0 or -1. */
static int sweep_tune_choose(SweepJob *j, const SweepJob *t) {
    TuneTable tt = {0};
    Err err;
    if (report_scan(t->out, &tt.runs, &tt.n_runs, &err)) {
        fprintf(stderr, "cliplab sweep: %s\n", err.msg);
        return -1;
    }
    snprintf(tt.metric, sizeof tt.metric, "%s", j->s.tune_metric);
    const int n = t->s.n_runs;
    double *score = mallocCheck((size_t)n * sizeof *score);
    int *config = mallocCheck((size_t)n * sizeof *config);
    for (int i = 0; i < n; i++) {
        const SweepRun *cand = &t->s.runs[i];
        const RunInfo *run = NULL;
        for (int r = 0; r < tt.n_runs && !run; r++)
            if (!strcmp(tt.runs[r].run_id, cand->id)) run = &tt.runs[r];
        char swept[SWEEP_SWEPT_MAX];
        swept_for_log(cand->swept, swept, sizeof swept);
        config[i] = tuning_add(&tt, swept, cand->tuned, run);
        const TuneConfig *c = &tt.configs[config[i]];
        score[i] = c->cand[c->n_cand - 1].score;
    }
    sweep_tune_apply(&j->s, score);
    char line[TUNING_LINE_MAX], flags[TUNING_LINE_MAX];
    for (int i = 0; i < n; i++) /* each tuned configuration once */
        if (i == 0 || t->s.runs[i].tune_config != t->s.runs[i - 1].tune_config) {
            const SweepRun *r = &j->s.runs[t->s.runs[i].tune_config * j->s.seeds];
            TuneConfig *c = &tt.configs[config[i]];
            tuning_set_applied(c, r->tuned);
            tuning_line(c, line, sizeof line);
            tuning_flags(c, flags, sizeof flags);
            fprintf(stderr, "tuned %s: %s%s%s%s\n", r->id, r->tuned[0] ? "" : "spec kept, ", line, flags[0] ? " (!) " : "",
                    flags);
        }
    free(config);
    free(score);
    tuning_free(&tt);
    return 0;
}

/* The tuning stage: the candidates run like a sweep of their own into <out>/tune (resumable the
 * same way), then each configuration takes its best candidate by the validation metric. A failed
 * candidate scores NaN; a configuration whose candidates all failed keeps its spec. 0 or -1. */
static int sweep_tune(SweepJob *j) {
    SweepJob t = {.file = j->file, .profile = j->profile, .resume = j->resume, .force = j->force, .jobs = j->jobs,
                  .tuning = 1, .world = j->world};
    t.s = j->s; /* the same name and question; the candidates are its runs */
    t.s.runs = j->s.tune_runs;
    t.s.n_runs = j->s.n_tune_runs;
    t.s.tune_runs = NULL;
    t.s.n_tune_runs = 0;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/tune", j->out);
    int rc = sweep_prepare_folder(&t, dir) || t.world->ops->any(t.world, sweep_plan(&t) != 0) ? -1 : 0;
    if (!rc) {
        fprintf(stderr, "tuning stage of %s: %d candidates on the validation sets, maximising %s; %d to run -> %s\n",
                j->s.name, t.s.n_runs, j->s.tune_metric, t.n_todo, t.out);
        sweep_execute(&t);
        if (*cli_stop_flag()) rc = -1;
    }
    if (!rc) rc = sweep_tune_choose(j, &t);
    report_free(t.done, t.n_done);
    free(t.todo);
    return rc;
}

/* Every run of the grid (tuning candidates included) passes what a run checks before it builds
 * (model_check), so no run starts when a later one could not: 0, or -1 after one line naming the
 * first run that fails. */
static int sweep_check_runs(const SweepJob *j) {
    const SweepRun *lists[2] = {j->s.tune_runs, j->s.runs};
    const int counts[2] = {j->s.n_tune_runs, j->s.n_runs};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < counts[l]; i++) {
            Err err;
            if (j->only && l == 1 && strcmp(lists[l][i].id, j->only)) continue;
            if (model_check(&lists[l][i].config, &err) == 0) continue;
            fprintf(stderr, "cliplab sweep: %s: run %s%s: %s\n", j->file, l == 0 ? "tune/" : "", lists[l][i].id, err.msg);
            return -1;
        }
    return 0;
}

/* After the sweep is loaded: --dry-run, or the runs. Returns the exit status. */
static int sweep_run_all(SweepJob *j, int dry, const char *out_arg) {
    if (dry) {
        if (j->world->rank == 0) sweep_print_dry_run(stdout, &j->s);
        return 0;
    }
    if (j->s.n_runs > SWEEP_CONFIRM_RUNS && !j->force) {
        fprintf(stderr, "cliplab sweep: %s expands to %d runs (more than %d); pass --force to run them all\n", j->file,
                j->s.n_runs, SWEEP_CONFIRM_RUNS);
        return 1;
    }
    if (sweep_check_runs(j)) return 1;
    if (sweep_prepare_folder(j, out_arg)) return 1;
    if (j->s.n_tune_runs && sweep_tune(j)) return *cli_stop_flag() ? 128 + *cli_stop_flag() : 1;
    if (j->world->ops->any(j->world, sweep_plan(j) != 0)) return 1; /* and no rank starts before all planned */
    if (j->world->rank == 0)
        fprintf(stderr, "sweep %s (profile %s): %d runs, %d to run, %d already finished -> %s%s\n", j->s.name,
                j->profile, j->s.n_runs, j->n_todo, j->n_skip, j->out, j->world->size > 1 ? " over the ranks" : "");
    sweep_execute(j);
    if (*cli_stop_flag()) return 128 + *cli_stop_flag();
    return j->failed ? 1 : 0;
}

int sweep_main(int argc, char **argv) {
    SweepJob j = {.profile = "quick", .world = cli_world()};
    const char *out_arg = NULL, *pos[1];
    int dry = 0, n_pos;
    long jobs = 1;
    const CliOpt opts[] = {
        CLI_OPT_STRING("--profile", &j.profile),
        CLI_OPT_STRING("--only", &j.only),
        CLI_OPT_STRING("--out", &out_arg),
        CLI_OPT_INT("--jobs", &jobs, 1, SWEEP_MAX_JOBS),
        CLI_OPT_FLAG("--dry-run", &dry),
        CLI_OPT_FLAG("--resume", &j.resume),
        CLI_OPT_FLAG("--force", &j.force),
    };
    const CliSpec spec = {"sweep", SWEEP_USAGE, opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    cli_catch_stop_signals();
    j.file = pos[0];
    j.jobs = (int)jobs;
    if (j.jobs > 1 && j.world->size > 1) {
        if (j.world->rank == 0) fprintf(stderr, "cliplab sweep: --jobs does not combine with mpirun: each rank runs one run at a time\n");
        return 1;
    }
    Err err;
    if (sweep_load(j.file, j.profile, &j.s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    rc = sweep_run_all(&j, dry, out_arg);
    report_free(j.done, j.n_done);
    free(j.todo);
    sweep_free(&j.s);
    return rc;
}
