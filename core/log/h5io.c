/* h5io.c — file-system and HDF5 attribute helpers (see h5io.h).
 * Deliberately left out: retry loops on EINTR for fsync/rename (local file systems do not need them).
 */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* H5dont_atexit first (a no-op once the library is up): after a failed H5Fclose (disk full) HDF5's
 * own close-at-exit retried the flush and crashed (rc 139). Every file we open we close, so the
 * exit handler has nothing to do but that. */
void h5io_quiet(void) {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

hid_t h5io_fcpl_compact(void) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    CHECK(fcpl >= 0 && H5Pset_attr_phase_change(fcpl, H5IO_COMPACT_MAX, 0) >= 0, "HDF5: cannot set attribute storage");
    return fcpl;
}

hid_t h5io_fapl_checksummed(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    CHECK(fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0, "HDF5: cannot set the file format");
    return fapl;
}

hid_t h5io_open(const char *path, unsigned flags) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    CHECK(fapl >= 0 && H5Pset_metadata_read_attempts(fapl, 1) >= 0, "HDF5: cannot set metadata read attempts");
    hid_t f = H5Fopen(path, flags, fapl);
    H5Pclose(fapl);
    return f;
}

int h5io_superblock_version(const char *path) {
    static const unsigned char SIGNATURE[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int version = -1;
    unsigned char head[9];
    for (long off = 0; version < 0 && fseek(f, off, SEEK_SET) == 0 && fread(head, 1, 9, f) == 9;
         off = off ? 2 * off : 512)
        if (!memcmp(head, SIGNATURE, 8)) version = head[8];
    fclose(f);
    return version;
}

typedef struct {
    const char *skip;
    uLong crc;
    int failed;
} AttrSum;

static herr_t attr_sum_cb(hid_t obj, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    AttrSum *s = data;
    if (s->skip && strcmp(name, s->skip) == 0) return 0;
    s->crc = crc32(s->crc, (const Bytef *)name, (uInt)strlen(name) + 1);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    hid_t mt = ft >= 0 ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : -1;
    size_t size = mt >= 0 ? H5Tget_size(mt) : 0;
    int ok = npts >= 0 && size > 0;
    if (ok && H5Tis_variable_str(ft) > 0) {
        /* a vlen string attribute is one char * per element */
        char **v = callocCheck(npts ? (size_t)npts : 1, sizeof *v);
        ok = H5Aread(a, mt, v) >= 0;
        for (hssize_t i = 0; ok && i < npts; i++)
            if (v[i]) s->crc = crc32(s->crc, (const Bytef *)v[i], (uInt)strlen(v[i]) + 1);
        for (hssize_t i = 0; ok && i < npts; i++) H5free_memory(v[i]);
        free(v);
    } else if (ok) {
        unsigned char *v = callocCheck((size_t)npts ? (size_t)npts : 1, size);
        ok = H5Aread(a, mt, v) >= 0;
        if (ok) s->crc = crc32(s->crc, v, (uInt)((size_t)npts * size));
        free(v);
    }
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    s->failed |= !ok;
    return ok ? 0 : -1;
}

int h5io_attrs_crc32(hid_t obj, const char *skip, uint32_t *crc) {
    AttrSum s = {skip, crc32(0L, Z_NULL, 0), 0};
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_sum_cb, &s) < 0 || s.failed) return -1;
    *crc = (uint32_t)s.crc;
    return 0;
}

