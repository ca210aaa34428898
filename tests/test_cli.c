/* test_cli.c — the cliplab binary driven as a user drives it (fork/exec, stdout and stderr
 * captured): spec errors as one line and exit 1, sweep dry runs, a tiny sweep end to end with its
 * report, kill -9 + --resume bitwise equal to an uninterrupted run, a sweep killed between runs,
 * results-folder faults (unwritable, corrupt and foreign files), usage errors, a missing dataset.
 *
 * The binary is $CLIPLAB (build/cliplab by default; build/san/cliplab under SAN=1), run from the
 * repository root. Every run uses train.threads=1: one thread is what makes a resumed run bitwise
 * equal to an uninterrupted one, and at these sizes it is also the fastest.
 * Deliberately left out: what the library tests already cover in depth (spec schema details, the
 * report's arithmetic, log layout); here each behaviour is checked once through the CLI.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <hdf5.h>

#include "cli/cli.h"
#include "log/h5io.h"
#include "log/report.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static char g_dir[64];          /* per-test scratch directory (mkdtemp) */
static char g_repo[PATH_MAX];   /* the repository root: the working directory of the test */

static const char *cliplab(void) {
    const char *p = getenv("CLIPLAB");
    return p && *p ? p : "build/cliplab";
}

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/cliplab_test_cli_XXXXXX");
    if (!mkdtemp(g_dir) || !getcwd(g_repo, sizeof g_repo)) return -1;
    char spec[PATH_MAX + 64];
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    if (access(spec, R_OK) || access(cliplab(), X_OK)) {
        fprintf(stderr, "test_cli: run from the repository root with an executable %s\n", cliplab());
        return -1;
    }
    return 0;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[256];
    /* the full-disk test's tmpfs, if it failed before unmounting it */
    snprintf(cmd, sizeof cmd, "if mountpoint -q '%s/tiny'; then umount '%s/tiny'; fi; rm -rf '%s'", g_dir, g_dir, g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* g_dir/<name> into a static rotating buffer (several live at once in one expression). */
static const char *tmp(const char *fmt, ...) {
    static char bufs[8][PATH_MAX];
    static int k;
    char *b = bufs[k++ % 8];
    size_t n = (size_t)snprintf(b, PATH_MAX, "%s/", g_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, PATH_MAX - n, fmt, ap);
    va_end(ap);
    return b;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Whole file (malloc'd, NUL-terminated; *len its size), or NULL if it cannot be read. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    for (size_t got; (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n < 2) s = realloc(s, cap *= 2);
    }
    s[n] = '\0';
    fclose(f);
    if (len) *len = n;
    return s;
}

typedef struct {
    int status; /* exit status, or 128 + signal number */
    char *out, *err;
} Cmd;

static void cmd_free(Cmd *c) {
    free(c->out);
    free(c->err);
    c->out = c->err = NULL;
}

/* Starts the CLI with args (NULL-terminated, without the program name), stdout and stderr
 * redirected to files. */
static pid_t spawn_cli(const char *out_path, const char *err_path, const char *const *args) {
    const char *argv[256] = {cliplab()};
    int n = 1;
    while (args[n - 1]) {
        assert_true(n < 255);
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid) {
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs `cliplab args[0] args[1] ...` (NULL-terminated) to completion. */
static Cmd cli_args(const char *const *args) {
    /* own buffers: the caller's arguments may live in tmp()'s rotating ones */
    char out_path[PATH_MAX], err_path[PATH_MAX];
    snprintf(out_path, sizeof out_path, "%s/cli.out", g_dir);
    snprintf(err_path, sizeof err_path, "%s/cli.err", g_dir);
    Cmd c;
    c.status = wait_status(spawn_cli(out_path, err_path, args));
    assert_int_not_equal(c.status, 127); /* exec failed */
    c.out = read_all(out_path, NULL);
    c.err = read_all(err_path, NULL);
    assert_non_null(c.out);
    assert_non_null(c.err);
    return c;
}

/* Runs `cliplab arg...` (NULL-terminated) to completion. */
static Cmd cli(const char *arg, ...) {
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a; a = va_arg(ap, const char *)) {
        assert_true(n < 63);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return cli_args(args);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The bad-input contract: exactly one non-empty line on stderr and exit status 1. */
static void assert_one_line_error(const Cmd *c) {
    if (c->status != 1 || count_lines(c->err) != 1 || c->err[0] == '\n')
        fail_msg("expected one line on stderr and exit 1, got status %d and stderr:\n%s", c->status, c->err);
}

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) fail_msg("expected '%s' in:\n%s", needle, haystack);
}

/* Files in dir whose name ends with suffix. */
static int count_suffix(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    size_t ls = strlen(suffix);
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        n += l >= ls && strcmp(e->d_name + l - ls, suffix) == 0;
    }
    closedir(d);
    return n;
}

static char *h5dump_status(const char *run_file) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "h5dump -a /status '%s' 2>&1", run_file);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *s = calloc(1, 65536);
    size_t n = fread(s, 1, 65535, p);
    s[n] = '\0';
    pclose(p);
    return s;
}

