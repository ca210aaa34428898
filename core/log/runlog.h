/* runlog.h — one HDF5 file per run (layout documented in results/README.md).
 *
 * The file is written as <dir>/<run_id>.h5.tmp and renamed to <run_id>.h5 only by runlog_finish,
 * after fsync of the file and the directory, so a crash never leaves a half file under the final name.
 * Rows appended to /train and /eval are buffered in memory and reach the file only in
 * runlog_flush (or when a buffer of RUNLOG_PENDING_ROWS fills): between flushes the file on disk is
 * untouched, so a kill -9 leaves the .tmp exactly as of the last flush. Call runlog_flush right
 * before checkpoint_save so the rows a checkpoint counts are on disk for runlog_resume.
 *
 * Contract for a group ("train" or "eval"): the group's first dataset (e.g. "step" or "images")
 * starts every row, and every dataset of the group then gets exactly one value per row (append NaN
 * for a metric that has no value at that row); violations are CHECK failures. A dataset first used
 * at row k is padded with NaN for rows 0..k-1, so all datasets of a group stay aligned by row index.
 *
 * Integrity: the file uses HDF5's checksummed metadata format, every series chunk carries a
 * Fletcher-32 checksum, summaries are compact (inside their checksummed object header) and
 * runlog_finish stores RUNLOG_ATTRS_CRC over the root attributes, so report_verify detects a
 * flipped bit anywhere in what a run wrote.
 *
 * Write failures (disk full) do not abort the run: the first one is kept as a sticky error,
 * runlog_flush returns -1 from then on and runlog_finish reports it, leaving the .tmp in place.
 * Deliberately left out: multi-dimensional series, compression (rows are few and small), SWMR.
 */
#ifndef CLIPLAB_LOG_RUNLOG_H
#define CLIPLAB_LOG_RUNLOG_H

#include "common/check.h"

#define RUNLOG_FORMAT "cliplab-run"
#define RUNLOG_FORMAT_VERSION 2 /* 2: checksummed metadata, Fletcher-32 series, attrs_crc32 */
#define RUNLOG_PENDING_ROWS 256 /* rows buffered per dataset before an automatic write-out */
#define RUNLOG_CHUNK_ROWS 1024  /* 8 KiB chunks: small files for short runs, few chunks for long ones */
#define RUNLOG_ATTRS_CRC "attrs_crc32" /* root attribute: h5io_attrs_crc32 of the others, set at finish */

typedef struct RunLog RunLog;

/* Creates <dir>/<run_id>.h5.tmp (creating dir with parents) with root attributes format,
 * format_version and run_id; NULL + one-line err if the directory or file cannot be created.
 * An existing .tmp is overwritten (runlog_resume continues one instead). */
RunLog *runlog_create(const char *dir, const char *run_id, Err *err);
/* Reopens an unfinished run's .tmp for --resume (after report_verify passes on it), truncating every /train dataset to n_train rows
 * and every /eval dataset to n_eval rows (the state of the last checkpoint) and clearing /summary.
 * NULL + err if the .tmp is missing, unreadable, not a run file, or holds fewer rows than asked. */
RunLog *runlog_resume(const char *dir, const char *run_id, long n_train, long n_eval, Err *err);

/* Root attributes (an existing attribute of that name is replaced). */
void runlog_attr_str(RunLog *l, const char *name, const char *value);
void runlog_attr_int(RunLog *l, const char *name, long value);
void runlog_attr_double(RunLog *l, const char *name, double value);

/* Appends one row to the extendible chunked 1-D float64 dataset /<group>/<name> (created on first
 * use). group is "train" or "eval"; names are at most 63 bytes. */
void runlog_append(RunLog *l, const char *group, const char *name, double value);
/* Complete rows of the group (the fewest rows any of its datasets has, buffered rows included). */
long runlog_rows(RunLog *l, const char *group);
/* /summary/<name>: a scalar float64 dataset, written at once (replaced if it exists). */
void runlog_summary(RunLog *l, const char *name, double value);
/* Describes the existing dataset /<group>/<name> (group "train", "eval" or "summary") by
 * attributes: int64 `n`, the evaluation items its values rest on, and, unless chance is NaN,
 * float64 `chance`, the value of a random ranking (the dataset is then an accuracy in [0, 1]).
 * Replaces earlier values. */
void runlog_describe(RunLog *l, const char *group, const char *name, long n, double chance);
/* Writes buffered rows and H5Fflush-es. Returns 0, or -1 if any write so far has failed. */
int runlog_flush(RunLog *l);
/* The sticky write error, or NULL if none. */
const char *runlog_error(const RunLog *l);
/* Path of the file being written (the .tmp). */
const char *runlog_path(const RunLog *l);

/* Sets attributes status ("completed"|"diverged"|"failed") and end_time, closes, fsyncs the file,
 * renames .tmp -> <run_id>.h5 and fsyncs the directory. Frees l in every case. Returns 0, or -1 +
 * err (the .tmp then stays for inspection or --resume). */
int runlog_finish(RunLog *l, const char *status, Err *err);
/* Writes what is buffered and closes without renaming (on a fatal error). Frees l. */
void runlog_abandon(RunLog *l);

/* Standard provenance attributes: git_commit ("unknown" outside a repo), git_dirty (1/0, -1 if
 * unknown), build_commit (the commit the binary was built from, "-dirty" if the tree was), host, threads (omp_get_max_threads), hdf5_version, yaml_version, openblas_config,
 * zlib_version, cliplab_version, start_time (ISO-8601 UTC). */
void runlog_provenance(RunLog *l);

#endif
