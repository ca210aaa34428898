/* conv_direct.c — direct 3x3 convolution over NHWC images: no im2col, no GEMM packing.
 *
 * The im2col path (conv.c) writes every receptive field out (9x the input at stride 1) and
 * OpenBLAS then packs both operands again; on the tower's small products that traffic cost about
 * as much as the multiplications. Here the kernel reads the input in place:
 *  - the input is read where it is: a window tap that falls on the zero padding reads a row of C
 *    zeros instead (a padded copy of the input cost a tenth of the layer in memory traffic);
 *  - the weights are repacked once per call to [OC/16][3][3][C][16]: 16 output channels innermost,
 *    one vector per (tap, input channel);
 *  - a register block of DIRECT_PX consecutive output pixels (in flattened n, oy, ox order, so a
 *    block may span rows and images) x 16 or 32 output channels accumulates in vector registers:
 *    per (tap, channel) one weight vector load per 16 outputs and one broadcast per pixel.
 * Each output is one fixed-order sum (bias, then taps, then channels), so the result does not
 * depend on the thread count. Vectors are GCC's generic vector extension (zmm registers under
 * -march=native on AVX-512, split by the compiler elsewhere); vectors never cross a function
 * boundary by value (the ABI differs with and without AVX-512).
 * Deliberately left out: other kernel sizes and paddings (conv.c's im2col path serves them),
 * OC not a multiple of 16, Winograd. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* GCC contracts a*b+c into an FMA only when told (-std=c11 switches contraction off); clang's
 * default already contracts within an expression. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

typedef float DirectVec __attribute__((vector_size(64)));
#define DIRECT_VW 16    /* floats per vector */
#define DIRECT_PX 8     /* output pixels per register block: 8 x 2 vectors = 16 accumulators */
#define DIRECT_CHUNK 64 /* output pixels whose inputs stay in cache while every channel block runs */

typedef struct {
    int N, H, W, C, OC, stride, OH, OW;
    const float *inp, *zeros; /* inp [N, H, W, C]; zeros [C] */
} Direct;

static Direct direct_dims(int N, int H, int W, int C, int OC, int stride) {
    Direct d = {N, H, W, C, OC, stride, (H - 1) / stride + 1, (W - 1) / stride + 1, NULL, NULL};
    return d;
}

int ops_conv2d_direct_ok(int K, int stride, int pad, int OC) {
    return K == 3 && pad == 1 && (stride == 1 || stride == 2) && OC % DIRECT_VW == 0;
}

static size_t direct_weight_floats(int C, int OC) { return (size_t)OC * 9 * C; }

size_t ops_conv2d_direct_scratch_floats(int C, int OC) { return direct_weight_floats(C, OC) + (size_t)C; }

/* wp [OC/16, 3, 3, C, 16] = weight [OC, 3, 3, C] with 16 output channels innermost. */
static void pack_weights(float *restrict wp, const float *restrict weight, int C, int OC) {
    const size_t taps = (size_t)9 * C;
    for (int o = 0; o < OC; o++)
        for (size_t t = 0; t < taps; t++)
            wp[((size_t)(o / DIRECT_VW) * taps + t) * DIRECT_VW + o % DIRECT_VW] = weight[o * taps + t];
}

/* The input pixel (n, y, x) [C], or the zeros where (y, x) lies in the padding. */
static inline const float *direct_pixel(const Direct *d, int n, int y, int x) {
    if ((unsigned)y >= (unsigned)d->H || (unsigned)x >= (unsigned)d->W) return d->zeros;
    return d->inp + (((size_t)n * d->H + y) * d->W + x) * d->C;
}

