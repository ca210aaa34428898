/* report.c — scan finished run files, print the run table with aggregates over seeds, export TSV
 * (see report.h).
 * Deliberately left out: caching of parsed files (a results folder holds tens to hundreds of runs,
 * each read in milliseconds).
 */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "runlog.h"
#include "runtable.h"

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The attributes runlog_describe writes: n (0 if absent) and chance (NaN if absent). */
static void describe(hid_t d, long *n, double *chance) {
    int64_t v;
    *n = h5io_attr_get_i64(d, "n", &v) ? 0 : (long)v;
    if (h5io_attr_get_f64(d, "chance", chance)) *chance = NAN;
}

/* The most values one dataset of file f can hold: runlog allocates every chunk it writes, so a
 * dataset claiming more rows than the file has bytes for (plus one chunk of slack) is crafted, and
 * no read allocates more than the file's size. */
static hsize_t file_max_values(hid_t f) {
    hsize_t size = 0;
    if (H5Fget_filesize(f, &size) < 0) return 0;
    return size / sizeof(double) + RUNLOG_CHUNK_ROWS;
}

/* Opens g/name if it is a float dataset that is 1-D (a scalar or one element when `scalar`) with
 * at most max values; returns it and *n, or -1 with *why saying what is wrong. */
static hid_t values_open(hid_t g, const char *name, int scalar, hsize_t max, hsize_t *n, const char **why) {
    H5O_info_t oi;
    if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) {
        *why = "is not a dataset";
        return -1;
    }
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) {
        *why = "cannot be opened";
        return -1;
    }
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hssize_t npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    *why = NULL;
    if (t < 0 || H5Tget_class(t) != H5T_FLOAT) *why = "is not a floating-point dataset";
    else if (scalar && !(rank == 0 || (rank == 1 && npts == 1))) *why = "is not a scalar";
    else if (!scalar && rank != 1) *why = "is not a 1-D series";
    else if (npts < 0 || (hsize_t)npts > max) *why = "claims more values than the file can hold";
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (*why) {
        H5Dclose(d);
        return -1;
    }
    *n = (hsize_t)npts;
    return d;
}

/* Reads all of g/name (checked by values_open) into a malloc'd array; -1 + *why on failure,
 * e.g. a chunk failing its Fletcher-32 checksum. */
static long values_read(hid_t g, const char *name, int scalar, hsize_t max, double **out, const char **why) {
    hsize_t n;
    *out = NULL;
    hid_t d = values_open(g, name, scalar, max, &n, why);
    if (d < 0) return -1;
    *out = mallocCheck(n ? (size_t)n * sizeof **out : 1);
    long rc = (long)n;
    if (n > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        *why = "fails its checksum or cannot be read";
        free(*out);
        *out = NULL;
        rc = -1;
    }
    H5Dclose(d);
    return rc;
}

/* The chunk index of a series in a version-2 file: one chunk per started RUNLOG_CHUNK_ROWS rows
 * (runlog allocates them early), in order, all filters applied. The 1.8 file format's chunk index
 * (a v1 B-tree) has no checksum: a flipped key there would silently turn a chunk into NaN fill. */
static int chunks_ok(hid_t d, hsize_t rows) {
    hid_t pl = H5Dget_create_plist(d);
    hsize_t cdim = 0;
    int chunked = pl >= 0 && H5Pget_layout(pl) == H5D_CHUNKED && H5Pget_chunk(pl, 1, &cdim) == 1 && cdim > 0;
    if (pl >= 0) H5Pclose(pl);
    if (!chunked) return 0;
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    int ok = sp >= 0 && H5Dget_num_chunks(d, sp, &n) >= 0 && n == (rows + cdim - 1) / cdim;
    for (hsize_t i = 0; ok && i < n; i++) {
        hsize_t off[1], size;
        unsigned mask;
        haddr_t addr;
        ok = H5Dget_chunk_info(d, sp, i, off, &mask, &addr, &size) >= 0 && off[0] == i * cdim && mask == 0;
    }
    if (sp >= 0) H5Sclose(sp);
    return ok;
}

static const char *const RUN_GROUPS[] = {"train", "eval", "summary"};