static void assert_completed(const char *run_file) {
    char *s = h5dump_status(run_file);
    assert_contains(s, "\"completed\"");
    free(s);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (up to 120 s) until path exists; 0 on success, -1 if the process exited first. */
static int wait_for_file(const char *path, pid_t pid) {
    for (int i = 0; i < 60000; i++) {
        if (exists(path)) return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        sleep_ms(2);
    }
    return -1;
}

/* Budgets small enough for a whole run in a fraction of a second: 16 px images, widths set per
 * ablation, 32 evaluation images, no linear probe (its L-BFGS fits dominate at this size). */
static const char TINY_SET[] = "set:\n"
                               "  data.image_size: 16\n"
                               "  model.image.tap: img.stage2\n"
                               "  model.text.width: 8\n"
                               "  model.embed_dim: 8\n"
                               "  train.batch_size: 32\n"
                               "  data.eval_images: 32\n"
                               "  eval.retrieval_n: 32\n"
                               "  eval.probe: false\n"
                               "  train.threads: 1\n";

/* Writes g_dir/<file>: an ablation over experiments/contrastive.yaml (absolute path) with TINY_SET,
 * extra `set:` lines and the rest of the file (sweep, seeds, profiles, report). Returns its path,
 * held in path[PATH_MAX] (the caller's: it outlives tmp()'s rotating buffers). */
static const char *write_ablation(char *path, const char *file, const char *name, const char *set_extra,
                                  const char *rest) {
    char text[8192];
    snprintf(text, sizeof text, "name: %s\nbase: %s/experiments/contrastive.yaml\nquestion: Does %s work?\n%s%s%s",
             name, g_repo, name, TINY_SET, set_extra, rest);
    snprintf(path, PATH_MAX, "%s/%s", g_dir, file);
    write_text(path, text);
    return path;
}

/* Two runs (image widths [4,8] and [8,8]), 256 images each, evaluations at 0, 128, 256. */
static const char *write_tiny_sweep(char *path, const char *file) {
    return write_ablation(path, file, "tiny",
                          "  train.images: 256\n"
                          "  eval.every_images: 128\n",
                          "sweep:\n  model.image.widths: [[4, 8], [8, 8]]\n"
                          "seeds: 1\n"
                          "report: [zs.colour_shape_seen.top1, retrieval.i2t_r1]\n");
}

static void file_stat(const char *path, struct stat *st) { assert_int_equal(stat(path, st), 0); }

/* ---- 1. spec errors ----------------------------------------------------------------------------- */

/* One bad spec: one line on stderr that starts with `prefix` and contains `needle`, exit 1, and
 * no results folder. */
static void check_bad_spec(const char *yaml, const char *override, const char *prefix, const char *needle) {
    const char *spec = tmp("bad.yaml");
    write_text(spec, yaml);
    const char *out = tmp("out");
    Cmd c = override ? cli("run", spec, override, "--out", out, NULL) : cli("run", spec, "--out", out, NULL);
    assert_one_line_error(&c);
    if (strncmp(c.err, prefix, strlen(prefix))) fail_msg("expected stderr to start with '%s', got: %s", prefix, c.err);
    assert_contains(c.err, needle);
    assert_string_equal(c.out, "");
    assert_false(exists(out));
    cmd_free(&c);
}

static void test_spec_errors_are_one_line_and_exit_1(void **state) {
    (void)state;
    char prefix[PATH_MAX + 16];
    /* unknown key: line 2, column 1, with the nearest valid key */
    snprintf(prefix, sizeof prefix, "%s:2:1: ", tmp("bad.yaml"));
    check_bad_spec("name: x\nmodle:\n  embed_dim: 4\n", NULL, prefix, "did you mean 'model'");
    /* wrong type: the value starts at column 11 of line 3 */
    snprintf(prefix, sizeof prefix, "%s:3:11: ", tmp("bad.yaml"));
    check_bad_spec("name: x\ntrain:\n  images: abc\n", NULL, prefix, "train.images");
    /* out of range */
    snprintf(prefix, sizeof prefix, "%s:3:15: ", tmp("bad.yaml"));
    check_bad_spec("name: x\ntrain:\n  batch_size: -5\n", NULL, prefix, "out of range");
    /* bad command-line overrides: unknown key, wrong type */
    check_bad_spec("name: x\n", "train.bogus=1", "command line: ", "train.bogus");
    check_bad_spec("name: x\n", "train.lr=abc", "command line: ", "train.lr");
}

/* Values each key accepts alone but the loss refuses together (they used to pass the spec check and
 * abort at the first step): one line naming the keys, exit 1, nothing written; a sweep holding
 * one such run is refused before any run starts. */
static void test_loss_constraints_are_checked_at_spec_load(void **state) {
    (void)state;
    char prefix[PATH_MAX + 16];
    snprintf(prefix, sizeof prefix, "%s: loss.kind=", tmp("bad.yaml"));
    static const char *const cases[][3] = {
        {"loss:\n  kind: dcl\n", "train.batch_size=1", "loss dcl needs a batch of at least 2 (got 1)"},
        {"loss:\n  kind: align_uniform\n", "train.batch_size=1", "loss align_uniform needs a batch of at least 2"},
        {"loss:\n  kind: siglip\n", "loss.one_sided=true", "loss siglip has no one-sided variant"},
        {"loss:\n  kind: align_uniform\n", "loss.one_sided=true", "loss align_uniform has no one-sided variant"},
        {"train:\n  batch_size: 8\n", "loss.group_size=3", "group_size 3 does not divide the batch size 8"},
        {"loss:\n  kind: infonce\n", "loss.init_temperature=0.001", "init_temperature must be in [0.01, 1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "name: x\n%s", cases[i][0]);
        check_bad_spec(yaml, cases[i][1], prefix, cases[i][2]);
    }
    Cmd c;
    char path[PATH_MAX];
    const char *abl = write_ablation(path, "sided.yaml", "sided", "  loss.one_sided: true\n",
                                     "sweep:\n  loss.kind: [infonce, siglip]\nseeds: 1\n");
    const char *res = tmp("res");
    c = cli("sweep", abl, "--out", res, NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, "run loss=siglip_seed=1: loss.kind=siglip, train.batch_size=32: loss siglip has no one-sided variant");
    assert_false(exists(res));
    cmd_free(&c);
}

/* ---- 2. dry run --------------------------------------------------------------------------------- */

static void test_sweep_dry_run_lists_runs_with_ids(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_ablation(path, "dry.yaml", "dry", "  model.image.widths: [4, 8]\n",
                                     "sweep:\n  loss.kind: [infonce, siglip]\n"
                                     "seeds: 2\n"
                                     "profiles:\n"
                                     "  smoke: {train.images: 96, seeds: 1}\n"
                                     "  quick: {train.images: 4096}\n");
    const char *out = tmp("out");
    Cmd c = cli("sweep", abl, "--profile", "smoke", "--dry-run", "--out", out, NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.out, "profile: smoke");
    assert_contains(c.out, "= 2 runs");
    /* the smoke profile pins seeds to 1: one run per loss, seed = the experiment's seed (1) */
    assert_contains(c.out, "    1 loss=infonce_seed=1\n");
    assert_contains(c.out, "    2 loss=siglip_seed=1\n");
    assert_null(strstr(c.out, "seed=2"));
    /* then each run's resolved spec, with the profile's budget */
    assert_contains(c.out, "--- # loss=infonce_seed=1");
    assert_contains(c.out, "--- # loss=siglip_seed=1");
    assert_contains(c.out, "\n  images: 96\n");
    assert_false(exists(out)); /* a dry run writes nothing */
    cmd_free(&c);

    /* the quick profile keeps both seeds */
    c = cli("sweep", abl, "--profile", "quick", "--dry-run", NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.out, "= 4 runs");
    assert_contains(c.out, "    4 loss=siglip_seed=2\n");
    assert_contains(c.out, "\n  images: 4096\n");
    cmd_free(&c);

    /* every shipped ablation file loads and lists its smoke runs */
    const char *shipped[] = {"efficiency", "efficiency-transformer", "loss-batch", "loss-group", "projection", "tap"};
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "ablations/%s.yaml", shipped[i]);
        c = cli("sweep", path, "--profile", "smoke", "--dry-run", NULL);
        if (c.status != 0) fail_msg("%s: status %d: %s", path, c.status, c.err);
        assert_contains(c.out, "    1 ");
        assert_contains(c.out, "--- # ");
        cmd_free(&c);
    }
}

/* ---- 3. a tiny sweep end to end ----------------------------------------------------------------- */

static void test_tiny_sweep_end_to_end_and_report(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_tiny_sweep(path, "tiny.yaml");
    const char *res = tmp("res");
    Cmd c = cli("sweep", abl, "--out", res, NULL);
    if (c.status != 0) fail_msg("sweep failed (%d):\n%s", c.status, c.err);
    assert_contains(c.err, "2 completed, 0 diverged, 0 failed");
    cmd_free(&c);
    const char *ids[] = {"widths=4-8_seed=1", "widths=8-8_seed=1"};
    for (int i = 0; i < 2; i++) assert_completed(tmp("res/%s.h5", ids[i]));
    assert_int_equal(count_suffix(res, ".h5"), 2);
    assert_int_equal(count_suffix(res, ".tmp"), 0);
    assert_int_equal(count_suffix(res, ".ckpt.h5"), 0);

    c = cli("report", res, NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.out, "ablation: tiny (2 runs)");
    for (int i = 0; i < 2; i++) assert_contains(c.out, ids[i]);
    assert_contains(c.out, "zs.colour_shape_seen.top1");
    assert_contains(c.out, "retrieval.i2t_r1");
    assert_contains(c.out, "question: Does tiny work?");
    /* the first grid value is the baseline the other is compared against, per configuration */
    assert_contains(c.out, "each model.image.widths against model.image.widths=[4 8]");
    /* 2 of 32 images right out of 100 classes is not above chance: both runs are flagged, and the
     * comparison is excluded rather than judged */
    assert_contains(c.out, "(!) warning: widths=4-8_seed=1: zs.colour_shape_seen.top1 never left chance");
    assert_contains(c.out, "at chance (excluded)");
    assert_contains(c.out, "answer: each model.image.widths minus model.image.widths=[4 8]");
    cmd_free(&c);
}

/* A tuning stage end to end: both candidates train on the unreported seed into res/tune, the
 * reported run takes the better one by the validation metric (the first on a tie) and records it,
 * report prints it, and --resume does not rerun the candidates. */
static void test_sweep_tune_stage_end_to_end(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_ablation(path, "tune.yaml", "tune",
                                     "  model.image.widths: [4, 8]\n  train.images: 64\n  eval.every_images: 64\n",
                                     "seeds: 1\n"
                                     "tune:\n  images: 64\n  metric: zs.colour_shape_seen.top1\n"
                                     "  grid: {train.lr: [0.0001, 0.01]}\n");
    const char *res = tmp("res");
    Cmd c = cli("sweep", abl, "--out", res, NULL);
    if (c.status != 0) fail_msg("sweep failed (%d):\n%s", c.status, c.err);
    assert_contains(c.err, "tuning stage of tune: 2 candidates on the validation sets");
    /* 64 training images leave no candidate above chance on 32 validation images: the choice is
     * printed with every candidate's score and flagged as noise */
    assert_contains(c.err, "tuned seed=1: train.lr=");
    assert_contains(c.err, "(validation ");
    assert_contains(c.err, " of 32 images; 0.0001: ");
    assert_contains(c.err, ") (!) every candidate at chance: the choice is noise\n");
    cmd_free(&c);
    char *plan = read_all(tmp("res/tune/ablation.txt"), NULL);
    assert_contains(plan, "tune_metric: zs.colour_shape_seen.top1\n");
    assert_contains(plan, "candidate: lr=0.0001_seed=2\ttrain.lr=0.0001,seed=2\ttrain.lr=0.0001\n");
    assert_contains(plan, "candidate: lr=0.01_seed=2\ttrain.lr=0.01,seed=2\ttrain.lr=0.01\n");
    free(plan);
    const char *cand[] = {"lr=0.0001_seed=2", "lr=0.01_seed=2"}, *val[] = {"train.lr=0.0001", "train.lr=0.01"};
    RunInfo *runs;
    int n;
    Err err;
    assert_int_equal(report_scan(tmp("res/tune"), &runs, &n, &err), 0);
    assert_int_equal(n, 2);
    double score[2];
    for (int i = 0; i < 2; i++) {
        assert_string_equal(runs[i].run_id, cand[i]);
        assert_int_equal(runs[i].seed, 2); /* the base seed is 1 and the one reported seed uses it */
        score[i] = NAN;
        for (int m = 0; m < runs[i].n_summary; m++)
            if (!strcmp(runs[i].summary_names[m], "zs.colour_shape_seen.top1")) score[i] = runs[i].summary_values[m];
        assert_false(isnan(score[i]));
    }
    report_free(runs, n);
    assert_int_equal(report_scan(res, &runs, &n, &err), 0);
    assert_int_equal(n, 1); /* res/tune is not part of the reported runs */
    assert_string_equal(runs[0].tuned, val[score[1] > score[0]]);
    report_free(runs, n);
    c = cli("report", res, NULL);
    assert_contains(c.out, "tuned per configuration (tuning stage: one unreported seed; each candidate's "
                           "zs.colour_shape_seen.top1 on the validation sets; * applied, ~ never left chance):\n");
    char chosen[64];
    snprintf(chosen, sizeof chosen, "  (all): %s (validation ", val[score[1] > score[0]]);
    assert_contains(c.out, chosen);
    assert_contains(c.out, "\n    (!) every candidate at chance: the choice is noise\n");
    cmd_free(&c);
    c = cli("sweep", abl, "--out", res, "--resume", NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.err, "0 to run");
    cmd_free(&c);
    /* a second ablation file into the same folder (as efficiency-transformer.yaml joins
     * efficiency.yaml) adds its candidates to the plan; the first file's stay planned */
    char path2[PATH_MAX];
    const char *abl2 = write_ablation(path2, "tune2.yaml", "tune",
                                      "  model.image.widths: [4, 8]\n  train.images: 64\n  eval.every_images: 64\n",
                                      "sweep:\n  model.head.kind: [mlp]\nseeds: 1\n"
                                      "tune:\n  images: 64\n  metric: zs.colour_shape_seen.top1\n"
                                      "  grid: {train.lr: [0.001]}\n");
    c = cli("sweep", abl2, "--out", res, NULL);
    if (c.status != 0) fail_msg("second sweep failed (%d):\n%s", c.status, c.err);
    cmd_free(&c);
    plan = read_all(tmp("res/tune/ablation.txt"), NULL);
    assert_contains(plan, "candidate: lr=0.0001_seed=2\t");
    assert_contains(plan, "candidate: lr=0.01_seed=2\t");
    assert_contains(plan, "candidate: head=mlp_lr=0.001_seed=2\t");
    free(plan);
    c = cli("report", res, NULL);
    assert_int_equal(c.status, 0);
    assert_null(strstr(c.out, "not in the recorded plan"));
    assert_contains(c.out, "  (all): ");
    assert_contains(c.out, "  model.head.kind=mlp: train.lr=0.001 (validation ");
    cmd_free(&c);
}