/* out rows of np pixels (out + p*OC) x channels [ob*nv*16, (ob+1)*nv*16) = bias + the 3x3 window
 * of each pixel, pix[p] = {n, y, x} of its window's top-left corner (y, x = -1 on the padding).
 * np and nv are constants at every call, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void direct_block(float *restrict out, const int (*pix)[3],
                                                               const float *restrict wp, const float *restrict bias,
                                                               int ob, const Direct *d, const int np, const int nv) {
    const size_t C = (size_t)d->C, wblock = 9 * C * DIRECT_VW; /* floats between 16-channel blocks */
    DirectVec acc[DIRECT_PX][2];
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) {
            if (bias) __builtin_memcpy(&acc[p][v], bias + (size_t)(ob * nv + v) * DIRECT_VW, sizeof acc[p][v]);
            else acc[p][v] = (DirectVec){0};
        }
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const float *src[DIRECT_PX];
            for (int p = 0; p < np; p++) src[p] = direct_pixel(d, pix[p][0], pix[p][1] + ky, pix[p][2] + kx);
            const float *restrict wt = wp + ((size_t)ob * nv * 9 + ky * 3 + kx) * C * DIRECT_VW;
            for (size_t c = 0; c < C; c++) {
                DirectVec w[2];
                for (int v = 0; v < nv; v++) __builtin_memcpy(&w[v], wt + v * wblock + c * DIRECT_VW, sizeof w[v]);
#pragma GCC unroll 8
                for (int p = 0; p < np; p++) {
                    const float x = src[p][c];
                    for (int v = 0; v < nv; v++) acc[p][v] += x * w[v];
                }
            }
        }
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++)
            __builtin_memcpy(out + (size_t)p * d->OC + (size_t)(ob * nv + v) * DIRECT_VW, &acc[p][v], sizeof acc[p][v]);
}

/* Output pixels [q0, q1) (flattened n, oy, ox), every channel block. */
static void direct_chunk(float *out, const float *wp, const float *bias, long q0, long q1, const Direct *d) {
    const int nv = d->OC % (2 * DIRECT_VW) == 0 ? 2 : 1, nob = d->OC / (nv * DIRECT_VW);
    int pix[DIRECT_PX][3];
    for (int ob = 0; ob < nob; ob++)
        for (long q = q0; q < q1; q += DIRECT_PX) {
            const int np = q1 - q < DIRECT_PX ? (int)(q1 - q) : DIRECT_PX;
            for (int p = 0; p < np; p++) {
                long n = (q + p) / ((long)d->OH * d->OW), r = (q + p) % ((long)d->OH * d->OW);
                long oy = r / d->OW, ox = r % d->OW;
                pix[p][0] = (int)n, pix[p][1] = (int)oy * d->stride - 1, pix[p][2] = (int)ox * d->stride - 1;
            }
            float *o = out + (size_t)q * d->OC;
            if (np == DIRECT_PX && nv == 2) direct_block(o, pix, wp, bias, ob, d, DIRECT_PX, 2);
            else if (np == DIRECT_PX) direct_block(o, pix, wp, bias, ob, d, DIRECT_PX, 1);
            else
                for (int p = 0; p < np; p++) {
                    if (nv == 2) direct_block(o + (size_t)p * d->OC, pix + p, wp, bias, ob, d, 1, 2);
                    else direct_block(o + (size_t)p * d->OC, pix + p, wp, bias, ob, d, 1, 1);
                }
        }
}

void ops_conv2d_direct_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                               int N, int H, int W, int C, int OC, int stride) {
    Direct d = direct_dims(N, H, W, C, OC, stride);
    float *wp = scratch, *zeros = scratch + direct_weight_floats(C, OC);
    pack_weights(wp, weight, C, OC);
    memset(zeros, 0, (size_t)C * sizeof *zeros);
    d.inp = inp, d.zeros = zeros;
    const long M = (long)N * d.OH * d.OW;
#pragma omp parallel for if (M * OC * 9 * C > OPS_PAR_MIN) schedule(static)
    for (long q0 = 0; q0 < M; q0 += DIRECT_CHUNK)
        direct_chunk(out, wp, bias, q0, q0 + DIRECT_CHUNK < M ? q0 + DIRECT_CHUNK : M, &d);
}
