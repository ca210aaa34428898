/* runlog.c — the per-run HDF5 file: attributes, buffered /train and /eval series, /summary,
 * atomic finish (see runlog.h for the contract).
 * Deliberately left out: reading (report.c does it) and concurrent writers.
 */
#include "runlog.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>
#include <zlib.h>

#include "common/runtime.h"
#include "h5io.h"
#include "report.h"

char *openblas_get_config(void); /* declared here: Debian's cblas.h belongs to the pthread flavour */

enum { GROUP_TRAIN, GROUP_EVAL, GROUP_COUNT };
static const char *const GROUP_NAMES[GROUP_COUNT] = {"train", "eval"};

typedef struct {
    char name[H5IO_NAME_MAX];
    int group;
    hid_t dset;
    long file_rows; /* rows in the file as of the last write-out */
    int n_pending;
    double *pending; /* RUNLOG_PENDING_ROWS rows not yet written */
} Series;

struct RunLog {
    hid_t file;
    hid_t groups[GROUP_COUNT];
    hid_t summary;
    char tmp_path[PATH_MAX];
    char final_path[PATH_MAX];
    Series *series;
    int n_series, cap_series;
    Err error; /* sticky first write error; empty message while all is well */
};

static int group_index(const char *group) {
    for (int g = 0; g < GROUP_COUNT; g++)
        if (strcmp(group, GROUP_NAMES[g]) == 0) return g;
    CHECK(0, "runlog: unknown group '%s' (expected \"train\" or \"eval\")", group);
}

/* Records the first failure only: later ones are usually consequences of it. */
static void set_error(RunLog *l, const char *what) {
    if (l->error.msg[0]) return;
    char why[256];
    h5io_error(why, sizeof why);
    err_set(&l->error, "writing run log '%s' failed (%s): %s", l->tmp_path, what, why);
}

static int make_paths(RunLog *l, const char *dir, const char *run_id, Err *err) {
    int a = snprintf(l->tmp_path, sizeof l->tmp_path, "%s/%s.h5.tmp", dir, run_id);
    int b = snprintf(l->final_path, sizeof l->final_path, "%s/%s.h5", dir, run_id);
    if (a >= (int)sizeof l->tmp_path || b >= (int)sizeof l->final_path)
        return err_set(err, "run log path too long: '%s/%s.h5'", dir, run_id);
    return 0;
}

static Series *add_series(RunLog *l, int group, const char *name, hid_t dset, long file_rows) {
    if (l->n_series == l->cap_series) {
        l->cap_series = l->cap_series ? 2 * l->cap_series : 16;
        l->series = reallocCheck(l->series, (size_t)l->cap_series * sizeof *l->series);
    }
    Series *s = &l->series[l->n_series++];
    memset(s, 0, sizeof *s);
    h5io_copy(s->name, sizeof s->name, name);
    s->group = group;
    s->dset = dset;
    s->file_rows = file_rows;
    s->pending = mallocCheck(RUNLOG_PENDING_ROWS * sizeof(double));
    return s;
}

static long series_rows(const Series *s) { return s->file_rows + s->n_pending; }

static long group_rows(const RunLog *l, int group) {
    long rows = -1;
    for (int i = 0; i < l->n_series; i++)
        if (l->series[i].group == group && (rows < 0 || series_rows(&l->series[i]) < rows)) rows = series_rows(&l->series[i]);
    return rows < 0 ? 0 : rows;
}