/* ---- 4. kill -9 and --resume, bitwise ------------------------------------------------------------- */

/* Every dataset of /<group> in two run files (except `skip`) has the same values, bit for bit;
 * returns the number of rows of the group's first dataset. */
static long assert_group_bitwise_equal(const char *a, const char *b, const char *group, const char *skip) {
    char(*names_a)[H5IO_NAME_MAX], (*names_b)[H5IO_NAME_MAX];
    int n[2];
    const char *files[2] = {a, b};
    char(**lists[2])[H5IO_NAME_MAX] = {&names_a, &names_b};
    for (int k = 0; k < 2; k++) {
        hid_t f = H5Fopen(files[k], H5F_ACC_RDONLY, H5P_DEFAULT);
        assert_true(f >= 0);
        hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
        assert_true(g >= 0);
        n[k] = h5io_list(g, lists[k]);
        H5Gclose(g);
        H5Fclose(f);
    }
    assert_int_equal(n[0], n[1]);
    assert_true(n[0] > 0);
    long rows = -1;
    for (int i = 0; i < n[0]; i++) {
        assert_string_equal(names_a[i], names_b[i]);
        if (!strcmp(names_a[i], skip)) continue;
        double *va, *vb;
        long na = report_read_series(a, group, names_a[i], &va), nb = report_read_series(b, group, names_a[i], &vb);
        assert_true(na > 0);
        assert_int_equal(na, nb);
        if (memcmp(va, vb, (size_t)na * sizeof(double)))
            fail_msg("/%s/%s differs between the uninterrupted and the resumed run", group, names_a[i]);
        if (rows < 0) rows = na;
        free(va);
        free(vb);
    }
    free(names_a);
    free(names_b);
    return rows;
}

static void test_kill9_then_resume_is_bitwise_identical(void **state) {
    (void)state;
    char path[PATH_MAX];
    /* 256 steps of 32 images with a checkpoint every 2 steps (each one fsynced): long enough to
     * be killed mid-run, and evaluations (every 1024 images) on both sides of the kill */
    const char *abl = write_ablation(path, "k.yaml", "k",
                                     "  model.image.widths: [4, 8]\n"
                                     "  train.images: 8192\n"
                                     "  train.warmup_images: 1024\n"
                                     "  train.checkpoint_every_images: 64\n"
                                     "  eval.every_images: 1024\n",
                                     "seeds: 1\n");
    const char *id = "seed=1";
    Cmd c = cli("sweep", abl, "--out", tmp("A"), NULL);
    if (c.status != 0) fail_msg("reference run failed (%d):\n%s", c.status, c.err);
    cmd_free(&c);

    const char *args[] = {"sweep", abl, "--out", tmp("B"), NULL};
    pid_t pid = spawn_cli(tmp("b.out"), tmp("b.err"), args);
    if (wait_for_file(tmp("B/%s.ckpt.h5", id), pid)) fail_msg("the run ended before its first checkpoint");
    sleep_ms(200); /* let it train on past the checkpoint: that work is lost and redone */
    assert_int_equal(kill(pid, SIGKILL), 0);
    if (wait_status(pid) != 128 + SIGKILL) fail_msg("the run finished before it could be killed; raise train.images");
    assert_false(exists(tmp("B/%s.h5", id)));
    assert_true(exists(tmp("B/%s.h5.tmp", id)));

    c = cli("sweep", abl, "--out", tmp("B"), "--resume", NULL);
    if (c.status != 0) fail_msg("resume failed (%d):\n%s", c.status, c.err);
    const char *at = strstr(c.err, "resuming at ");
    assert_non_null(at);
    long resumed_at = atol(at + strlen("resuming at "));
    assert_true(resumed_at > 0 && resumed_at < 8192);
    cmd_free(&c);

    const char *a = tmp("A/%s.h5", id), *b = tmp("B/%s.h5", id);
    assert_completed(b);
    assert_false(exists(tmp("B/%s.ckpt.h5", id)));
    assert_int_equal(count_suffix(tmp("B"), ".tmp"), 0);
    /* wall-clock values differ by nature; everything else must not */
    assert_int_equal(assert_group_bitwise_equal(a, b, "train", "wall_s"), 8192 / 32);
    assert_int_equal(assert_group_bitwise_equal(a, b, "eval", ""), 8192 / 1024 + 1);
    assert_int_equal(assert_group_bitwise_equal(a, b, "summary", "images_per_s"), 1);
    /* the wall clock of the resumed run continues from the checkpoint instead of restarting at 0 */
    double *wall;
    long n = report_read_series(b, "train", "wall_s", &wall);
    assert_int_equal(n, 8192 / 32);
    for (long i = 1; i < n; i++)
        if (!(wall[i] >= wall[i - 1])) fail_msg("wall_s goes back at row %ld: %g -> %g", i, wall[i - 1], wall[i]);
    free(wall);
}

/* ---- 5. a sweep killed between runs ------------------------------------------------------------- */

static void test_sweep_killed_between_runs_keeps_finished_runs(void **state) {
    (void)state;
    char path[PATH_MAX];
    /* the first run is short, the second long enough to be killed while it trains */
    const char *abl = write_ablation(path, "s.yaml", "s",
                                     "  model.image.widths: [4, 8]\n"
                                     "  eval.every_images: 4096\n",
                                     "sweep:\n  train.images: [256, 16384]\n"
                                     "seeds: 1\n");
    const char *first = tmp("res/images=256_seed=1.h5"), *second = tmp("res/images=16384_seed=1.h5");
    const char *args[] = {"sweep", abl, "--out", tmp("res"), NULL};
    pid_t pid = spawn_cli(tmp("s.out"), tmp("s.err"), args);
    if (wait_for_file(first, pid)) fail_msg("the sweep ended before its first run finished");
    assert_int_equal(kill(pid, SIGKILL), 0);
    if (wait_status(pid) != 128 + SIGKILL) fail_msg("the sweep finished before it could be killed");
    assert_false(exists(second));

    struct stat before, after;
    file_stat(first, &before);
    size_t len_before, len_after;
    char *bytes_before = read_all(first, &len_before);

    Cmd c = cli("sweep", abl, "--out", tmp("res"), "--resume", NULL);
    if (c.status != 0) fail_msg("resume failed (%d):\n%s", c.status, c.err);
    assert_contains(c.err, "2 runs, 1 to run, 1 already finished");
    assert_contains(c.err, "1 completed, 0 diverged, 0 failed, 1 skipped");
    cmd_free(&c);

    file_stat(first, &after);
    char *bytes_after = read_all(first, &len_after);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(len_before, len_after);
    assert_memory_equal(bytes_before, bytes_after, len_before);
    free(bytes_before);
    free(bytes_after);
    assert_completed(first);
    assert_completed(second);
    assert_int_equal(count_suffix(tmp("res"), ".tmp"), 0);
}

/* ---- 6. results folder faults ------------------------------------------------------------------- */