/* The pid a lock holder wrote into its lock file, or "?" if it has not written it yet. */
static void lock_holder(int fd, char *pid, size_t n) {
    ssize_t got = pread(fd, pid, n - 1, 0);
    pid[got > 0 ? got : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    if (!pid[0]) snprintf(pid, n, "?");
}

#define H5IO_LOCK_ATTEMPTS 100 /* retries while holders keep removing the lock file under us */

int h5io_lock(const char *path, const char *what, Err *err) {
    for (int attempt = 0; attempt < H5IO_LOCK_ATTEMPTS; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return err_set(err, "cannot create lock file '%s': %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char pid[32];
            lock_holder(fd, pid, sizeof pid);
            close(fd);
            if (e != EWOULDBLOCK) return err_set(err, "cannot lock '%s': %s", path, strerror(e));
            err_set(err, "%s is in use by process %s (lock file '%s'); wait for it to end or stop it", what, pid, path);
            return H5IO_LOCK_BUSY;
        }
        /* The previous holder unlinks the file before releasing it: a lock on an unlinked inode
         * guards nothing, so only a lock on the file still at `path` counts. */
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
                int e = errno;
                unlink(path);
                close(fd);
                return err_set(err, "cannot write lock file '%s': %s", path, strerror(e));
            }
            return fd;
        }
        close(fd);
    }
    return err_set(err, "cannot lock '%s': the lock file keeps being replaced", path);
}

void h5io_unlock(const char *path, int fd) {
    if (fd < 0) return;
    unlink(path);
    close(fd);
}

/* Walking upward, entry 0 is the innermost failure; the I/O layer puts the OS message inside its
 * long description as "error message = '...'", which is the part worth showing. */
typedef struct {
    char *buf;
    size_t cap;
} ErrorOut;

static herr_t error_cb(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = ((ErrorOut *)data)->buf;
    size_t cap = ((ErrorOut *)data)->cap;
    if (n != 0 || !e->desc) return 0;
    const char *key = "error message = '";
    const char *m = strstr(e->desc, key);
    if (m) {
        m += strlen(key);
        const char *end = strchr(m, '\'');
        snprintf(buf, cap, "%.*s", end ? (int)(end - m) : (int)strlen(m), m);
    } else {
        h5io_copy(buf, cap, e->desc);
    }
    return 0;
}

void h5io_error(char *buf, size_t n) {
    buf[0] = '\0';
    ErrorOut out = {buf, n};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, error_cb, &out);
    if (!buf[0]) snprintf(buf, n, "HDF5 error");
}

void h5io_copy(char *dst, size_t n, const char *src) {
    size_t m = strlen(src);
    if (m >= n) m = n - 1;
    memcpy(dst, src, m);
    dst[m] = '\0';
}