/* Groups track link creation order so exports list columns in the order the trainer logs them. */
static hid_t create_group(hid_t file, const char *name) {
    hid_t pl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(pl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_link_phase_change(pl, H5IO_COMPACT_MAX, 0);
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Pclose(pl);
    return g;
}

static RunLog *runlog_alloc(const char *dir, const char *run_id, Err *err) {
    RunLog *l = callocCheck(1, sizeof *l);
    l->file = l->summary = -1;
    l->groups[GROUP_TRAIN] = l->groups[GROUP_EVAL] = -1;
    if (make_paths(l, dir, run_id, err)) {
        free(l);
        return NULL;
    }
    return l;
}

static void runlog_free(RunLog *l) {
    for (int i = 0; i < l->n_series; i++) {
        if (l->series[i].dset >= 0) H5Dclose(l->series[i].dset);
        free(l->series[i].pending);
    }
    for (int g = 0; g < GROUP_COUNT; g++)
        if (l->groups[g] >= 0) H5Gclose(l->groups[g]);
    if (l->summary >= 0) H5Gclose(l->summary);
    if (l->file >= 0) H5Fclose(l->file);
    free(l->series);
    free(l);
}

RunLog *runlog_create(const char *dir, const char *run_id, Err *err) {
    h5io_quiet();
    RunLog *l = runlog_alloc(dir, run_id, err);
    if (!l) return NULL;
    if (h5io_mkdirs(dir, err) || h5io_probe_create(l->tmp_path, "run log", err)) {
        runlog_free(l);
        return NULL;
    }
    hid_t fapl = h5io_fapl_checksummed(), fcpl = h5io_fcpl_compact();
    l->file = H5Fcreate(l->tmp_path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (l->file < 0) {
        char why[256];
        h5io_error(why, sizeof why);
        err_set(err, "cannot create run log '%s': %s", l->tmp_path, why);
        runlog_free(l);
        return NULL;
    }
    for (int g = 0; g < GROUP_COUNT; g++) l->groups[g] = create_group(l->file, GROUP_NAMES[g]);
    l->summary = create_group(l->file, "summary");
    CHECK(l->groups[GROUP_TRAIN] >= 0 && l->groups[GROUP_EVAL] >= 0 && l->summary >= 0, "cannot create groups in '%s'", l->tmp_path);
    runlog_attr_str(l, "format", RUNLOG_FORMAT);
    runlog_attr_int(l, "format_version", RUNLOG_FORMAT_VERSION);
    runlog_attr_str(l, "run_id", run_id);
    return l;
}

/* Opens every dataset of group g, truncating it to `rows` (it must have at least that many). */
static int resume_group(RunLog *l, int g, long rows, Err *err) {
    char(*names)[H5IO_NAME_MAX];
    int n = h5io_list(l->groups[g], &names);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        hid_t d = H5Dopen2(l->groups[g], names[i], H5P_DEFAULT);
        hsize_t dims[1] = {0};
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1;
        if (ok) H5Sget_simple_extent_dims(sp, dims, NULL);
        if (sp >= 0) H5Sclose(sp);
        if (!ok) {
            rc = err_set(err, "cannot resume '%s': /%s/%s is not a 1-D series", l->tmp_path, GROUP_NAMES[g], names[i]);
        } else if ((long)dims[0] < rows) {
            rc = err_set(err, "cannot resume '%s': /%s/%s has %ld rows but the checkpoint counts %ld", l->tmp_path,
                         GROUP_NAMES[g], names[i], (long)dims[0], rows);
        } else {
            hsize_t keep[1] = {(hsize_t)rows};
            if (H5Dset_extent(d, keep) < 0) rc = err_set(err, "cannot resume '%s': truncating /%s/%s failed", l->tmp_path, GROUP_NAMES[g], names[i]);
        }
        if (rc == 0) add_series(l, g, names[i], d, rows);
        else if (d >= 0) H5Dclose(d);
    }
    free(names);
    return rc;
}

RunLog *runlog_resume(const char *dir, const char *run_id, long n_train, long n_eval, Err *err) {
    h5io_quiet();
    RunLog *l = runlog_alloc(dir, run_id, err);
    if (!l) return NULL;
    if (access(l->tmp_path, F_OK) != 0) {
        err_set(err, "cannot resume run '%s': '%s' not found", run_id, l->tmp_path);
        runlog_free(l);
        return NULL;
    }
    Err why;
    if (report_verify(l->tmp_path, &why)) {
        err_set(err, "cannot resume run '%s': %s", run_id, why.msg);
        runlog_free(l);
        return NULL;
    }
    l->file = h5io_open(l->tmp_path, H5F_ACC_RDWR);
    char fmt[32] = "";
    if (l->file < 0 || h5io_attr_get_str(l->file, "format", fmt, sizeof fmt) || strcmp(fmt, RUNLOG_FORMAT) != 0) {
        err_set(err, "cannot resume run '%s': '%s' is %s", run_id, l->tmp_path,
                l->file < 0 ? "not a readable HDF5 file" : "not a cliplab run log");
        runlog_free(l);
        return NULL;
    }
    for (int g = 0; g < GROUP_COUNT; g++) l->groups[g] = H5Gopen2(l->file, GROUP_NAMES[g], H5P_DEFAULT);
    l->summary = H5Gopen2(l->file, "summary", H5P_DEFAULT);
    if (l->groups[GROUP_TRAIN] < 0 || l->groups[GROUP_EVAL] < 0 || l->summary < 0) {
        err_set(err, "cannot resume run '%s': '%s' lacks the /train, /eval or /summary group", run_id, l->tmp_path);
        runlog_free(l);
        return NULL;
    }
    if (resume_group(l, GROUP_TRAIN, n_train, err) || resume_group(l, GROUP_EVAL, n_eval, err)) {
        runlog_free(l);
        return NULL;
    }
    /* Summaries belong to the end of a run; any written after the checkpoint are stale. */
    char(*names)[H5IO_NAME_MAX];
    int n = h5io_list(l->summary, &names);
    for (int i = 0; i < n; i++) H5Ldelete(l->summary, names[i], H5P_DEFAULT);
    free(names);
    if (H5Aexists(l->file, "status") > 0) H5Adelete(l->file, "status");
    if (H5Aexists(l->file, RUNLOG_ATTRS_CRC) > 0) H5Adelete(l->file, RUNLOG_ATTRS_CRC);
    if (H5Fflush(l->file, H5F_SCOPE_LOCAL) < 0) {
        err_set(err, "cannot resume run '%s': flushing '%s' failed", run_id, l->tmp_path);
        runlog_free(l);
        return NULL;
    }
    return l;
}

void runlog_attr_str(RunLog *l, const char *name, const char *value) {
    if (h5io_attr_set_str(l->file, name, value)) set_error(l, name);
}

void runlog_attr_int(RunLog *l, const char *name, long value) {
    if (h5io_attr_set_i64(l->file, name, value)) set_error(l, name);
}

void runlog_attr_double(RunLog *l, const char *name, double value) {
    if (h5io_attr_set_f64(l->file, name, value)) set_error(l, name);
}

/* Creates /<group>/<name> holding `pad` NaN rows (the fill value), so it aligns with its group. */
static hid_t create_series(RunLog *l, int g, const char *name, long pad) {
    hsize_t dims[1] = {(hsize_t)pad}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {RUNLOG_CHUNK_ROWS};
    double nan = NAN;
    hid_t sp = H5Screate_simple(1, dims, maxdims);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, chunk);
    H5Pset_fill_value(pl, H5T_NATIVE_DOUBLE, &nan);
    H5Pset_fill_time(pl, H5D_FILL_TIME_ALLOC);
    H5Pset_fletcher32(pl);
    /* every chunk of the extent exists on disk, so report_verify can demand one per 1024 rows */
    H5Pset_alloc_time(pl, H5D_ALLOC_TIME_EARLY);
    hid_t d = H5Dcreate2(l->groups[g], name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Pclose(pl);
    H5Sclose(sp);
    if (d < 0) set_error(l, name);
    return d;
}

/* Appends the buffered rows of every series to the file, then flushes HDF5's caches. */
static void write_out(RunLog *l) {
    for (int i = 0; i < l->n_series; i++) {
        Series *s = &l->series[i];
        if (s->n_pending == 0) continue;
        if (s->dset >= 0 && !l->error.msg[0]) {
            hsize_t start[1] = {(hsize_t)s->file_rows}, count[1] = {(hsize_t)s->n_pending};
            hsize_t total[1] = {start[0] + count[0]};
            /* every API call clears HDF5's error stack, so the memory space comes first and the
             * failing call is the last one before set_error reads the stack */
            hid_t ms = H5Screate_simple(1, count, NULL);
            int ok = H5Dset_extent(s->dset, total) >= 0;
            hid_t fs = ok ? H5Dget_space(s->dset) : -1;
            ok = ok && fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                 H5Dwrite(s->dset, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, s->pending) >= 0;
            if (!ok) set_error(l, s->name);
            if (fs >= 0) H5Sclose(fs);
            H5Sclose(ms);
        }
        s->file_rows += s->n_pending;
        s->n_pending = 0;
    }
    if (!l->error.msg[0] && H5Fflush(l->file, H5F_SCOPE_LOCAL) < 0) set_error(l, "flush");
}

/* The group's first dataset, which starts every row (see runlog.h); NULL while the group is empty. */
static Series *group_lead(RunLog *l, int group) {
    for (int i = 0; i < l->n_series; i++)
        if (l->series[i].group == group) return &l->series[i];
    return NULL;
}

void runlog_append(RunLog *l, const char *group, const char *name, double value) {
    int g = group_index(group);
    Series *s = NULL, *lead = group_lead(l, g);
    for (int i = 0; i < l->n_series && !s; i++)
        if (l->series[i].group == g && strcmp(l->series[i].name, name) == 0) s = &l->series[i];
    if (!s) {
        CHECK(strlen(name) < H5IO_NAME_MAX, "runlog: series name too long: '%s'", name);
        /* Joining the row the lead has started: every earlier row gets NaN. */
        long pad = lead && series_rows(lead) > 0 ? series_rows(lead) - 1 : 0;
        s = add_series(l, g, name, create_series(l, g, name, pad), pad);
    } else if (s == lead) {
        CHECK(group_rows(l, g) == series_rows(s), "runlog: /%s row %ld is incomplete when /%s/%s starts the next one", group,
              series_rows(s) - 1, group, name);
    } else {
        CHECK(series_rows(s) == series_rows(lead) - 1, "runlog: /%s/%s appended twice in one row, or before /%s/%s which starts each row",
              group, name, group, lead->name);
    }
    s->pending[s->n_pending++] = value;
    if (s->n_pending == RUNLOG_PENDING_ROWS) write_out(l);
}

long runlog_rows(RunLog *l, const char *group) { return group_rows(l, group_index(group)); }

void runlog_summary(RunLog *l, const char *name, double value) {
    hid_t d;
    if (H5Lexists(l->summary, name, H5P_DEFAULT) > 0) {
        d = H5Dopen2(l->summary, name, H5P_DEFAULT);
    } else {
        /* compact: the value lives in the dataset's object header, under its checksum */
        hid_t sp = H5Screate(H5S_SCALAR), pl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_layout(pl, H5D_COMPACT);
        d = H5Dcreate2(l->summary, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
        H5Pclose(pl);
        H5Sclose(sp);
    }
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0) set_error(l, name);
    if (d >= 0) H5Dclose(d);
}

void runlog_describe(RunLog *l, const char *group, const char *name, long n, double chance) {
    hid_t parent = strcmp(group, "summary") == 0 ? l->summary : l->groups[group_index(group)];
    hid_t d = H5Dopen2(parent, name, H5P_DEFAULT);
    CHECK(d >= 0 || l->error.msg[0], "runlog: describing /%s/%s, which was never written", group, name);
    if (d < 0) return;
    if (h5io_attr_set_i64(d, "n", n) || (!isnan(chance) && h5io_attr_set_f64(d, "chance", chance))) set_error(l, name);
    H5Dclose(d);
}

int runlog_flush(RunLog *l) {
    write_out(l);
    return l->error.msg[0] ? -1 : 0;
}

const char *runlog_error(const RunLog *l) { return l->error.msg[0] ? l->error.msg : NULL; }

const char *runlog_path(const RunLog *l) { return l->tmp_path; }

static void iso_time_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *const STATUSES[] = {"completed", "diverged", "failed"};

int runlog_finish(RunLog *l, const char *status, Err *err) {
    int known = 0;
    for (size_t i = 0; i < sizeof STATUSES / sizeof *STATUSES; i++) known |= strcmp(status, STATUSES[i]) == 0;
    CHECK(known, "runlog: unknown status '%s'", status);
    char now[32];
    iso_time_now(now, sizeof now);
    runlog_attr_str(l, "status", status);
    runlog_attr_str(l, "end_time", now);
    uint32_t crc;
    if (h5io_attrs_crc32(l->file, RUNLOG_ATTRS_CRC, &crc) == 0) runlog_attr_int(l, RUNLOG_ATTRS_CRC, (long)crc);
    else set_error(l, RUNLOG_ATTRS_CRC);
    write_out(l);
    /* Close everything before the rename: H5Fclose writes the last metadata. */
    for (int i = 0; i < l->n_series; i++) {
        if (l->series[i].dset >= 0) H5Dclose(l->series[i].dset);
        l->series[i].dset = -1;
    }
    for (int g = 0; g < GROUP_COUNT; g++) H5Gclose(l->groups[g]);
    H5Gclose(l->summary);
    l->groups[GROUP_TRAIN] = l->groups[GROUP_EVAL] = l->summary = -1;
    if (H5Fclose(l->file) < 0) set_error(l, "close");
    l->file = -1;
    int rc = l->error.msg[0] ? err_set(err, "%s", l->error.msg) : h5io_commit(l->tmp_path, l->final_path, err);
    runlog_free(l);
    return rc;
}

void runlog_abandon(RunLog *l) {
    write_out(l);
    runlog_free(l);
}

/* First line of a shell command's output (without the newline); -1 if the command fails. */
static int command_line(const char *cmd, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    if (!fgets(buf, (int)n, p)) buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    /* Drain so the child never blocks on a full pipe. */
    char sink[256];
    while (fgets(sink, sizeof sink, p)) {
    }
    return pclose(p) == 0 ? 0 : -1;
}

/* The Makefile compiles the commit in (build_commit); objects built otherwise, e.g. the fuzz
 * targets', record "unknown". */
#ifndef CLIPLAB_BUILD_COMMIT
#define CLIPLAB_BUILD_COMMIT "unknown"
#endif

void runlog_provenance(RunLog *l) {
    char commit[128], status[256], host[256] = "unknown", now[32], hdf5[32];
    int in_repo = command_line("git rev-parse HEAD 2>/dev/null", commit, sizeof commit) == 0 && commit[0];
    /* A run on uncommitted code is not reproducible from the commit alone: flag it. Any output
     * line of `git status --porcelain` (modified or untracked file) counts. */
    long dirty = -1;
    if (in_repo && command_line("git status --porcelain 2>/dev/null", status, sizeof status) == 0) dirty = status[0] != '\0';
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(hdf5, sizeof hdf5, "%u.%u.%u", maj, min, rel);
    iso_time_now(now, sizeof now);
    runlog_attr_str(l, "git_commit", in_repo ? commit : "unknown");
    runlog_attr_int(l, "git_dirty", dirty);
    runlog_attr_str(l, "build_commit", CLIPLAB_BUILD_COMMIT);
    runlog_attr_str(l, "host", host);
    runlog_attr_int(l, "threads", omp_get_max_threads());
    runlog_attr_str(l, "hdf5_version", hdf5);
    runlog_attr_str(l, "yaml_version", yaml_get_version_string());
    runlog_attr_str(l, "openblas_config", openblas_get_config());
    runlog_attr_str(l, "zlib_version", zlibVersion());
    runlog_attr_str(l, "cliplab_version", CLIPLAB_VERSION);
    runlog_attr_str(l, "start_time", now);
}