static void test_unwritable_results_folder_is_one_line(void **state) {
    (void)state;
    char path[PATH_MAX];
    /* root ignores permission bits, but nothing can create a directory below a regular file */
    const char *file = tmp("plain_file");
    write_text(file, "x\n");
    const char *out = tmp("plain_file/x");
    char spec[PATH_MAX + 64];
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    Cmd c = cli("run", spec, "--out", out, NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, out);
    cmd_free(&c);

    c = cli("sweep", write_tiny_sweep(path, "tiny.yaml"), "--out", out, NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, out);
    cmd_free(&c);
}

static void write_random_file(const char *path, size_t n) {
    unsigned char *b = malloc(n);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(b);
}

/* A valid HDF5 file that is not a cliplab run. */
static void write_foreign_h5(const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t g = H5Gcreate2(f, "/images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    H5Gclose(g);
    H5Fclose(f);
}

static void test_report_skips_corrupt_and_foreign_files(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_tiny_sweep(path, "tiny.yaml");
    Cmd c = cli("sweep", abl, "--out", tmp("res"), "--only", "widths=4-8_seed=1", NULL);
    if (c.status != 0) fail_msg("sweep failed (%d):\n%s", c.status, c.err);
    cmd_free(&c);
    write_random_file(tmp("res/corrupt.h5"), 5000);
    write_foreign_h5(tmp("res/foreign.h5"));

    c = cli("report", tmp("res"), NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.out, "ablation: tiny (1 runs)");
    assert_contains(c.out, "widths=4-8_seed=1");
    assert_null(strstr(c.out, "corrupt"));
    assert_null(strstr(c.out, "foreign"));
    /* one warning line per skipped file, naming it */
    assert_int_equal(count_lines(c.err), 2);
    assert_contains(c.err, "corrupt.h5");
    assert_contains(c.err, "foreign.h5");
    cmd_free(&c);
}

static void test_sweep_never_overwrites_without_force(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_tiny_sweep(path, "tiny.yaml");
    const char *res = tmp("res");
    const char *run1 = tmp("res/widths=4-8_seed=1.h5"), *run2 = tmp("res/widths=8-8_seed=1.h5");
    assert_int_equal(mkdir(res, 0755), 0);
    write_random_file(run1, 3000);
    write_foreign_h5(run2);
    size_t len1, len2;
    char *bytes1 = read_all(run1, &len1), *bytes2 = read_all(run2, &len2);

    /* without --resume: refused up front, nothing touched */
    Cmd c = cli("sweep", abl, "--out", res, NULL);
    assert_int_equal(c.status, 1);
    assert_contains(c.err, "already exists");
    cmd_free(&c);
    /* with --resume: files under a run's name that are not readable runs are refused, not overwritten */
    c = cli("sweep", abl, "--out", res, "--resume", NULL);
    assert_int_not_equal(c.status, 0);
    assert_contains(c.err, "widths=4-8_seed=1.h5 is not a readable cliplab run file");
    assert_contains(c.err, "widths=8-8_seed=1.h5 is not a readable cliplab run file");
    cmd_free(&c);
    size_t l1, l2;
    char *now1 = read_all(run1, &l1), *now2 = read_all(run2, &l2);
    assert_int_equal(l1, len1);
    assert_int_equal(l2, len2);
    assert_memory_equal(now1, bytes1, len1);
    assert_memory_equal(now2, bytes2, len2);
    free(now1);
    free(now2);
    free(bytes1);
    free(bytes2);

    /* --force replaces them with real runs */
    c = cli("sweep", abl, "--out", res, "--resume", "--force", NULL);
    if (c.status != 0) fail_msg("forced sweep failed (%d):\n%s", c.status, c.err);
    cmd_free(&c);
    assert_completed(run1);
    assert_completed(run2);

    /* finished runs: refused without --resume/--force, skipped untouched with --resume */
    struct stat before, after;
    file_stat(run1, &before);
    c = cli("sweep", abl, "--out", res, NULL);
    assert_int_equal(c.status, 1);
    assert_contains(c.err, "already exists; use --resume");
    cmd_free(&c);
    c = cli("sweep", abl, "--out", res, "--resume", NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.err, "0 to run, 2 already finished");
    cmd_free(&c);
    file_stat(run1, &after);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(before.st_size, after.st_size);
}

/* Byte offset in a run file of the first chunk of /<series> (a chunked dataset). */
static long chunk_offset(const char *run_file, const char *series) {
    hid_t f = H5Fopen(run_file, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, series, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t sp = H5Dget_space(d);
    hsize_t off[1], size;
    unsigned mask;
    haddr_t addr;
    assert_true(H5Dget_chunk_info(d, sp, 0, off, &mask, &addr, &size) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    return (long)addr;
}

/* A finished run file with one flipped bit in its /train/loss data: report and export call it
 * corrupt (one line), and sweep --resume neither counts it as finished nor overwrites it. */
static void test_bit_flipped_run_is_corrupt_not_finished(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_tiny_sweep(path, "tiny.yaml");
    const char *res = tmp("res");
    Cmd c = cli("sweep", abl, "--out", res, NULL);
    if (c.status != 0) fail_msg("sweep failed (%d):\n%s", c.status, c.err);
    cmd_free(&c);
    char run[PATH_MAX];
    snprintf(run, sizeof run, "%s", tmp("res/widths=4-8_seed=1.h5"));
    long at = chunk_offset(run, "/train/loss") + 13;
    size_t len = 0;
    char *bytes = read_all(run, &len);
    assert_non_null(bytes);
    bytes[at] ^= 0x10;
    FILE *f = fopen(run, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);

    c = cli("report", res, NULL);
    assert_int_equal(c.status, 0);
    assert_int_equal(count_lines(c.err), 1);
    assert_contains(c.err, "widths=4-8_seed=1.h5': corrupt: /train/loss fails its checksum");
    assert_null(strstr(c.out, "widths=4-8_seed=1"));
    assert_contains(c.out, "widths=8-8_seed=1");
    cmd_free(&c);
    c = cli("export", res, "--out", tmp("tsv"), NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.err, "corrupt: /train/loss");
    assert_false(exists(tmp("tsv/widths=4-8_seed=1.train.tsv")));
    cmd_free(&c);
    c = cli("sweep", abl, "--out", res, "--resume", NULL);
    assert_int_not_equal(c.status, 0);
    assert_contains(c.err, "widths=4-8_seed=1.h5 is not a readable cliplab run file");
    assert_contains(c.err, "0 to run, 1 already finished");
    cmd_free(&c);
    size_t len2 = 0;
    char *now = read_all(run, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(now, bytes, len);
    free(now);
    free(bytes);
}

/* ---- two writers ---------------------------------------------------------------------------------- */

/* The same `run` twice on one id while the first is training: the second is refused with one line
 * naming the first one's pid and touches nothing; the first finishes as if alone. (Before the run
 * lock the second truncated the first's live .tmp and the first renamed an unreadable file.) */
static void test_second_writer_on_a_run_is_refused(void **state) {
    (void)state;
    char spec[PATH_MAX + 64], out[PATH_MAX];
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    snprintf(out, sizeof out, "%s", tmp("res"));
    const char *args[] = {"run", spec, "data.image_size=16", "model.image.widths=4,8", "model.image.tap=img.stage2",
                          "model.text.width=8", "model.embed_dim=8", "train.batch_size=32", "train.images=16384",
                          "train.checkpoint_every_images=64", "eval.every_images=8192", "data.eval_images=32",
                          "eval.retrieval_n=32", "eval.probe=false", "train.threads=1", "--id", "r", "--out", out, NULL};
    pid_t first = spawn_cli(tmp("a.out"), tmp("a.err"), args);
    if (wait_for_file(tmp("res/r.ckpt.h5"), first)) fail_msg("the first run ended before its first checkpoint");
    pid_t second = spawn_cli(tmp("b.out"), tmp("b.err"), args);
    int st2 = wait_status(second);
    if (waitpid(first, NULL, WNOHANG) == first) fail_msg("the first run ended before the second started; raise train.images");
    char *err2 = read_all(tmp("b.err"), NULL), *out2 = read_all(tmp("b.out"), NULL);
    char holder[64];
    snprintf(holder, sizeof holder, "in use by process %ld ", (long)first);
    if (st2 != 1 || count_lines(err2) != 1 || !strstr(err2, holder))
        fail_msg("second writer: status %d, stderr:\n%s", st2, err2);
    assert_string_equal(out2, "");
    free(err2);
    free(out2);
    assert_int_equal(wait_status(first), 0);
    assert_completed(tmp("res/r.h5"));
    assert_false(exists(tmp("res/r.lock")));
    assert_false(exists(tmp("res/r.ckpt.h5")));
    Cmd c = cli("report", out, NULL);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.err, "");
    assert_contains(c.out, "\nr ");
    cmd_free(&c);
}

/* Two sweeps started together on one folder (with --resume, as a second machine joining would):
 * each skips what the other holds or has finished, both exit 0, and together they run each of the
 * 4 runs exactly once. */
static void test_two_sweeps_share_one_folder(void **state) {
    (void)state;
    char path[PATH_MAX], out[PATH_MAX];
    const char *abl = write_ablation(path, "two.yaml", "two", "  train.images: 512\n  eval.every_images: 256\n",
                                     "sweep:\n  model.image.widths: [[4, 8], [8, 8], [4, 4], [8, 4]]\nseeds: 1\n");
    snprintf(out, sizeof out, "%s", tmp("res"));
    const char *args[] = {"sweep", abl, "--out", out, "--resume", NULL};
    pid_t a = spawn_cli(tmp("a.out"), tmp("a.err"), args);
    pid_t b = spawn_cli(tmp("b.out"), tmp("b.err"), args);
    int sa = wait_status(a), sb = wait_status(b);
    char *ea = read_all(tmp("a.err"), NULL), *eb = read_all(tmp("b.err"), NULL);
    if (sa != 0 || sb != 0) fail_msg("sweeps exited %d and %d:\n%s\n---\n%s", sa, sb, ea, eb);
    int done = 0;
    const char *errs[2] = {ea, eb};
    for (int k = 0; k < 2; k++) {
        const char *p = strstr(errs[k], "sweep two: ");
        assert_non_null(p);
        int completed, diverged, failed, skipped, busy;
        assert_int_equal(sscanf(p, "sweep two: %d completed, %d diverged, %d failed, %d skipped (finished before), %d taken",
                                &completed, &diverged, &failed, &skipped, &busy), 5);
        assert_int_equal(diverged + failed, 0);
        /* a run is run, found finished at the start, left to the other sweep, or (not counted)
         * seen finished by the other between the plan and its turn */
        assert_true(completed + skipped + busy <= 4);
        done += completed;
    }
    assert_int_equal(done, 4);
    free(ea);
    free(eb);
    assert_int_equal(count_suffix(out, ".h5"), 4);
    assert_int_equal(count_suffix(out, ".tmp"), 0);
    assert_int_equal(count_suffix(out, ".lock"), 0);
    const char *ids[] = {"widths=4-8_seed=1", "widths=8-8_seed=1", "widths=4-4_seed=1", "widths=8-4_seed=1"};
    for (int i = 0; i < 4; i++) assert_completed(tmp("res/%s.h5", ids[i]));
}

/* ---- full disk ------------------------------------------------------------------------------------ */

/* A run on a tiny tmpfs: at every size it either finishes or stops with exit 1 and the full-disk
 * message as its last line (it used to segfault in HDF5's close-at-exit, rc 139); the .tmp
 * survives, and where a checkpoint was written it survives too and --resume finishes the run once
 * the disk has room. Needs root to mount; otherwise the test reports itself skipped. */
static void test_full_disk_is_one_line_and_loses_nothing(void **state) {
    (void)state;
    char mnt[PATH_MAX], cmd[3 * PATH_MAX], spec[PATH_MAX + 64];
    snprintf(mnt, sizeof mnt, "%s", tmp("tiny"));
    assert_int_equal(mkdir(mnt, 0755), 0);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=300k tmpfs '%s' 2>/dev/null", mnt);
    if (geteuid() != 0 || system(cmd) != 0) {
        fprintf(stderr, "skipped: needs root (to mount a tiny tmpfs)\n");
        skip();
    }
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    const char *sizes[] = {"300k", "350k", "400k", "450k"};
    int resumed = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        snprintf(cmd, sizeof cmd, "mount -o remount,size=%s '%s' && rm -rf '%s'/o", sizes[i], mnt, mnt);
        assert_int_equal(system(cmd), 0);
        char out[PATH_MAX + 8];
        snprintf(out, sizeof out, "%s/o", mnt);
        const char *args[] = {"run", spec, "data.image_size=16", "model.image.widths=4,8", "model.image.tap=img.stage2",
                              "model.text.width=8", "model.embed_dim=8", "train.batch_size=32", "train.images=16384",
                              "train.checkpoint_every_images=64", "eval.every_images=8192", "data.eval_images=32",
                              "eval.retrieval_n=32", "eval.probe=false", "train.threads=1", "--id", "r", "--out", out,
                              NULL, NULL};
        int st = wait_status(spawn_cli(tmp("f.out"), tmp("f.err"), args));
        if (st == 0) continue;
        char *err = read_all(tmp("f.err"), NULL);
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n') err[--n] = '\0';
        const char *last = strrchr(err, '\n') ? strrchr(err, '\n') + 1 : err;
        if (st != 1 || !strstr(last, "No space left on device"))
            fail_msg("size %s: status %d, last line: %s", sizes[i], st, last);
        free(err);
        char tmp_file[PATH_MAX + 32], ckpt[PATH_MAX + 32];
        snprintf(tmp_file, sizeof tmp_file, "%s/r.h5.tmp", out);
        snprintf(ckpt, sizeof ckpt, "%s/r.ckpt.h5", out);
        assert_true(exists(tmp_file));
        if (!exists(ckpt)) continue;
        /* room again: --resume continues from the surviving checkpoint to a completed run */
        snprintf(cmd, sizeof cmd, "mount -o remount,size=4m '%s'", mnt);
        assert_int_equal(system(cmd), 0);
        args[sizeof args / sizeof *args - 2] = "--resume";
        st = wait_status(spawn_cli(tmp("g.out"), tmp("g.err"), args));
        if (st != 0) fail_msg("size %s: --resume after the full disk: status %d", sizes[i], st);
        char fin[PATH_MAX + 32];
        snprintf(fin, sizeof fin, "%s/r.h5", out);
        assert_completed(fin);
        resumed++;
    }
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    assert_int_equal(system(cmd), 0);
    assert_true(resumed > 0); /* some size left a checkpoint behind, and it was enough */
}

/* ---- 7. usage ------------------------------------------------------------------------------------ */

static void test_usage_errors_and_help(void **state) {
    (void)state;
    Cmd c = cli("frobnicate", NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, "'frobnicate'");
    assert_contains(c.err, "--help");
    cmd_free(&c);

    c = cli("--help", NULL);
    assert_int_equal(c.status, 0);
    const char *subcommands[] = {"run", "sweep", "report", "export", "data", "help-spec"};
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "  cliplab %s ", subcommands[i]);
        assert_contains(c.out, line);
    }
    cmd_free(&c);

    const char *no_args[] = {"run", "sweep", "report"};
    for (size_t i = 0; i < sizeof no_args / sizeof no_args[0]; i++) {
        c = cli(no_args[i], NULL);
        assert_int_equal(c.status, 1);
        char usage[64];
        snprintf(usage, sizeof usage, "usage: cliplab %s ", no_args[i]);
        assert_contains(c.err, usage);
        cmd_free(&c);
    }
    c = cli("run", "--frob", NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, "--frob");
    cmd_free(&c);
}

