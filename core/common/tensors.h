/* tensors.h — one allocation per category, carved into named tensors.
 *
 * A model declares its tensors once at build time (name, shape, flags, and the addresses of the
 * struct fields that should point at them), then tensors_alloc() makes ONE allocation per buffer
 * kind and fills those fields. For parameters the buffer kinds are value, grad, Adam m and Adam v,
 * so zero-grad is one memset, the optimizer step is one loop and a checkpoint is one write per
 * buffer. Activations use the same table with value and grad buffers.
 * Deliberately left out: reference counting, views, dtypes other than fp32.
 */
#ifndef CLIPLAB_TENSORS_H
#define CLIPLAB_TENSORS_H

#include <stddef.h>

enum { TBUF_VALUE = 0, TBUF_GRAD = 1, TBUF_ADAM_M = 2, TBUF_ADAM_V = 3, TBUF_MAX = 4 };

/* Per-tensor flags. */
enum {
    TENSOR_NO_DECAY = 1 << 0, /* exempt from weight decay (gains, biases, embeddings' scalars) */
};

#define TENSOR_NAME_MAX 64
#define TENSOR_MAX_DIMS 4

typedef struct {
    char name[TENSOR_NAME_MAX]; /* e.g. "img.stage2.conv1.weight" */
    int ndim;
    int shape[TENSOR_MAX_DIMS];
    size_t offset; /* in floats, into every buffer */
    size_t count;
    int flags;
    float lr_scale; /* multiplies the learning rate of this tensor (1 unless set) */
    float **bind[TBUF_MAX]; /* fields filled by tensors_alloc (NULL = not wanted) */
} TensorInfo;

typedef struct {
    TensorInfo *info;
    int n, cap;
    size_t total;          /* floats per buffer, after alignment padding */
    int n_bufs;            /* 1..TBUF_MAX */
    float *buf[TBUF_MAX];  /* one allocation each, zero-initialised */
} Tensors;

void tensors_init(Tensors *t, int n_bufs);
/* Declares a tensor; `value` / `grad` are the fields to point at its value / gradient storage
 * (either may be NULL). Must be called before tensors_alloc. Returns the tensor's index. */
int tensors_add(Tensors *t, const char *name, int ndim, const int *shape, int flags, float **value, float **grad);
/* Shorthands for 1-D and 2-D tensors. */
int tensors_add1(Tensors *t, const char *name, int d0, int flags, float **value, float **grad);
int tensors_add2(Tensors *t, const char *name, int d0, int d1, int flags, float **value, float **grad);
void tensors_alloc(Tensors *t);
void tensors_free(Tensors *t);
void tensors_zero(Tensors *t, int buf);
/* Index of the named tensor, or -1. */
int tensors_find(const Tensors *t, const char *name);
float *tensors_ptr(const Tensors *t, int buf, int index);

#endif
