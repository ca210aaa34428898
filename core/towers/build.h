/* build.h — build-time helpers shared by the towers and the heads.
 *
 * Models declare parameters and activations in Tensors tables (common/tensors.h) under formatted
 * names, and a backward must zero the activation gradients it accumulates into (every kernel
 * backward does +=). BuildActs remembers, per tower, which activation gradients exist and how many
 * floats one sample owns, so the backward zeroes exactly the first B samples and nothing else
 * (other towers share the same activation table).
 * Deliberately left out: parameter initialisation beyond the one shared standard deviation below
 * (each model knows its own fan-ins).
 */
#ifndef CLIPLAB_TOWERS_BUILD_H
#define CLIPLAB_TOWERS_BUILD_H

#include <stddef.h>

#include "common/check.h"
#include "common/tensors.h"

/* GPT-2's N(0, 0.02): token embeddings and output layers of the towers and objectives. */
#define BUILD_INIT_STD 0.02f

/* Declares a parameter of shape shape[0..ndim) named by printf-style fmt; value/grad are the struct
 * fields tensors_alloc will point at its value and gradient. */
void build_param(Tensors *params, float **value, float **grad, int flags, int ndim, const int *shape,
                 const char *fmt, ...) __attribute__((format(printf, 7, 8)));

typedef struct {
    float **grad;      /* the field bound to the gradient (its storage exists after tensors_alloc) */
    size_t per_sample; /* floats per sample */
} BuildActGrad;

typedef struct {
    Tensors *acts;
    int max_batch;
    BuildActGrad *grads;
    int n, cap;
} BuildActs;

void build_acts_init(BuildActs *ba, Tensors *acts, int max_batch);
/* Declares a batch-first activation [max_batch, per_sample] named by fmt; grad may be NULL when no
 * gradient is needed (saved statistics, buffers whose gradient is routed elsewhere). */
void build_act(BuildActs *ba, float **value, float **grad, size_t per_sample, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same for an activation whose gradient one backward writes whole (OPS_OVERWRITE, ops.h) before
 * anything reads or adds to it: the zeroing functions below skip it. */
void build_act_written(BuildActs *ba, float **value, float **grad, size_t per_sample, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Zeroes the first B samples of every gradient declared through build_act. */
void build_acts_zero_grads(const BuildActs *ba, int B);
/* Zeroes samples [b0, b0 + nb) of every gradient declared through build_act (one thread's batch slice). */
void build_acts_zero_grads_slice(const BuildActs *ba, int b0, int nb);

/* Data-parallel towers (image CNN, transformer): on T OpenMP threads thread k runs samples
 * [B k/T, B (k+1)/T) through the whole tower with single-threaded kernels and BLAS (inside a
 * parallel region the ops' OpenMP loops and OpenBLAS's OpenMP build run on one thread), threads
 * 1.. accumulating parameter gradients into private copies [T-1, stride] that are then summed in
 * thread order: bitwise reproducible for a thread count, and no barrier between layers.
 * build_threads: T for a batch of B (1 inside a parallel region: the caller owns the cores). */
int build_threads(int B);
/* First sample of thread k's slice of B over n threads. */
int build_slice_start(int B, int k, int n);
/* dst [n] += priv[j * stride + off ..][n] for j = 0 .. n_src-1, in order; every thread of the team
 * must call it (an OpenMP worksharing loop, no barrier at its end). dst NULL: nothing. */
void build_reduce_private(float *dst, const float *priv, size_t stride, int n_src, size_t off, size_t n);
void build_acts_free(BuildActs *ba);

/* Names chosen by the user (taps, kinds) are resolved at build time; a wrong one is one line:
 * err = "unknown <what> '<got>'; valid: <valid>". Returns -1 (like err_set). */
int build_err_unknown(Err *err, const char *what, const char *got, const char *valid);
/* out[cap] = "<stem>1, <stem>2, ..., <stem>n" */
void build_numbered_list(char *out, size_t cap, const char *stem, int n);
/* k in 1..n when name is exactly "<stem>k", else 0 */
int build_parse_numbered(const char *name, const char *stem, int n);

/* weight [n] = value */
void build_fill_const(float *weight, size_t n, float value);

#endif