/* ---- 8. missing dataset --------------------------------------------------------------------------- */

static void test_missing_dataset_dir_is_one_line(void **state) {
    (void)state;
    char spec[PATH_MAX + 64];
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    const char *out = tmp("out");
    Cmd c = cli("run", spec, "data.dataset=fashion-mnist", "data.fmnist_dir=/nonexistent", "--out", out, NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, "/nonexistent/");
    assert_contains(c.err, "idx");
    assert_false(exists(out));
    cmd_free(&c);
}

/* ---- 6. every constraint checked before a run starts (issue 12 item 6) --------------------------- */

/* `cliplab run spec.yaml <overrides>` fails before training: one line containing needle, exit 1,
 * no results folder. */
static void check_refused_run(const char *const *overrides, int n, const char *needle) {
    char spec[PATH_MAX + 64], out[PATH_MAX];
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    snprintf(out, sizeof out, "%s", tmp("out"));
    const char *args[32] = {"run", spec};
    for (int i = 0; i < n; i++) args[2 + i] = overrides[i];
    args[2 + n] = "--out";
    args[3 + n] = out;
    args[4 + n] = NULL;
    Cmd c = cli_args(args);
    assert_one_line_error(&c);
    assert_contains(c.err, needle);
    assert_false(exists(out));
    cmd_free(&c);
}

/* An in-range batch the machine cannot hold: the estimate in one line, not an abort in malloc
 * (the default model at 64 px and a batch of 2^20 needs hundreds of GiB). */
static void test_batch_beyond_memory_refused_with_estimate(void **state) {
    (void)state;
    const char *big[] = {"train.batch_size=1048576"};
    check_refused_run(big, 1, "needs an estimated ");
    check_refused_run(big, 1, "GiB of memory");
}