int h5io_mkdirs(const char *dir, Err *err) {
    char p[PATH_MAX];
    if (strlen(dir) >= sizeof p) return err_set(err, "directory path too long: '%s'", dir);
    h5io_copy(p, sizeof p, dir);
    /* Create every prefix; an existing prefix is fine, the final check below validates the leaf. */
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(err, "cannot create directory '%s': %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(err, "cannot create directory '%s': %s", p, strerror(errno));
    struct stat st;
    if (stat(p, &st) != 0) return err_set(err, "cannot create directory '%s': %s", p, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return err_set(err, "cannot create directory '%s': a file of that name exists", p);
    return 0;
}

int h5io_probe_create(const char *path, const char *what, Err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return err_set(err, "cannot write %s '%s': %s", what, path, strerror(errno));
    close(fd);
    return 0;
}

static int fsync_path(const char *path, int flags, Err *err) {
    int fd = open(path, flags);
    if (fd < 0) return err_set(err, "cannot open '%s' to sync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) return err_set(err, "cannot sync '%s': %s", path, strerror(e));
    return 0;
}

int h5io_commit(const char *tmp, const char *final, Err *err) {
    char d[PATH_MAX];
    h5io_copy(d, sizeof d, final);
    const char *dir = dirname(d);
    if (fsync_path(tmp, O_RDONLY, err)) return -1;
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY, err)) return -1;
    if (rename(tmp, final) != 0) return err_set(err, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
    return fsync_path(dir, O_RDONLY | O_DIRECTORY, err);
}

/* Writes a scalar attribute of file type `ftype` from memory type `mtype`, replacing any old one. */
static int attr_set(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *value) {
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) return -1;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, mtype, value) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

/* Fixed-length, not variable-length: vlen strings live in HDF5's global heap, which has no
 * checksum and whose corruption crashes or hangs the library on read (found by bit-flipping run
 * files); a fixed-length value lives in its object header, under the header's checksum. */
int h5io_attr_set_str(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = attr_set(obj, name, t, t, value);
    H5Tclose(t);
    return rc;
}

int h5io_attr_set_i64(hid_t obj, const char *name, int64_t value) {
    return attr_set(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

int h5io_attr_set_u64(hid_t obj, const char *name, uint64_t value) {
    return attr_set(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

int h5io_attr_set_f64(hid_t obj, const char *name, double value) {
    return attr_set(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

/* Opens attribute `name` if it exists and is a scalar (or 1-element) of class `cls`; returns its id
 * and the file type in *ftype, or -1. */
static hid_t attr_open(hid_t obj, const char *name, H5T_class_t cls, hid_t *ftype) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t sp = H5Aget_space(a);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    hid_t t = H5Aget_type(a);
    if (npts != 1 || H5Tget_class(t) != cls) {
        H5Tclose(t);
        H5Aclose(a);
        return -1;
    }
    *ftype = t;
    return a;
}

int h5io_attr_get_str(hid_t obj, const char *name, char *buf, size_t n) {
    hid_t ft;
    hid_t a = attr_open(obj, name, H5T_STRING, &ft);
    if (a < 0) return -1;
    int rc = -1;
    /* The memory type copies the file type: HDF5 converts neither ASCII<->UTF-8 nor vlen<->fixed. */
    hid_t mt = H5Tcopy(ft);
    if (H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        if (H5Aread(a, mt, &s) >= 0) {
            h5io_copy(buf, n, s ? s : "");
            H5free_memory(s);
            rc = 0;
        }
    } else {
        size_t sz = H5Tget_size(ft);
        char *s = callocCheck(sz + 1, 1);
        H5Tset_size(mt, sz + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        if (H5Aread(a, mt, s) >= 0) {
            h5io_copy(buf, n, s);
            rc = 0;
        }
        free(s);
    }
    H5Tclose(mt);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int attr_get_num(hid_t obj, const char *name, H5T_class_t cls, hid_t mtype, void *value) {
    hid_t ft;
    hid_t a = attr_open(obj, name, cls, &ft);
    if (a < 0) return -1;
    int rc = H5Aread(a, mtype, value) >= 0 ? 0 : -1;
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5io_attr_get_i64(hid_t obj, const char *name, int64_t *value) {
    return attr_get_num(obj, name, H5T_INTEGER, H5T_NATIVE_INT64, value);
}

int h5io_attr_get_u64(hid_t obj, const char *name, uint64_t *value) {
    return attr_get_num(obj, name, H5T_INTEGER, H5T_NATIVE_UINT64, value);
}

int h5io_attr_get_f64(hid_t obj, const char *name, double *value) {
    return attr_get_num(obj, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, value);
}

int h5io_list(hid_t g, char (**names)[H5IO_NAME_MAX]) {
    H5G_info_t info;
    *names = NULL;
    if (H5Gget_info(g, &info) < 0) return 0;
    unsigned crt = 0;
    hid_t pl = H5Gget_create_plist(g);
    if (pl >= 0) {
        H5Pget_link_creation_order(pl, &crt);
        H5Pclose(pl);
    }
    H5_index_t idx = (crt & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    int n = info.nlinks <= H5IO_LIST_MAX ? (int)info.nlinks : 0;
    *names = callocCheck(n ? (size_t)n : 1, H5IO_NAME_MAX);
    for (int i = 0; i < n; i++)
        H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, (hsize_t)i, (*names)[i], H5IO_NAME_MAX, H5P_DEFAULT);
    return n;
}