/* Every dataset of /train, /eval and /summary has its expected type and shape, reads back through
 * its checksum, and (series) has a whole chunk index. */
static int verify_groups(hid_t f, const char *path, Err *err) {
    hsize_t max = file_max_values(f);
    for (int gi = 0; gi < 3; gi++) {
        const char *group = RUN_GROUPS[gi];
        H5G_info_t info;
        hid_t g = H5Lexists(f, group, H5P_DEFAULT) > 0 ? H5Gopen2(f, group, H5P_DEFAULT) : -1;
        if (g < 0 || H5Gget_info(g, &info) < 0 || info.nlinks > H5IO_LIST_MAX) {
            if (g >= 0) H5Gclose(g);
            return err_set(err, "'%s': corrupt: /%s is missing or unreadable", path, group);
        }
        char(*names)[H5IO_NAME_MAX];
        int n = h5io_list(g, &names), rc = 0;
        for (int i = 0; i < n && rc == 0; i++) {
            double *v;
            const char *why;
            long rows = values_read(g, names[i], gi == 2, max, &v, &why);
            free(v);
            if (rows >= 0 && gi < 2) {
                hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT);
                if (!chunks_ok(d, (hsize_t)rows)) rows = -1, why = "has a damaged chunk index";
                H5Dclose(d);
            }
            if (rows < 0) rc = err_set(err, "'%s': corrupt: /%s/%s %s", path, group, names[i], why);
        }
        free(names);
        H5Gclose(g);
        if (rc) return rc;
    }
    return 0;
}

static int verify_file(hid_t f, const char *path, Err *err) {
    char fmt[32] = "";
    int64_t version = 0, stored;
    uint32_t crc;
    if (h5io_attr_get_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, RUNLOG_FORMAT) != 0)
        return err_set(err, "'%s': not a cliplab run file (no format=\"%s\" attribute)", path, RUNLOG_FORMAT);
    if (h5io_attr_get_i64(f, "format_version", &version) || version != RUNLOG_FORMAT_VERSION)
        return err_set(err, "'%s': run-file format version %lld; this build reads version %d", path, (long long)version,
                       RUNLOG_FORMAT_VERSION);
    if (H5Aexists(f, "status") > 0) {
        if (h5io_attr_get_i64(f, RUNLOG_ATTRS_CRC, &stored))
            return err_set(err, "'%s': corrupt: it has a status but no %s attribute", path, RUNLOG_ATTRS_CRC);
        if (h5io_attrs_crc32(f, RUNLOG_ATTRS_CRC, &crc) || (uint32_t)stored != crc)
            return err_set(err, "'%s': corrupt: its attributes fail their checksum", path);
    }
    return verify_groups(f, path, err);
}

int report_verify(const char *path, Err *err) {
    /* Files without metadata checksums (cliplab's format 1, foreign files) are not handed to
     * libhdf5 at all: fuzzing found crafted ones that crash or hang it (tests/fuzz/README.md). */
    int superblock = h5io_superblock_version(path);
    if (superblock < 0) return err_set(err, "'%s': corrupt or not an HDF5 file (no HDF5 signature)", path);
    if (superblock < 2)
        return err_set(err, "'%s': an HDF5 file without metadata checksums (cliplab run-file format 1, or not "
                            "cliplab's); not read, because a damaged one can crash the HDF5 library: re-run it", path);
    h5io_quiet();
    hid_t f = h5io_open(path, H5F_ACC_RDONLY);
    if (f < 0) {
        char why[256];
        h5io_error(why, sizeof why);
        return err_set(err, "'%s': corrupt or not an HDF5 file (%s)", path, why);
    }
    int rc = verify_file(f, path, err);
    H5Fclose(f);
    return rc;
}

