/* build.c — named parameter/activation declaration and activation-gradient zeroing (see build.h). */
#include "build.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

static void vformat_name(char *name, const char *fmt, va_list ap) {
    int n = vsnprintf(name, TENSOR_NAME_MAX, fmt, ap);
    CHECK(n > 0 && n < TENSOR_NAME_MAX, "tensor name too long (format '%s')", fmt);
}

void build_param(Tensors *params, float **value, float **grad, int flags, int ndim, const int *shape,
                 const char *fmt, ...) {
    char name[TENSOR_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vformat_name(name, fmt, ap);
    va_end(ap);
    tensors_add(params, name, ndim, shape, flags, value, grad);
}

void build_acts_init(BuildActs *ba, Tensors *acts, int max_batch) {
    CHECK(max_batch > 0, "max_batch = %d", max_batch);
    memset(ba, 0, sizeof *ba);
    ba->acts = acts;
    ba->max_batch = max_batch;
}

/* Registers the activation named by fmt; its gradient joins the zeroed list unless written (build.h). */
static void act_add(BuildActs *ba, float **value, float **grad, size_t per_sample, int written, const char *fmt,
                    va_list ap) {
    char name[TENSOR_NAME_MAX];
    vformat_name(name, fmt, ap);
    CHECK(per_sample > 0 && per_sample <= (size_t)0x7fffffff, "activation '%s': %zu floats per sample", name,
          per_sample);
    CHECK(grad || !written, "activation '%s' declared written without a gradient", name);
    tensors_add2(ba->acts, name, ba->max_batch, (int)per_sample, 0, value, grad);
    if (!grad || written) return;
    if (ba->n == ba->cap) {
        ba->cap = ba->cap ? 2 * ba->cap : 16;
        ba->grads = reallocCheck(ba->grads, (size_t)ba->cap * sizeof *ba->grads);
    }
    ba->grads[ba->n++] = (BuildActGrad){grad, per_sample};
}

void build_act(BuildActs *ba, float **value, float **grad, size_t per_sample, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    act_add(ba, value, grad, per_sample, 0, fmt, ap);
    va_end(ap);
}

void build_act_written(BuildActs *ba, float **value, float **grad, size_t per_sample, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    act_add(ba, value, grad, per_sample, 1, fmt, ap);
    va_end(ap);
}

void build_acts_zero_grads(const BuildActs *ba, int B) {
    CHECK(B >= 0 && B <= ba->max_batch, "batch %d > max_batch %d", B, ba->max_batch);
    for (int i = 0; i < ba->n; i++) {
        CHECK(*ba->grads[i].grad != NULL, "activations used before tensors_alloc");
        memset(*ba->grads[i].grad, 0, (size_t)B * ba->grads[i].per_sample * sizeof(float));
    }
}

void build_acts_zero_grads_slice(const BuildActs *ba, int b0, int nb) {
    CHECK(b0 >= 0 && nb >= 0 && b0 + nb <= ba->max_batch, "slice %d+%d > max_batch %d", b0, nb, ba->max_batch);
    for (int i = 0; i < ba->n; i++) {
        CHECK(*ba->grads[i].grad != NULL, "activations used before tensors_alloc");
        size_t ps = ba->grads[i].per_sample;
        memset(*ba->grads[i].grad + (size_t)b0 * ps, 0, (size_t)nb * ps * sizeof(float));
    }
}

int build_threads(int B) {
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    return nt < B ? nt : B;
}

int build_slice_start(int B, int k, int n) { return (int)((long)B * k / n); }

void build_reduce_private(float *dst, const float *priv, size_t stride, int n_src, size_t off, size_t n) {
    if (!dst) return;
#pragma omp for schedule(static) nowait
    for (size_t j = 0; j < n; j++) {
        float acc = dst[j];
        for (int k = 0; k < n_src; k++) acc += priv[k * stride + off + j];
        dst[j] = acc;
    }
}

void build_acts_free(BuildActs *ba) {
    free(ba->grads);
    memset(ba, 0, sizeof *ba);
}

void build_fill_const(float *weight, size_t n, float value) {
    for (size_t i = 0; i < n; i++) weight[i] = value;
}

int build_err_unknown(Err *err, const char *what, const char *got, const char *valid) {
    return err_set(err, "unknown %s '%s'; valid: %s", what, got, valid);
}

void build_numbered_list(char *out, size_t cap, const char *stem, int n) {
    size_t len = 0;
    out[0] = '\0';
    for (int k = 1; k <= n && len < cap; k++) {
        int w = snprintf(out + len, cap - len, "%s%s%d", k > 1 ? ", " : "", stem, k);
        if (w < 0) break;
        len += (size_t)w;
    }
}

int build_parse_numbered(const char *name, const char *stem, int n) {
    char want[TENSOR_NAME_MAX];
    for (int k = 1; k <= n; k++) {
        snprintf(want, sizeof want, "%s%d", stem, k);
        if (!strcmp(name, want)) return k;
    }
    return 0;
}