/* n 28x28 images and labels in Fashion-MNIST's gzipped IDX format, as dir/<split>-*-ubyte.gz. */
static void write_fmnist_split(const char *dir, const char *split, int n) {
    for (int kind = 0; kind < 2; kind++) {
        char path[PATH_MAX + 64], cmd[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s-%s", dir, split, kind ? "labels-idx1-ubyte" : "images-idx3-ubyte");
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        const unsigned char head[] = {0, 0, 8, kind ? 1 : 3, 0, 0, 0, (unsigned char)n};
        fwrite(head, 1, sizeof head, f);
        const unsigned char side[] = {0, 0, 0, 28};
        if (!kind) fwrite(side, 1, 4, f), fwrite(side, 1, 4, f);
        for (int i = 0; i < (kind ? n : n * 28 * 28); i++) fputc(kind ? i % 10 : (i * 7) & 0xff, f);
        assert_int_equal(fclose(f), 0);
        snprintf(cmd, sizeof cmd, "gzip -nf '%s'", path);
        assert_int_equal(system(cmd), 0);
    }
}

/* A 3-image copy of Fashion-MNIST with the probe on: its probe set cannot be split 4:1:4, which
 * is said before training instead of a CHECK at the final evaluation. */
static void test_tiny_dataset_with_probe_refused(void **state) {
    (void)state;
    char dir[PATH_MAX], opt[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", tmp("fm"));
    assert_int_equal(mkdir(dir, 0755), 0);
    write_fmnist_split(dir, "train", 3);
    write_fmnist_split(dir, "t10k", 3);
    snprintf(opt, sizeof opt, "data.fmnist_dir=%s", dir);
    const char *o[] = {"data.dataset=fashion-mnist", opt, "eval.task=fmnist", "eval.probe_task=fmnist", "eval.probe=true",
                       "train.images=64", "train.batch_size=8", "train.threads=1"};
    check_refused_run(o, 8, "probe set of 3 images");
}

/* A sweep checks every run of its grid with what a run checks before it builds (here the probe
 * set of a 3-image dataset copy, which the spec alone cannot know) before it starts any: the
 * first run is valid, the second is not, and nothing runs. */
static void test_sweep_checks_every_run_before_starting(void **state) {
    (void)state;
    char dir[PATH_MAX], out[PATH_MAX], text[2 * PATH_MAX + 512];
    snprintf(dir, sizeof dir, "%s", tmp("fm"));
    assert_int_equal(mkdir(dir, 0755), 0);
    write_fmnist_split(dir, "train", 3);
    write_fmnist_split(dir, "t10k", 3);
    snprintf(text, sizeof text,
             "name: v\nbase: %s/experiments/contrastive.yaml\nquestion: Does v work?\n"
             "set:\n  data.dataset: fashion-mnist\n  data.fmnist_dir: %s\n  eval.task: fmnist\n"
             "  eval.probe_task: fmnist\n  train.images: 64\n  train.batch_size: 8\n  train.threads: 1\n"
             "sweep:\n  eval.probe: [false, true]\nseeds: 1\n",
             g_repo, dir);
    const char *abl = tmp("v.yaml");
    write_text(abl, text);
    snprintf(out, sizeof out, "%s", tmp("res"));
    Cmd c = cli("sweep", abl, "--out", out, NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, "run probe=true");
    assert_contains(c.err, "probe set of 3 images");
    assert_false(exists(out));
    cmd_free(&c);
}

/* `cliplab run` never replaces a finished run file unless told to. */
static void test_run_refuses_to_overwrite_without_force(void **state) {
    (void)state;
    char spec[PATH_MAX + 64];
    snprintf(spec, sizeof spec, "%s/experiments/contrastive.yaml", g_repo);
    const char *out = tmp("runs");
    const char *const over[] = {"data.image_size=16", "model.image.widths=4,8", "model.image.tap=img.stage2",
                                "model.text.width=8", "model.embed_dim=8", "train.batch_size=32",
                                "train.images=64", "eval.every_images=64", "data.eval_images=32",
                                "eval.retrieval_n=32", "eval.probe=false", "train.threads=1"};
    Cmd c = cli("run", spec, over[0], over[1], over[2], over[3], over[4], over[5], over[6], over[7], over[8], over[9],
                over[10], over[11], "--out", out, "--id", "r", NULL);
    assert_int_equal(c.status, 0);
    cmd_free(&c);
    const char *file = tmp("runs/r.h5");
    struct stat before, after;
    file_stat(file, &before);
    c = cli("run", spec, "--out", out, "--id", "r", NULL);
    assert_one_line_error(&c);
    assert_contains(c.err, "--force");
    cmd_free(&c);
    file_stat(file, &after);
    assert_true(before.st_ino == after.st_ino && before.st_mtime == after.st_mtime);
}

/* --jobs 2 runs in forked one-thread processes; the results equal a one-job sweep bitwise. */
static void test_sweep_jobs_equal_sequential(void **state) {
    (void)state;
    char path[PATH_MAX];
    write_tiny_sweep(path, "tiny.yaml");
    const char *a = tmp("seq"), *b = tmp("par");
    char da[PATH_MAX], db[PATH_MAX];
    snprintf(da, sizeof da, "%s", a);
    snprintf(db, sizeof db, "%s", b);
    Cmd c = cli("sweep", path, "--out", da, NULL);
    assert_int_equal(c.status, 0);
    cmd_free(&c);
    c = cli("sweep", path, "--out", db, "--jobs", "2", NULL);
    assert_int_equal(c.status, 0);
    cmd_free(&c);
    RunInfo *runs;
    int n;
    Err err;
    assert_int_equal(report_scan(da, &runs, &n, &err), 0);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        char fa[PATH_MAX + 200], fb[PATH_MAX + 200];
        snprintf(fa, sizeof fa, "%s/%s.h5", da, runs[i].run_id);
        snprintf(fb, sizeof fb, "%s/%s.h5", db, runs[i].run_id);
        assert_true(assert_group_bitwise_equal(fa, fb, "train", "wall_s") > 0);
        assert_true(assert_group_bitwise_equal(fa, fb, "eval", "") > 0);
    }
    report_free(runs, n);
}

/* The real ablation files run end to end at the smoke profile, report and render their figures. */
static void test_smoke_profiles_of_the_ablations_run_and_plot(void **state) {
    (void)state;
    const char *names[][2] = {{"projection", "projection"}, {"tap", "tap"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char file[PATH_MAX + 64], out[PATH_MAX], figs[PATH_MAX], cmd[6 * PATH_MAX];
        snprintf(file, sizeof file, "%s/ablations/%s.yaml", g_repo, names[i][0]);
        snprintf(out, sizeof out, "%s", tmp("%s", names[i][1]));
        snprintf(figs, sizeof figs, "%s", tmp("figs"));
        Cmd c = cli("sweep", file, "--profile", "smoke", "--out", out, "--jobs", "2", NULL);
        assert_int_equal(c.status, 0);
        cmd_free(&c);
        c = cli("report", out, NULL);
        assert_int_equal(c.status, 0);
        assert_contains(c.out, "question:");
        cmd_free(&c);
        snprintf(cmd, sizeof cmd, "cd '%s' && PLOTS_OUT='%s' PLOTS_DATA='%s' plots/render.sh '%s' %s '%s' >/dev/null",
                 g_repo, figs, figs, cliplab(), names[i][1], out);
        assert_int_equal(system(cmd), 0);
        char png[2 * PATH_MAX];
        snprintf(png, sizeof png, "%s/%s.png", figs, !strcmp(names[i][1], "tap") ? "tap" : "projection-zeroshot");
        struct stat st;
        file_stat(png, &st);
        assert_true(st.st_size > 10000);
    }
    /* a profile's folder (tap-long, as run_ablation.sh names it) renders under its own names */
    char link[PATH_MAX], cmd[6 * PATH_MAX], png[PATH_MAX + 32];
    snprintf(link, sizeof link, "%s", tmp("tap-long"));
    assert_int_equal(symlink(tmp("tap"), link), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && PLOTS_OUT='%s' PLOTS_DATA='%s' plots/render.sh '%s' tap '%s' >/dev/null",
             g_repo, tmp("figs"), tmp("figs"), cliplab(), link);
    assert_int_equal(system(cmd), 0);
    snprintf(png, sizeof png, "%s/tap-long.png", tmp("figs"));
    struct stat st;
    file_stat(png, &st);
    assert_true(st.st_size > 10000);
}

/* `run SPEC <tiny 8192-image run, checkpoint every 64 images> --id r --out <slot>` into args
 * [32] (NULL-terminated); returns the number of words, and *out_at the slot to fill. spec has
 * PATH_MAX + 64 bytes and must outlive args. */
static int tiny_run_args(const char **args, char *spec, int *out_at) {
    static const char *const common[] = {"data.image_size=16", "model.image.widths=4,8", "model.image.tap=img.stage2",
                                         "model.text.width=8", "model.embed_dim=8", "train.batch_size=32",
                                         "train.images=8192", "train.warmup_images=1024",
                                         "train.checkpoint_every_images=64", "eval.every_images=2048",
                                         "data.eval_images=32", "eval.retrieval_n=32", "eval.probe=false",
                                         "train.threads=1"};
    snprintf(spec, PATH_MAX + 64, "%s/experiments/contrastive.yaml", g_repo);
    int n = 0;
    args[n++] = "run";
    args[n++] = spec;
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) args[n++] = common[i];
    args[n++] = "--id";
    args[n++] = "r";
    args[n++] = "--out";
    *out_at = n++;
    args[n] = NULL;
    return n;
}

/* `cliplab run --resume` continues a run killed with kill -9 from its checkpoint, to the same
 * results as the uninterrupted run; on a finished run it changes nothing. */
static void test_run_resume_after_kill9(void **state) {
    (void)state;
    char spec[PATH_MAX + 64], dir_a[PATH_MAX], dir_b[PATH_MAX];
    snprintf(dir_a, sizeof dir_a, "%s", tmp("A"));
    snprintf(dir_b, sizeof dir_b, "%s", tmp("B"));
    const char *args[32];
    int out_at, n = tiny_run_args(args, spec, &out_at);
    args[out_at] = dir_a;
    pid_t pid = spawn_cli(tmp("a.out"), tmp("a.err"), args);
    assert_int_equal(wait_status(pid), 0);

    args[out_at] = dir_b;
    pid = spawn_cli(tmp("b.out"), tmp("b.err"), args);
    if (wait_for_file(tmp("B/r.ckpt.h5"), pid)) fail_msg("the run ended before its first checkpoint");
    sleep_ms(200);
    assert_int_equal(kill(pid, SIGKILL), 0);
    if (wait_status(pid) != 128 + SIGKILL) fail_msg("the run finished before it could be killed; raise train.images");
    assert_false(exists(tmp("B/r.h5")));

    args[n++] = "--resume";
    args[n] = NULL;
    pid = spawn_cli(tmp("c.out"), tmp("c.err"), args);
    assert_int_equal(wait_status(pid), 0);
    char *err = read_all(tmp("c.err"), NULL);
    assert_non_null(strstr(err, "resuming at "));
    free(err);
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s", tmp("A/r.h5"));
    snprintf(b, sizeof b, "%s", tmp("B/r.h5"));
    assert_int_equal(assert_group_bitwise_equal(a, b, "train", "wall_s"), 8192 / 32);
    assert_int_equal(assert_group_bitwise_equal(a, b, "eval", ""), 8192 / 2048 + 1);

    /* again on the finished run: nothing to do, the file is untouched */
    struct stat before, after;
    file_stat(b, &before);
    pid = spawn_cli(tmp("d.out"), tmp("d.err"), args);
    assert_int_equal(wait_status(pid), 0);
    err = read_all(tmp("d.err"), NULL);
    assert_non_null(strstr(err, "nothing to resume"));
    free(err);
    file_stat(b, &after);
    assert_true(before.st_ino == after.st_ino && before.st_mtime == after.st_mtime);
}

/* ---- 8. SIGINT and SIGTERM (issue 12 item 8) ------------------------------------------------------ */

/* The exit status of a process that must have exited by itself (not been killed by a signal). */
static int wait_exited(pid_t pid) {
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st)) fail_msg("killed by signal %d instead of exiting after its checkpoint", WTERMSIG(st));
    return WEXITSTATUS(st);
}