/* Reads /summary of a verified run file (every entry a readable float scalar). */
static void read_summary(hid_t f, RunInfo *r) {
    hid_t g = H5Gopen2(f, "summary", H5P_DEFAULT);
    if (g < 0) return;
    char(*names)[H5IO_NAME_MAX];
    int n = h5io_list(g, &names);
    r->summary_names = callocCheck(n ? (size_t)n : 1, sizeof *r->summary_names);
    r->summary_values = callocCheck(n ? (size_t)n : 1, sizeof *r->summary_values);
    r->summary_counts = callocCheck(n ? (size_t)n : 1, sizeof *r->summary_counts);
    r->summary_chance = callocCheck(n ? (size_t)n : 1, sizeof *r->summary_chance);
    for (int i = 0; i < n; i++) {
        double *v;
        const char *why;
        if (values_read(g, names[i], 1, 1, &v, &why) == 1) {
            h5io_copy(r->summary_names[r->n_summary], sizeof *r->summary_names, names[i]);
            hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT);
            describe(d, &r->summary_counts[r->n_summary], &r->summary_chance[r->n_summary]);
            H5Dclose(d);
            r->summary_values[r->n_summary++] = v[0];
        }
        free(v);
    }
    free(names);
    H5Gclose(g);
}

/* Fills r from the run file at path; -1 (with one warning line on stderr) unless it is a run file
 * that passes report_verify. */
static int read_run(const char *path, const char *file_name, RunInfo *r) {
    Err err;
    if (report_verify(path, &err)) {
        fprintf(stderr, "warning: skipping %s\n", err.msg);
        return -1;
    }
    hid_t f = h5io_open(path, H5F_ACC_RDONLY);
    if (f < 0) {
        fprintf(stderr, "warning: skipping '%s': not a readable HDF5 file\n", path);
        return -1;
    }
    memset(r, 0, sizeof *r);
    snprintf(r->run_id, sizeof r->run_id, "%.*s", (int)(strlen(file_name) - 3), file_name);
    h5io_copy(r->path, sizeof r->path, path);
    if (h5io_attr_get_str(f, "status", r->status, sizeof r->status)) snprintf(r->status, sizeof r->status, "unknown");
    if (h5io_attr_get_str(f, "swept", r->swept, sizeof r->swept)) r->swept[0] = '\0';
    if (h5io_attr_get_str(f, "warning", r->warning, sizeof r->warning)) r->warning[0] = '\0';
    if (h5io_attr_get_str(f, "tuned", r->tuned, sizeof r->tuned)) r->tuned[0] = '\0';
    if (h5io_attr_get_str(f, "schedule", r->schedule, sizeof r->schedule)) r->schedule[0] = '\0';
    if (h5io_attr_get_f64(f, "budget_free_until_images", &r->budget_free_until)) r->budget_free_until = NAN;
    int64_t seed;
    r->seed = h5io_attr_get_i64(f, "seed", &seed) ? -1 : (long)seed;
    read_summary(f, r);
    H5Fclose(f);
    return 0;
}

