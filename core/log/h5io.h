/* h5io.h — small file-system and HDF5 helpers shared by the run log, checkpoints and reports.
 *
 * Durable commit of a file (fsync file, fsync dir, rename, fsync dir), mkdir -p, a writability
 * probe that yields a clean errno, scalar root attributes (read and overwrite), the property lists
 * that make HDF5 checksum everything we write, and a CRC over attributes.
 * Deliberately left out: anything specific to one file kind (that lives in runlog/checkpoint/report).
 */
#ifndef CLIPLAB_LOG_H5IO_H
#define CLIPLAB_LOG_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

/* Turns off HDF5's automatic error-stack printing (idempotent): every failure is reported by us
 * as one line instead of a multi-screen stack. Called before the first HDF5 call, it also stops
 * HDF5 from closing files at exit (see h5io.c). */
void h5io_quiet(void);

/* The most specific message of the current HDF5 error stack, e.g. "No space left on device", for
 * one-line reports; call right after the failing HDF5 call. Empty string if the stack is empty. */
void h5io_error(char *buf, size_t n);

/* Copies src into dst[n], truncating; dst is always NUL-terminated. */
void h5io_copy(char *dst, size_t n, const char *src);

/* mkdir -p; one-line error naming the component that could not be created. */
int h5io_mkdirs(const char *dir, Err *err);

/* Creates (truncating) `path` with open(2) so a failure reports a real errno ("Permission denied",
 * "Not a directory", ...) rather than an HDF5 stack. `what` names the file kind in the message. */
int h5io_probe_create(const char *path, const char *what, Err *err);

/* fsync(tmp), fsync(dir), rename(tmp, final), fsync(dir): after it returns 0, `final` holds the
 * complete file even across a power loss, and a crash before it leaves the old `final` intact. */
int h5io_commit(const char *tmp, const char *final, Err *err);

/* A file-access property list for files we write (caller closes it): the HDF5 1.10 format, whose
 * superblock, object headers (hence every attribute and every compact dataset) and chunk indexes
 * (extensible/fixed arrays, not the 1.8 format's unchecksummed v1 B-trees) carry HDF5's own
 * checksums, so a flipped bit in metadata fails the read instead of being believed. */
hid_t h5io_fapl_checksummed(void);
/* Links or attributes an object keeps inside its (checksummed) header before HDF5 would move them
 * to "dense" storage in a fractal heap, whose blocks are not all checksummed. */
#define H5IO_COMPACT_MAX 4096
/* A file-creation property list (caller closes it) keeping the root group's attributes compact. */
hid_t h5io_fcpl_compact(void);
/* H5Fopen for files that may be corrupt: one read attempt per metadata block, so a checksum
 * mismatch fails at once instead of being retried with sleeps (HDF5's default for checksummed
 * metadata, meant for SWMR readers racing a writer). */
hid_t h5io_open(const char *path, unsigned flags);
/* The version of the superblock of the HDF5 file at path, read from its bytes without libhdf5
 * (the signature may follow a user block at 512, 1024, 2048, ... bytes), or -1 if there is none.
 * Version 2 and above carry checksums over the superblock and the object headers it leads to. */
int h5io_superblock_version(const char *path);

/* CRC-32 over the values of every attribute of `obj` except `skip` (NULL = none), in name
 * order: name, then the value (strings as their text, numbers in native layout). It covers what
 * HDF5's metadata checksums do not: variable-length strings live in the unchecksummed global heap.
 * Returns 0, or -1 if an attribute cannot be read. */
int h5io_attrs_crc32(hid_t obj, const char *skip, uint32_t *crc);

/* Exclusive advisory lock (flock) on `path`, created if needed, holding the owner's pid as text.
 * Returns an fd (>= 0) to pass to h5io_unlock; H5IO_LOCK_BUSY + one line naming the holder's pid
 * when another process holds it; -1 + err if the file cannot be created. The lock dies with its
 * process (kill -9 included), so a stale lock file never blocks anybody. */
#define H5IO_LOCK_BUSY (-2)
int h5io_lock(const char *path, const char *what, Err *err);
/* Removes the lock file and releases the lock (fd < 0: nothing to do). */
void h5io_unlock(const char *path, int fd);

/* Root (or any object's) scalar attributes; setters replace an existing attribute of that name and
 * return 0 or -1 (HDF5 failure). Strings are fixed-length UTF-8, NUL-terminated (h5py reads them
 * as bytes: .decode() them); see h5io.c for why not variable-length. */
int h5io_attr_set_str(hid_t obj, const char *name, const char *value);
int h5io_attr_set_i64(hid_t obj, const char *name, int64_t value);
int h5io_attr_set_u64(hid_t obj, const char *name, uint64_t value);
int h5io_attr_set_f64(hid_t obj, const char *name, double value);

/* Getters return 0, or -1 if missing / not a scalar of a compatible class. Strings accept both
 * variable- and fixed-length storage and are truncated to n-1 bytes. */
int h5io_attr_get_str(hid_t obj, const char *name, char *buf, size_t n);
int h5io_attr_get_i64(hid_t obj, const char *name, int64_t *value);
int h5io_attr_get_u64(hid_t obj, const char *name, uint64_t *value);
int h5io_attr_get_f64(hid_t obj, const char *name, double *value);

/* Names of the links in group `g`, in creation order when the group tracks it, else by name.
 * Returns the count; *names is one malloc'd block of count NUL-terminated slots of H5IO_NAME_MAX.
 * A group claiming more than H5IO_LIST_MAX links (only a crafted file does) lists as empty. */
#define H5IO_NAME_MAX 64
#define H5IO_LIST_MAX 4096
int h5io_list(hid_t g, char (**names)[H5IO_NAME_MAX]);

#endif