/* The text after "resume with: " on its line of err (malloc'd), failing the test if absent. */
static char *resume_command(const char *err) {
    const char *at = strstr(err, "resume with: ");
    if (!at) fail_msg("no 'resume with: ' line in:\n%s", err);
    at += strlen("resume with: ");
    return strndup(at, strcspn(at, "\n"));
}

/* SIGINT during `cliplab run`: the step finishes, a checkpoint is written, one line gives the
 * command that resumes, exit 130; that very command (run by the shell) finishes the run bitwise
 * equal to an uninterrupted one. */
static void test_run_sigint_checkpoints_and_prints_resume(void **state) {
    (void)state;
    char spec[PATH_MAX + 64], dir_a[PATH_MAX], dir_b[PATH_MAX];
    snprintf(dir_a, sizeof dir_a, "%s", tmp("A"));
    snprintf(dir_b, sizeof dir_b, "%s", tmp("B"));
    const char *args[32];
    int out_at;
    tiny_run_args(args, spec, &out_at);
    args[out_at] = dir_a;
    assert_int_equal(wait_status(spawn_cli(tmp("a.out"), tmp("a.err"), args)), 0);

    args[out_at] = dir_b;
    pid_t pid = spawn_cli(tmp("b.out"), tmp("b.err"), args);
    if (wait_for_file(tmp("B/r.ckpt.h5"), pid)) fail_msg("the run ended before its first checkpoint");
    sleep_ms(100);
    assert_int_equal(kill(pid, SIGINT), 0);
    int rc = wait_exited(pid);
    if (rc == 0) fail_msg("the run finished before the signal; raise train.images");
    assert_int_equal(rc, 130);
    assert_true(exists(tmp("B/r.ckpt.h5")));
    assert_true(exists(tmp("B/r.h5.tmp")));
    assert_false(exists(tmp("B/r.h5")));
    char *err = read_all(tmp("b.err"), NULL);
    assert_contains(err, "interrupted by SIGINT");
    char *cmd = resume_command(err);
    free(err);
    assert_contains(cmd, " --resume");

    char sh[2 * PATH_MAX + 4096];
    snprintf(sh, sizeof sh, "cd '%s' && %s >'%s' 2>'%s'", g_repo, cmd, tmp("c.out"), tmp("c.err"));
    free(cmd);
    assert_int_equal(system(sh), 0);
    err = read_all(tmp("c.err"), NULL);
    assert_contains(err, "resuming at ");
    free(err);
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s", tmp("A/r.h5"));
    snprintf(b, sizeof b, "%s", tmp("B/r.h5"));
    assert_false(exists(tmp("B/r.ckpt.h5")));
    assert_int_equal(assert_group_bitwise_equal(a, b, "train", "wall_s"), 8192 / 32);
    assert_int_equal(assert_group_bitwise_equal(a, b, "eval", ""), 8192 / 2048 + 1);
    assert_int_equal(assert_group_bitwise_equal(a, b, "summary", "images_per_s"), 1);
}

/* `--resume` under a changed spec (issue 12 item 2) is refused with one line naming the keys and
 * changes nothing; a result-neutral key (the thread count) may differ, and that resume finishes. */
static void test_resume_under_a_different_spec_is_refused(void **state) {
    (void)state;
    char spec[PATH_MAX + 64], dir_b[PATH_MAX];
    snprintf(dir_b, sizeof dir_b, "%s", tmp("B"));
    const char *args[40];
    int out_at, n = tiny_run_args(args, spec, &out_at);
    args[out_at] = dir_b;
    pid_t pid = spawn_cli(tmp("b.out"), tmp("b.err"), args);
    if (wait_for_file(tmp("B/r.ckpt.h5"), pid)) fail_msg("the run ended before its first checkpoint");
    assert_int_equal(kill(pid, SIGINT), 0);
    if (wait_exited(pid) != 130) fail_msg("the run was not interrupted; raise train.images");
    size_t ckpt_len = 0, tmp_len = 0;
    char *ckpt = read_all(tmp("B/r.ckpt.h5"), &ckpt_len), *tmpf = read_all(tmp("B/r.h5.tmp"), &tmp_len);

    args[n++] = "train.lr=0.05";
    args[n++] = "train.images=4096";
    args[n++] = "--resume";
    args[n] = NULL;
    pid = spawn_cli(tmp("c.out"), tmp("c.err"), args);
    assert_int_equal(wait_exited(pid), 1);
    char *err = read_all(tmp("c.err"), NULL);
    assert_contains(err, "cannot resume run 'r' under a different spec: ");
    assert_contains(err, "train.lr");
    assert_contains(err, "train.images");
    assert_true(strchr(err, '\n') == err + strlen(err) - 1); /* one line */
    free(err);
    size_t len = 0;
    char *after = read_all(tmp("B/r.ckpt.h5"), &len);
    assert_true(len == ckpt_len && !memcmp(after, ckpt, len));
    free(after);
    after = read_all(tmp("B/r.h5.tmp"), &len);
    assert_true(len == tmp_len && !memcmp(after, tmpf, len));
    free(after);
    free(ckpt);
    free(tmpf);

    n -= 3;
    args[n++] = "train.threads=2";
    args[n++] = "--resume";
    args[n] = NULL;
    pid = spawn_cli(tmp("d.out"), tmp("d.err"), args);
    if (wait_exited(pid) != 0) fail_msg("a resume with another thread count was refused");
    assert_true(exists(tmp("B/r.h5")));
}

/* SIGTERM to a --jobs 2 sweep (the sweep's pid only): it forwards the signal, both children
 * checkpoint, the sweep names them as unfinished and exits 143; --resume then completes both. */
static void test_sweep_sigterm_forwards_to_jobs(void **state) {
    (void)state;
    char path[PATH_MAX];
    const char *abl = write_ablation(path, "t.yaml", "t",
                                     "  model.image.widths: [4, 8]\n"
                                     "  train.images: 16384\n"
                                     "  train.checkpoint_every_images: 64\n"
                                     "  eval.every_images: 16384\n",
                                     "seeds: 2\n");
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s", tmp("res"));
    const char *args[] = {"sweep", abl, "--out", out, "--jobs", "2", NULL};
    pid_t pid = spawn_cli(tmp("s.out"), tmp("s.err"), args);
    if (wait_for_file(tmp("res/seed=1.ckpt.h5"), pid) || wait_for_file(tmp("res/seed=2.ckpt.h5"), pid))
        fail_msg("the sweep ended before both runs checkpointed");
    assert_int_equal(kill(pid, SIGTERM), 0);
    int rc = wait_exited(pid);
    if (rc == 0) fail_msg("the sweep finished before the signal; raise train.images");
    assert_int_equal(rc, 143);
    char *err = read_all(tmp("s.err"), NULL);
    assert_contains(err, "interrupted by SIGTERM: unfinished (checkpointed): ");
    assert_contains(err, "seed=1");
    assert_contains(err, "seed=2");
    assert_contains(err, "not started: 0");
    char *cmd = resume_command(err);
    assert_contains(cmd, " --resume");
    free(cmd);
    free(err);
    for (int s = 1; s <= 2; s++) {
        assert_true(exists(tmp("res/seed=%d.ckpt.h5", s)));
        assert_false(exists(tmp("res/seed=%d.h5", s)));
    }
    Cmd c = cli("sweep", abl, "--out", out, "--resume", "--jobs", "2", NULL);
    if (c.status != 0) fail_msg("resume failed (%d):\n%s", c.status, c.err);
    assert_contains(c.err, "2 completed, 0 diverged, 0 failed");
    cmd_free(&c);
    for (int s = 1; s <= 2; s++) assert_completed(tmp("res/seed=%d.h5", s));
}