int report_scan(const char *dir, RunInfo **runs, int *n_runs, Err *err) {
    h5io_quiet();
    *runs = NULL;
    *n_runs = 0;
    DIR *d = opendir(dir);
    if (!d) return err_set(err, "cannot read results directory '%s': %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with(e->d_name, ".h5") || ends_with(e->d_name, ".ckpt.h5")) continue;
        names = reallocCheck(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *runs = callocCheck(n ? (size_t)n : 1, sizeof **runs);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (read_run(path, names[i], &(*runs)[*n_runs]) == 0) (*n_runs)++;
        free(names[i]);
    }
    free(names);
    return 0;
}

void report_free(RunInfo *runs, int n) {
    for (int i = 0; i < n; i++) {
        free(runs[i].summary_names);
        free(runs[i].summary_values);
        free(runs[i].summary_counts);
        free(runs[i].summary_chance);
    }
    free(runs);
}

int report_list_series(const char *path, const char *group, char (**names)[REPORT_NAME_MAX]) {
    _Static_assert(REPORT_NAME_MAX == H5IO_NAME_MAX, "report names are h5io names");
    *names = NULL;
    h5io_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    int n = g >= 0 ? h5io_list(g, names) : 0;
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return n;
}

int report_read_attr_str(const char *path, const char *name, char *buf, size_t n) {
    h5io_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    int rc = h5io_attr_get_str(f, name, buf, n);
    H5Fclose(f);
    return rc;
}

long report_read_series(const char *path, const char *group, const char *name, double **out) {
    h5io_quiet();
    *out = NULL;
    hid_t f = h5io_open(path, H5F_ACC_RDONLY);
    if (f < 0) return -1;
    char full[256];
    snprintf(full, sizeof full, "/%s/%s", group, name);
    long n = -1;
    /* H5Lexists on "/g/x" fails (not just returns 0) when /g is missing, hence both checks. */
    if (H5Lexists(f, group, H5P_DEFAULT) > 0 && H5Lexists(f, full, H5P_DEFAULT) > 0) {
        const char *why;
        n = values_read(f, full, !strcmp(group, "summary"), file_max_values(f), out, &why);
    }
    H5Fclose(f);
    return n;
}

int report_read_description(const char *path, const char *group, const char *name, long *n, double *chance) {
    h5io_quiet();
    *n = 0;
    *chance = NAN;
    hid_t f = h5io_open(path, H5F_ACC_RDONLY);
    if (f < 0) return -1;
    char full[256];
    snprintf(full, sizeof full, "/%s/%s", group, name);
    hid_t d = H5Lexists(f, group, H5P_DEFAULT) > 0 && H5Lexists(f, full, H5P_DEFAULT) > 0 ? H5Dopen2(f, full, H5P_DEFAULT) : -1;
    if (d >= 0) {
        describe(d, n, chance);
        H5Dclose(d);
    }
    H5Fclose(f);
    return d >= 0 ? 0 : -1;
}

double report_eval_se(double p, long n) {
    if (n <= 0 || !(p >= 0.0 && p <= 1.0)) return NAN;
    return sqrt(p * (1.0 - p) / (double)n);
}

void report_config_key(const char *swept, char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    const char *s = swept;
    while (*s) {
        size_t m = strcspn(s, ",");
        if (!(m >= 5 && strncmp(s, "seed=", 5) == 0)) {
            len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%.*s", len ? "," : "", (int)m, s);
            if (len >= n) len = n - 1;
        }
        s += m + (s[m] == ',');
    }
}

static int is_completed(const RunInfo *r) { return runtable_completed(r); }

static int summary_index(const RunInfo *r, const char *name) {
    for (int i = 0; i < r->n_summary; i++)
        if (strcmp(r->summary_names[i], name) == 0) return i;
    return -1;
}

static int summary_get(const RunInfo *r, const char *name, double *v) {
    int i = summary_index(r, name);
    if (i >= 0) *v = r->summary_values[i];
    return i < 0 ? -1 : 0;
}

/* Evaluation-only standard error of a run's summary metric (NaN unless an accuracy with an n). */
static double summary_se(const RunInfo *r, const char *name) {
    int i = summary_index(r, name);
    return i < 0 || isnan(r->summary_chance[i]) ? NAN : report_eval_se(r->summary_values[i], r->summary_counts[i]);
}

/* Display width of UTF-8 text: "±" is two bytes but one column. */
static int text_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

#define CELL_MAX 160

/* Prints rows x cols cells (row-major, the first row being the header) as aligned columns with a
 * two-space gutter and no trailing blanks; frees the cells. */
static void print_table(FILE *f, char (*cell)[CELL_MAX], int rows, int cols) {
    int *width = callocCheck((size_t)cols, sizeof *width);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (text_width(cell[(size_t)r * cols + c]) > width[c]) width[c] = text_width(cell[(size_t)r * cols + c]);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *s = cell[(size_t)r * cols + c];
            fputs(s, f);
            if (c < cols - 1) fprintf(f, "%*s", width[c] - text_width(s) + 2, "");
        }
        fputc('\n', f);
    }
    free(width);
    free(cell);
}

/* Appends name to the list (*names)[*count] unless it is there: unions in first-appearance order. */
static void name_union_add(const char ***names, int *count, const char *name) {
    for (int j = 0; j < *count; j++)
        if (strcmp((*names)[j], name) == 0) return;
    *names = reallocCheck(*names, (size_t)(*count + 1) * sizeof **names);
    (*names)[(*count)++] = name;
}

