/* linear.c — fully connected layer out = inp @ weight^T + bias, forward/backward.
 * The fast path is three cblas_sgemm calls (OpenBLAS threads them itself, so no OpenMP here);
 * the naive path is the plain triple loop the tests compare against.
 * Deliberately left out: fused activations, transposed-weight layouts. */
#include <cblas.h>
#include <string.h>

#include "ops.h"

/* out [B, OC] rows := bias [OC] (or zero), so the product can accumulate with beta = 1. */
static void fill_rows_with_bias(float *restrict out, const float *restrict bias, int B, int OC) {
    if (!bias) {
        memset(out, 0, (size_t)B * OC * sizeof *out);
        return;
    }
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * OC, bias, (size_t)OC * sizeof *out);
}

/* Row-major order keeps the inner loop contiguous. */
void ops_bias_backward(float *restrict dbias, const float *restrict dout, int B, int OC) {
    for (int b = 0; b < B; b++) {
        const float *restrict row = dout + (size_t)b * OC;
        for (int o = 0; o < OC; o++) dbias[o] += row[o];
    }
}

void ops_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC) {
    fill_rows_with_bias(out, bias, B, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, C, 1.0f, inp, C, weight, C, 1.0f, out, OC);
}

void ops_linear_forward_naive(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) {
            float acc = bias ? bias[o] : 0.0f;
            for (int c = 0; c < C; c++) acc += inp[(size_t)b * C + c] * weight[(size_t)o * C + c];
            out[(size_t)b * OC + o] = acc;
        }
}

void ops_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int B, int C, int OC) {
    /* dinp [B, C] += dout [B, OC] @ weight [OC, C] */
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    /* dweight [OC, C] += dout^T [OC, B] @ inp [B, C] */
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, B, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) ops_bias_backward(dbias, dout, B, OC);
}

void ops_linear_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int B, int C, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) {
            float d = dout[(size_t)b * OC + o];
            if (dbias) dbias[o] += d;
            for (int c = 0; c < C; c++) {
                if (dinp) dinp[(size_t)b * C + c] += d * weight[(size_t)o * C + c];
                if (dweight) dweight[(size_t)o * C + c] += d * inp[(size_t)b * C + c];
            }
        }
}
