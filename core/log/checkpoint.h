/* checkpoint.h — training state in <dir>/<run_id>.ckpt.h5, atomically replaced.
 *
 * checkpoint_save writes <path>.tmp completely, fsyncs it and renames it over <path> (fsyncing the
 * directory), so at every moment <path> is either the previous complete checkpoint or the new one.
 * Buffers are float32 datasets with a Fletcher-32 checksum per chunk, so a corrupted file fails to
 * load instead of resuming with garbage. Layout in results/README.md.
 * Deliberately left out: the optimizer's hyper-parameters and the spec (the run log has the spec;
 * resume re-reads it), incremental or compressed checkpoints.
 */
#ifndef CLIPLAB_LOG_CHECKPOINT_H
#define CLIPLAB_LOG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

#define CHECKPOINT_FORMAT "cliplab-checkpoint"
#define CHECKPOINT_FORMAT_VERSION 1

typedef struct {
    long step;
    long images;
    uint64_t rng_state;
    uint64_t data_cursor;
    long n_train_rows, n_eval_rows; /* run-log rows at checkpoint time, for runlog_resume */
} CheckpointMeta;

/* bufs[i] ([count] floats) is stored as dataset /<buf_names[i]> (e.g. "params", "adam_m",
 * "adam_v"); the tensor index (/tensors/name, /tensors/offset, /tensors/count: n_tensors entries,
 * offsets and counts in floats) lets h5py users slice out one tensor. Returns 0, or -1 + err (the
 * old checkpoint at `path`, if any, is then untouched and no .tmp is left behind). */
int checkpoint_save(const char *path, const CheckpointMeta *meta, int n_bufs, const char *const *buf_names,
                    float *const *bufs, size_t count, int n_tensors, const char *const *tensor_names,
                    const size_t *tensor_offsets, const size_t *tensor_counts, Err *err);
/* Loads into caller-allocated bufs ([count] floats each). Returns 0, or -1 + err if the file is
 * missing, not HDF5, not a cliplab checkpoint, lacks a buffer, has another count, or fails its
 * checksum. bufs may be partly overwritten on error. */
int checkpoint_load(const char *path, CheckpointMeta *meta, int n_bufs, const char *const *buf_names,
                    float *const *bufs, size_t count, Err *err);

#endif