/* Metric names to show: the given ones, or the union of summary names in first-appearance order. */
static int metric_list(const RunInfo *runs, int n, const char *const *metrics, int n_metrics, const char ***out) {
    const char **names = mallocCheck(sizeof *names);
    int count = 0;
    if (metrics && n_metrics > 0) {
        names = reallocCheck(names, (size_t)n_metrics * sizeof *names);
        for (int i = 0; i < n_metrics; i++) names[count++] = metrics[i];
    } else {
        for (int i = 0; i < n; i++)
            for (int k = 0; k < runs[i].n_summary; k++) name_union_add(&names, &count, runs[i].summary_names[k]);
    }
    *out = names;
    return count;
}

/* "mean ± std [min..max]" of metric over the completed runs of configuration c (std: sample,
 * n-1; "-" with one value), with "(n=k)" when fewer than n_cfg runs have a finite value. */
static void aggregate_cell(char *buf, size_t cap, const RunInfo *runs, const RunConfig *rc, const char *metric) {
    const int n_cfg = rc->n_completed;
    double sum = 0, sum2 = 0, lo = INFINITY, hi = -INFINITY, v, var_eval = 0;
    int k = 0;
    for (int j = 0; j < rc->n_runs; j++) {
        int i = rc->runs[j];
        if (!is_completed(&runs[i]) || summary_get(&runs[i], metric, &v) || isnan(v)) continue;
        double se = summary_se(&runs[i], metric);
        var_eval += se * se; /* NaN as soon as one run lacks it */
        sum += v;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        k++;
    }
    if (k == 0) {
        snprintf(buf, cap, "-");
        return;
    }
    double mean = sum / k;
    for (int j = 0; j < rc->n_runs; j++) {
        int i = rc->runs[j];
        if (is_completed(&runs[i]) && summary_get(&runs[i], metric, &v) == 0 && !isnan(v)) sum2 += (v - mean) * (v - mean);
    }
    char std[32] = "-", count[32] = "", eval_se[32] = "";
    if (k > 1) snprintf(std, sizeof std, "%.5g", sqrt(sum2 / (k - 1)));
    if (k < n_cfg) snprintf(count, sizeof count, " (n=%d)", k);
    if (!isnan(var_eval)) snprintf(eval_se, sizeof eval_se, " (eval SE %.3f)", sqrt(var_eval) / k);
    snprintf(buf, cap, "%.5g ± %s [%.5g..%.5g]%s%s", mean, std, lo, hi, eval_se, count);
}

void report_print(FILE *f, const RunInfo *runs, int n, const char *const *metrics, int n_metrics) {
    const char **names;
    int nm = metric_list(runs, n, metrics, n_metrics, &names);
    int ncol = 4 + nm;
    /* Cells are formatted first so that every column can be padded to its widest entry. */
    int rows = n + 1;
    char(*cell)[CELL_MAX] = callocCheck((size_t)rows * (size_t)ncol, CELL_MAX);
    const char *head[4] = {"run_id", "swept", "seed", "status"};
    for (int c = 0; c < ncol; c++) h5io_copy(cell[c], CELL_MAX, c < 4 ? head[c] : names[c - 4]);
    for (int i = 0; i < n; i++) {
        char(*row)[CELL_MAX] = cell + (size_t)(i + 1) * ncol;
        h5io_copy(row[0], CELL_MAX, runs[i].run_id);
        h5io_copy(row[1], CELL_MAX, runs[i].swept[0] ? runs[i].swept : "-");
        snprintf(row[2], CELL_MAX, "%ld", runs[i].seed);
        snprintf(row[3], CELL_MAX, "%s%s", runs[i].status, runs[i].warning[0] ? " (!)" : "");
        for (int m = 0; m < nm; m++) {
            double v;
            double se = summary_se(&runs[i], names[m]);
            if (summary_get(&runs[i], names[m], &v)) snprintf(row[4 + m], CELL_MAX, "-");
            else if (isnan(se)) snprintf(row[4 + m], CELL_MAX, "%.5g", v);
            else snprintf(row[4 + m], CELL_MAX, "%.4f ±%.3f", v, se);
        }
    }
    print_table(f, cell, rows, ncol);
    fprintf(f, "(value ±SE: the evaluation-only standard error sqrt(p(1-p)/n) of an accuracy over its n images)\n");
    for (int i = 0; i < n; i++)
        if (runs[i].warning[0]) fprintf(f, "(!) warning: %s: %s\n", runs[i].run_id, runs[i].warning);

    /* Aggregates: one row per configuration, columns config, n, excluded, then the metrics. */
    RunTable t;
    runtable_build(&t, runs, n);
    int acol = 3 + nm;
    rows = t.n_configs + 1;
    cell = callocCheck((size_t)rows * (size_t)acol, CELL_MAX);
    const char *ahead[3] = {"config", "n", "excluded"};
    for (int c = 0; c < acol; c++) h5io_copy(cell[c], CELL_MAX, c < 3 ? ahead[c] : names[c - 3]);
    for (int c = 0; c < t.n_configs; c++) {
        const RunConfig *rc = &t.configs[c];
        char(*row)[CELL_MAX] = cell + (size_t)(c + 1) * acol;
        snprintf(row[0], CELL_MAX, "%.140s%s", rc->key[0] ? rc->key : "(all)", rc->at_chance ? " (at chance)" : "");
        snprintf(row[1], CELL_MAX, "%d", rc->n_completed);
        snprintf(row[2], CELL_MAX, "%d", rc->n_runs - rc->n_completed);
        for (int m = 0; m < nm; m++) aggregate_cell(row[3 + m], CELL_MAX, runs, rc, names[m]);
    }
    fprintf(f, "\naggregate over seeds per configuration (completed runs: mean ± sample std [min..max], and the "
               "evaluation-only standard error of the mean; '(at chance)': no run left chance):\n");
    print_table(f, cell, rows, acol);
    runtable_free(&t);
    free(names);
}

