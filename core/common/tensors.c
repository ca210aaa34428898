/* tensors.c — named tensors carved out of one allocation per buffer kind (see tensors.h). */
#include "tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Each tensor starts on a 64-byte boundary so SIMD loads and BLAS calls see aligned rows. */
#define TENSOR_ALIGN_FLOATS 16

void tensors_init(Tensors *t, int n_bufs) {
    CHECK(n_bufs >= 1 && n_bufs <= TBUF_MAX, "n_bufs = %d", n_bufs);
    memset(t, 0, sizeof *t);
    t->n_bufs = n_bufs;
}

int tensors_add(Tensors *t, const char *name, int ndim, const int *shape, int flags, float **value, float **grad) {
    CHECK(t->buf[0] == NULL, "tensor '%s' added after tensors_alloc", name);
    CHECK(ndim >= 1 && ndim <= TENSOR_MAX_DIMS, "tensor '%s': ndim %d", name, ndim);
    CHECK(strlen(name) < TENSOR_NAME_MAX, "tensor name too long: '%s'", name);
    CHECK(tensors_find(t, name) < 0, "duplicate tensor name '%s'", name);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 32;
        t->info = reallocCheck(t->info, (size_t)t->cap * sizeof *t->info);
    }
    TensorInfo *ti = &t->info[t->n];
    memset(ti, 0, sizeof *ti);
    snprintf(ti->name, sizeof ti->name, "%s", name);
    ti->ndim = ndim;
    ti->count = 1;
    for (int d = 0; d < ndim; d++) {
        CHECK(shape[d] > 0, "tensor '%s': dim %d is %d", name, d, shape[d]);
        ti->shape[d] = shape[d];
        ti->count *= (size_t)shape[d];
    }
    ti->flags = flags;
    ti->lr_scale = 1.0f;
    ti->offset = t->total;
    ti->bind[TBUF_VALUE] = value;
    ti->bind[TBUF_GRAD] = grad;
    t->total += (ti->count + TENSOR_ALIGN_FLOATS - 1) / TENSOR_ALIGN_FLOATS * TENSOR_ALIGN_FLOATS;
    return t->n++;
}

int tensors_add1(Tensors *t, const char *name, int d0, int flags, float **value, float **grad) {
    int shape[1] = {d0};
    return tensors_add(t, name, 1, shape, flags, value, grad);
}

int tensors_add2(Tensors *t, const char *name, int d0, int d1, int flags, float **value, float **grad) {
    int shape[2] = {d0, d1};
    return tensors_add(t, name, 2, shape, flags, value, grad);
}

void tensors_alloc(Tensors *t) {
    CHECK(t->buf[0] == NULL, "tensors_alloc called twice");
    for (int b = 0; b < t->n_bufs; b++) {
        t->buf[b] = aligned_alloc(64, (t->total ? t->total : TENSOR_ALIGN_FLOATS) * sizeof(float));
        CHECK(t->buf[b] != NULL, "out of memory: %zu floats", t->total);
        memset(t->buf[b], 0, t->total * sizeof(float));
    }
    for (int i = 0; i < t->n; i++)
        for (int b = 0; b < t->n_bufs; b++)
            if (t->info[i].bind[b]) *t->info[i].bind[b] = t->buf[b] + t->info[i].offset;
}

void tensors_free(Tensors *t) {
    for (int b = 0; b < TBUF_MAX; b++) free(t->buf[b]);
    free(t->info);
    memset(t, 0, sizeof *t);
}

void tensors_zero(Tensors *t, int buf) {
    CHECK(buf >= 0 && buf < t->n_bufs && t->buf[buf], "buffer %d not allocated", buf);
    memset(t->buf[buf], 0, t->total * sizeof(float));
}

int tensors_find(const Tensors *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->info[i].name, name)) return i;
    return -1;
}

float *tensors_ptr(const Tensors *t, int buf, int index) {
    CHECK(index >= 0 && index < t->n && buf >= 0 && buf < t->n_bufs && t->buf[buf], "tensor %d buf %d", index, buf);
    return t->buf[buf] + t->info[index].offset;
}
