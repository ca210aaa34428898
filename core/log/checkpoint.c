/* checkpoint.c — save/load of training state as HDF5 with atomic replace (see checkpoint.h).
 * Deliberately left out: partial loads (a subset of buffers) and format migrations.
 */
#include "checkpoint.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5io.h"

#define CHECKPOINT_CHUNK_FLOATS ((size_t)1 << 20) /* 4 MiB chunks, each with its own checksum */

static int write_buf(hid_t f, const char *name, const float *buf, size_t count) {
    hsize_t dims[1] = {count}, chunk[1] = {count < CHECKPOINT_CHUNK_FLOATS ? count : CHECKPOINT_CHUNK_FLOATS};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, chunk);
    H5Pset_fletcher32(pl);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    int rc = (d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) ? 0 : -1;
    if (d >= 0) H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
    return rc;
}

/* 1-D dataset of n elements of file type ftype written from memory type mtype. */
static int write_vec(hid_t g, const char *name, hid_t ftype, hid_t mtype, const void *data, size_t n) {
    hsize_t dims[1] = {n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (d >= 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : -1;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return rc;
}

static int write_index(hid_t f, int n, const char *const *names, const size_t *offsets, const size_t *counts) {
    hid_t g = H5Gcreate2(f, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    uint64_t *off = mallocCheck((size_t)n * sizeof *off), *cnt = mallocCheck((size_t)n * sizeof *cnt);
    for (int i = 0; i < n; i++) {
        off[i] = offsets[i];
        cnt[i] = counts[i];
    }
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    int rc = write_vec(g, "name", st, st, names, (size_t)n) || write_vec(g, "offset", H5T_STD_U64LE, H5T_NATIVE_UINT64, off, (size_t)n) ||
             write_vec(g, "count", H5T_STD_U64LE, H5T_NATIVE_UINT64, cnt, (size_t)n);
    H5Tclose(st);
    free(off);
    free(cnt);
    H5Gclose(g);
    return rc ? -1 : 0;
}

static int write_meta(hid_t f, const CheckpointMeta *m) {
    return h5io_attr_set_str(f, "format", CHECKPOINT_FORMAT) || h5io_attr_set_i64(f, "format_version", CHECKPOINT_FORMAT_VERSION) ||
           h5io_attr_set_i64(f, "step", m->step) || h5io_attr_set_i64(f, "images", m->images) ||
           h5io_attr_set_u64(f, "rng_state", m->rng_state) || h5io_attr_set_u64(f, "data_cursor", m->data_cursor) ||
           h5io_attr_set_i64(f, "n_train_rows", m->n_train_rows) || h5io_attr_set_i64(f, "n_eval_rows", m->n_eval_rows);
}

int checkpoint_save(const char *path, const CheckpointMeta *meta, int n_bufs, const char *const *buf_names,
                    float *const *bufs, size_t count, int n_tensors, const char *const *tensor_names,
                    const size_t *tensor_offsets, const size_t *tensor_counts, Err *err) {
    CHECK(count > 0 && n_bufs > 0 && n_tensors >= 0, "checkpoint_save: empty buffers");
    for (int i = 0; i < n_tensors; i++)
        CHECK(tensor_offsets[i] + tensor_counts[i] <= count, "tensor '%s' lies outside the buffers", tensor_names[i]);
    h5io_quiet();
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return err_set(err, "checkpoint path too long: '%s'", path);
    if (h5io_probe_create(tmp, "checkpoint", err)) return -1;
    char why[256] = "";
    hid_t fapl = h5io_fapl_checksummed();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    int rc = f >= 0 ? write_meta(f, meta) : -1;
    for (int i = 0; i < n_bufs && rc == 0; i++) rc = write_buf(f, buf_names[i], bufs[i], count);
    if (rc == 0 && n_tensors > 0) rc = write_index(f, n_tensors, tensor_names, tensor_offsets, tensor_counts);
    if (rc) h5io_error(why, sizeof why);
    /* H5Fclose writes the remaining metadata and cached chunks, so it can fail on a full disk too. */
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0) {
        h5io_error(why, sizeof why);
        rc = -1;
    }
    if (rc == 0) rc = h5io_commit(tmp, path, err);
    else err_set(err, "cannot write checkpoint '%s': %s", tmp, why);
    if (rc) unlink(tmp);
    return rc;
}

static int read_meta(hid_t f, CheckpointMeta *m) {
    int64_t step, images, ntr, nev;
    int rc = h5io_attr_get_i64(f, "step", &step) || h5io_attr_get_i64(f, "images", &images) ||
             h5io_attr_get_u64(f, "rng_state", &m->rng_state) || h5io_attr_get_u64(f, "data_cursor", &m->data_cursor) ||
             h5io_attr_get_i64(f, "n_train_rows", &ntr) || h5io_attr_get_i64(f, "n_eval_rows", &nev);
    if (rc) return -1;
    m->step = step;
    m->images = images;
    m->n_train_rows = ntr;
    m->n_eval_rows = nev;
    return 0;
}

/* Reads /<name> ([count] float32) into buf; -1 + err naming what is wrong. */
static int read_buf(hid_t f, const char *path, const char *name, float *buf, size_t count, Err *err) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return err_set(err, "checkpoint '%s' has no buffer '%s'", path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return err_set(err, "checkpoint '%s': '%s' is not a dataset", path, name);
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[1] = {0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    int rc = 0;
    if (rank != 1 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != sizeof(float)) {
        rc = err_set(err, "checkpoint '%s': '%s' is not a 1-D float32 array", path, name);
    } else if (dims[0] != count) {
        rc = err_set(err, "checkpoint '%s': '%s' has %llu floats, the model has %zu", path, name, (unsigned long long)dims[0], count);
    } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        char why[256];
        h5io_error(why, sizeof why);
        rc = err_set(err, "checkpoint '%s' is corrupt: reading '%s' failed: %s", path, name, why);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int checkpoint_load(const char *path, CheckpointMeta *meta, int n_bufs, const char *const *buf_names,
                    float *const *bufs, size_t count, Err *err) {
    h5io_quiet();
    if (access(path, R_OK) != 0) return err_set(err, "cannot read checkpoint '%s': %s", path, strerror(errno));
    hid_t f = h5io_open(path, H5F_ACC_RDONLY);
    if (f < 0) return err_set(err, "checkpoint '%s' is corrupt: not a readable HDF5 file", path);
    char fmt[32] = "";
    int64_t version = 0;
    int rc = 0;
    if (h5io_attr_get_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, CHECKPOINT_FORMAT) != 0)
        rc = err_set(err, "'%s' is not a cliplab checkpoint (no format=\"%s\" attribute)", path, CHECKPOINT_FORMAT);
    else if (h5io_attr_get_i64(f, "format_version", &version) || version != CHECKPOINT_FORMAT_VERSION)
        rc = err_set(err, "checkpoint '%s' has format version %lld, this build reads %d", path, (long long)version, CHECKPOINT_FORMAT_VERSION);
    else if (read_meta(f, meta))
        rc = err_set(err, "checkpoint '%s' is corrupt: missing step/images/rng_state/data_cursor/row attributes", path);
    for (int i = 0; i < n_bufs && rc == 0; i++) rc = read_buf(f, path, buf_names[i], bufs[i], count, err);
    H5Fclose(f);
    return rc;
}