/* The series of one group of one run file: columns in logging order. */
typedef struct {
    int n;
    char (*names)[H5IO_NAME_MAX];
    double **cols;
    long *lens;
    long rows; /* longest column */
} Table;

static void table_read(const char *path, const char *group, Table *t) {
    memset(t, 0, sizeof *t);
    hid_t f = h5io_open(path, H5F_ACC_RDONLY);
    if (f < 0) return;
    hid_t g = H5Lexists(f, group, H5P_DEFAULT) > 0 ? H5Gopen2(f, group, H5P_DEFAULT) : -1;
    if (g >= 0) {
        t->n = h5io_list(g, &t->names);
        H5Gclose(g);
    }
    H5Fclose(f);
    t->cols = callocCheck(t->n ? (size_t)t->n : 1, sizeof *t->cols);
    t->lens = callocCheck(t->n ? (size_t)t->n : 1, sizeof *t->lens);
    for (int c = 0; c < t->n; c++) {
        t->lens[c] = report_read_series(path, group, t->names[c], &t->cols[c]);
        if (t->lens[c] < 0) t->lens[c] = 0;
        if (t->lens[c] > t->rows) t->rows = t->lens[c];
    }
}

static void table_free(Table *t) {
    for (int c = 0; c < t->n; c++) free(t->cols[c]);
    free(t->cols);
    free(t->lens);
    free(t->names);
}

static double table_at(const Table *t, int c, long row) { return row < t->lens[c] ? t->cols[c][row] : NAN; }

static int table_find(const Table *t, const char *name) {
    for (int c = 0; c < t->n; c++)
        if (strcmp(t->names[c], name) == 0) return c;
    return -1;
}

static void put_value(FILE *f, double v) {
    if (isnan(v)) fputs("NaN", f);
    else fprintf(f, "%.10g", v);
}

static const char *const EXPORT_GROUPS[] = {"train", "eval"};

static int export_run(const RunInfo *r, const char *out_dir, const char *group, Err *err) {
    Table t;
    table_read(r->path, group, &t);
    int rc = 0;
    if (t.n > 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.%s.tsv", out_dir, r->run_id, group);
        FILE *f = fopen(path, "w");
        if (!f) {
            rc = err_set(err, "cannot write '%s': %s", path, strerror(errno));
        } else {
            for (int c = 0; c < t.n; c++) fprintf(f, "%s%s", c ? "\t" : "", t.names[c]);
            fputc('\n', f);
            for (long i = 0; i < t.rows; i++) {
                for (int c = 0; c < t.n; c++) {
                    if (c) fputc('\t', f);
                    put_value(f, table_at(&t, c, i));
                }
                fputc('\n', f);
            }
            if (fclose(f) != 0) rc = err_set(err, "cannot write '%s': %s", path, strerror(errno));
        }
    }
    table_free(&t);
    return rc;
}