/* ---- 9. the argument parser every subcommand shares (issue 12 item 9) ------------------------ */

/* Every subcommand prints its usage for --help and exits 0. */
static void test_every_subcommand_has_help(void **state) {
    (void)state;
    const char *subcommands[] = {"run", "sweep", "report", "export", "data", "help-spec"};
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        Cmd c = cli(subcommands[i], "--help", NULL);
        if (c.status != 0) fail_msg("%s --help: status %d, stderr: %s", subcommands[i], c.status, c.err);
        char usage[64];
        snprintf(usage, sizeof usage, "usage: cliplab %s", subcommands[i]);
        assert_contains(c.out, usage);
        assert_string_equal(c.err, "");
        cmd_free(&c);
    }
}

/* Unknown options and numbers that are not wholly numbers: one line, exit 1, for every
 * subcommand that takes options. */
static void test_unknown_flags_and_bad_numbers_are_one_line(void **state) {
    (void)state;
    const char *dir = tmp("res"), *abl = tmp("none.yaml");
    const struct {
        const char *args[8], *needle;
    } cases[] = {
        {{"report", dir, "--bogus", NULL}, "'--bogus'"},
        {{"export", dir, "--out", dir, "--bogus", NULL}, "'--bogus'"},
        {{"sweep", abl, "--jobs", "2x", NULL}, "'2x'"},
        {{"sweep", abl, "--jobs", "0", NULL}, "--jobs"},
        {{"sweep", abl, "--jobs", NULL}, "--jobs"},
        {{"data", "stats", "--n", "5x", NULL}, "'5x'"},
        {{"data", "preview", "--caption-noise", "0.5.1", "--out", "x.png", NULL}, "'0.5.1'"},
        {{"data", "stats", "--bogus", "1", NULL}, "'--bogus'"},
        {{"help-spec", "--bogus", NULL}, "'--bogus'"},
        {{"help-spec", "train", "loss", NULL}, "'loss'"},
        {{"run", "a.yaml", "--id", NULL}, "--id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Cmd c = cli_args(cases[i].args);
        assert_one_line_error(&c);
        assert_contains(c.err, cases[i].needle);
        cmd_free(&c);
    }
}

/* A tiny complete experiment named "t" (seed 1), so runs take a fraction of a second. */
static const char *write_tiny_spec(char *path) {
    char text[PATH_MAX + 1024];
    snprintf(text, sizeof text,
             "base: %s/experiments/contrastive.yaml\nname: t\ndata.image_size: 16\nmodel.image.widths: [4, 8]\n"
             "model.image.tap: img.stage2\nmodel.text.width: 8\nmodel.embed_dim: 8\ntrain.batch_size: 32\n"
             "train.images: 64\neval.every_images: 64\ndata.eval_images: 32\neval.retrieval_n: 32\n"
             "eval.probe: false\ntrain.threads: 1\n",
             g_repo);
    snprintf(path, PATH_MAX, "%s/tiny.yaml", g_dir);
    write_text(path, text);
    return path;
}

/* Run ids name files inside --out: ids that could leave it, hide, or are empty are refused
 * before anything is written. */
static void test_run_ids_outside_the_folder_are_refused(void **state) {
    (void)state;
    char spec[PATH_MAX];
    write_tiny_spec(spec);
    const char *bad[] = {"../x", "", ".hidden", "a/b", "a b", "x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Cmd c = cli("run", spec, "--out", tmp("out/sub"), "--id", bad[i], NULL);
        assert_one_line_error(&c);
        assert_contains(c.err, "--id");
        cmd_free(&c);
    }
    assert_false(exists(tmp("out")));
    Cmd c = cli("run", spec, "--out", tmp("out"), "--id", "a-Z_0.9,x=y+z", NULL);
    assert_int_equal(c.status, 0);
    assert_completed(tmp("out/a-Z_0.9,x=y+z.h5"));
    cmd_free(&c);
}

/* Overrides have no fixed limit: the 150th is applied (here: rejected as invalid, not dropped). */
static void test_many_overrides_are_all_applied(void **state) {
    (void)state;
    char spec[PATH_MAX];
    write_tiny_spec(spec);
    const char *args[200];
    int n = 0;
    args[n++] = "run";
    args[n++] = spec;
    for (int i = 0; i < 149; i++) args[n++] = "seed=1";
    args[n++] = "train.images=-5";
    args[n++] = "--out";
    args[n++] = tmp("out");
    args[n] = NULL;
    Cmd c = cli_args(args);
    assert_one_line_error(&c);
    assert_contains(c.err, "train.images");
    assert_false(exists(tmp("out")));
    cmd_free(&c);
}

/* ---- 10. run ids follow the overrides (issue 14 item 6) -------------------------------------- */

/* Two variants run by hand into one folder get their own files, named as Hydra names folders. */
static void test_default_run_id_follows_the_overrides(void **state) {
    (void)state;
    char spec[PATH_MAX];
    write_tiny_spec(spec);
    const char *out = tmp("out");
    Cmd c = cli("run", spec, "--out", out, NULL);
    assert_int_equal(c.status, 0);
    cmd_free(&c);
    c = cli("run", spec, "loss.kind=siglip", "seed=2", "--out", out, NULL);
    assert_int_equal(c.status, 0);
    assert_contains(c.out, "t_loss.kind=siglip_seed=2.h5");
    cmd_free(&c);
    assert_completed(tmp("out/t_seed=1.h5"));
    assert_completed(tmp("out/t_loss.kind=siglip_seed=2.h5"));
}

/* The id rule itself: order kept, seed last, name and seed overrides not repeated, characters
 * outside the id set replaced, long ids cut with a hash that keeps them apart. */
static void test_default_run_id_rule(void **state) {
    (void)state;
    char id[RUN_ID_MAX + 1], id2[RUN_ID_MAX + 1];
    const char *over[] = {"loss.kind=siglip", "seed=3", "name=x", "data.fmnist_dir=/tmp/a b", "model.image.widths=[4,8]"};
    cli_default_run_id(id, sizeof id, "contrastive", 3, over, 5);
    assert_string_equal(id, "contrastive_loss.kind=siglip_data.fmnist_dir=-tmp-a-b_model.image.widths=-4,8-_seed=3");
    assert_true(cli_run_id_valid(id));
    cli_default_run_id(id, sizeof id, "contrastive", 1, NULL, 0);
    assert_string_equal(id, "contrastive_seed=1");
    const char *many_a[40], *many_b[40];
    for (int i = 0; i < 40; i++) many_a[i] = many_b[i] = "train.lr=0.001";
    many_b[39] = "train.lr=0.002";
    cli_default_run_id(id, sizeof id, "contrastive", 1, many_a, 40);
    cli_default_run_id(id2, sizeof id2, "contrastive", 1, many_b, 40);
    assert_int_equal(strlen(id), RUN_ID_MAX);
    assert_true(cli_run_id_valid(id) && cli_run_id_valid(id2));
    assert_string_not_equal(id, id2);
    assert_false(cli_run_id_valid("../x"));
    assert_false(cli_run_id_valid(""));
    assert_false(cli_run_id_valid(".x"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loss_constraints_are_checked_at_spec_load, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_spec_errors_are_one_line_and_exit_1, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_dry_run_lists_runs_with_ids, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_tiny_sweep_end_to_end_and_report, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_tune_stage_end_to_end, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_kill9_then_resume_is_bitwise_identical, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_killed_between_runs_keeps_finished_runs, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unwritable_results_folder_is_one_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_report_skips_corrupt_and_foreign_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_never_overwrites_without_force, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_bit_flipped_run_is_corrupt_not_finished, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_second_writer_on_a_run_is_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_two_sweeps_share_one_folder, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_full_disk_is_one_line_and_loses_nothing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_usage_errors_and_help, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_every_subcommand_has_help, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unknown_flags_and_bad_numbers_are_one_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_ids_outside_the_folder_are_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_many_overrides_are_all_applied, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_default_run_id_follows_the_overrides, setup_dir, teardown_dir),
        cmocka_unit_test(test_default_run_id_rule),
        cmocka_unit_test_setup_teardown(test_missing_dataset_dir_is_one_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_refuses_to_overwrite_without_force, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_resume_after_kill9, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch_beyond_memory_refused_with_estimate, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_tiny_dataset_with_probe_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_checks_every_run_before_starting, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_sigint_checkpoints_and_prints_resume, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_resume_under_a_different_spec_is_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_sigterm_forwards_to_jobs, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sweep_jobs_equal_sequential, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_smoke_profiles_of_the_ablations_run_and_plot, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