/* Columns shown once (as their mean) rather than as mean/min/max: they are the x axes. */
static int is_axis(const char *name) { return strcmp(name, "step") == 0 || strcmp(name, "images") == 0; }

/* <out>/<config>.<group>.agg.tsv over the completed runs of configuration c. */
static int export_config(const RunInfo *runs, const RunConfig *cfg, const char *out_dir, const char *group, Err *err) {
    Table *t = callocCheck((size_t)(cfg->n_runs ? cfg->n_runs : 1), sizeof *t);
    int k = 0;
    for (int j = 0; j < cfg->n_runs; j++)
        if (is_completed(&runs[cfg->runs[j]])) table_read(runs[cfg->runs[j]].path, group, &t[k++]);
    /* Union of column names, in the order the first run having each logged it. */
    const char **cols = mallocCheck(sizeof *cols);
    int nc = 0;
    long rows = 0;
    for (int j = 0; j < k; j++) {
        if (t[j].rows > rows) rows = t[j].rows;
        for (int q = 0; q < t[j].n; q++) name_union_add(&cols, &nc, t[j].names[q]);
    }
    int rc = 0;
    if (nc > 0) {
        char name[512], path[PATH_MAX];
        h5io_copy(name, sizeof name, cfg->key[0] ? cfg->key : "all");
        for (char *s = name; *s; s++)
            if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || strchr("._=-", *s))) *s = '_';
        snprintf(path, sizeof path, "%s/%s.%s.agg.tsv", out_dir, name, group);
        FILE *f = fopen(path, "w");
        if (!f) {
            rc = err_set(err, "cannot write '%s': %s", path, strerror(errno));
        } else {
            for (int p = 0; p < nc; p++) {
                if (p) fputc('\t', f);
                if (is_axis(cols[p])) fputs(cols[p], f);
                else fprintf(f, "%s_mean\t%s_min\t%s_max", cols[p], cols[p], cols[p]);
            }
            fputs("\tn\n", f);
            for (long row = 0; row < rows; row++) {
                int have = 0;
                for (int j = 0; j < k; j++) have += row < t[j].rows;
                for (int p = 0; p < nc; p++) {
                    double sum = 0, lo = INFINITY, hi = -INFINITY;
                    int m = 0;
                    for (int j = 0; j < k; j++) {
                        int q = table_find(&t[j], cols[p]);
                        double v = q < 0 ? NAN : table_at(&t[j], q, row);
                        if (isnan(v)) continue;
                        sum += v;
                        lo = fmin(lo, v);
                        hi = fmax(hi, v);
                        m++;
                    }
                    if (p) fputc('\t', f);
                    put_value(f, m ? sum / m : NAN);
                    if (is_axis(cols[p])) continue;
                    fputc('\t', f);
                    put_value(f, m ? lo : NAN);
                    fputc('\t', f);
                    put_value(f, m ? hi : NAN);
                }
                fprintf(f, "\t%d\n", have);
            }
            if (fclose(f) != 0) rc = err_set(err, "cannot write '%s': %s", path, strerror(errno));
        }
    }
    free(cols);
    for (int j = 0; j < k; j++) table_free(&t[j]);
    free(t);
    return rc;
}

int report_export(const char *dir, const char *out_dir, Err *err) {
    RunInfo *runs;
    int n;
    if (report_scan(dir, &runs, &n, err)) return -1;
    if (h5io_mkdirs(out_dir, err)) {
        report_free(runs, n);
        return -1;
    }
    RunTable t;
    runtable_build(&t, runs, n);
    int rc = 0;
    for (size_t g = 0; g < sizeof EXPORT_GROUPS / sizeof *EXPORT_GROUPS && rc == 0; g++) {
        for (int i = 0; i < n && rc == 0; i++) rc = export_run(&runs[i], out_dir, EXPORT_GROUPS[g], err);
        for (int c = 0; c < t.n_configs && rc == 0; c++) rc = export_config(runs, &t.configs[c], out_dir, EXPORT_GROUPS[g], err);
    }
    runtable_free(&t);
    report_free(runs, n);
    return rc;
}
