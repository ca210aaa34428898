/* conv_direct.c — direct 3x3 convolution over NHWC images, forward, weight gradient and input
 * gradient: no im2col, no col2im, no GEMM packing.
 *
 * The im2col path (conv.c) writes every receptive field out (9x the input at stride 1) and
 * OpenBLAS then packs both operands again; on the tower's small products that traffic cost about
 * as much as the multiplications. Here the forward reads the input in place (the two gradients
 * are described above their code):
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
 * OC not a multiple of 16 (C = 3 or a multiple of 8 for the weight gradient, C a multiple of 16
 * for the input gradient), Winograd. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* GCC contracts a*b+c into an FMA only when told (-std=c11 switches contraction off); clang's
 * default already contracts within an expression. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

typedef float DirectVec __attribute__((vector_size(64)));
typedef int DirectMask __attribute__((vector_size(64))); /* a comparison's lanes: -1 true, 0 false */
#define DIRECT_VW 16    /* floats per vector */
#define DIRECT_PX 8     /* output pixels per register block: 8 x 2 vectors = 16 accumulators */
#define DIRECT_CHUNK 64 /* output pixels whose inputs stay in cache while every channel block runs */

typedef struct {
    int N, H, W, C, OC, stride, OH, OW;
    const float *inp, *zeros; /* inp [N, H, W, C]; zeros [C] */
    OpsAct act;               /* the forward's */
} Direct;

static Direct direct_dims(int N, int H, int W, int C, int OC, int stride) {
    Direct d = {N, H, W, C, OC, stride, (H - 1) / stride + 1, (W - 1) / stride + 1, NULL, NULL, OPS_IDENTITY};
    return d;
}

int ops_conv2d_direct_ok(int K, int stride, int pad, int OC) {
    return K == 3 && pad == 1 && (stride == 1 || stride == 2) && OC % DIRECT_VW == 0;
}

static size_t direct_weight_floats(int C, int OC) { return (size_t)OC * 9 * C; }

size_t ops_conv2d_direct_scratch_floats(int C, int OC) { return direct_weight_floats(C, OC) + (size_t)C; }

/* A row of n zeros in scratch after the packed weights (the reads of taps on the padding). */
static const float *direct_zeros(float *scratch, int C, int OC, int n) {
    float *zeros = scratch + direct_weight_floats(C, OC);
    memset(zeros, 0, (size_t)n * sizeof *zeros);
    return zeros;
}

/* wp [OC/16, 3, 3, C, 16] = weight [OC, 3, 3, C] with 16 output channels innermost. */
static void pack_weights(float *restrict wp, const float *restrict weight, int C, int OC) {
    const size_t taps = (size_t)9 * C;
    for (int o = 0; o < OC; o++)
        for (size_t t = 0; t < taps; t++)
            wp[((size_t)(o / DIRECT_VW) * taps + t) * DIRECT_VW + o % DIRECT_VW] = weight[o * taps + t];
}

/* acc[p][v] += sum over k < nk of src[p][k] * (the vector at wt + k*kstep + v*vstep): the
 * register-blocked inner product of the forward and of the input gradient, one weight vector load
 * per 16 outputs and one broadcast per pixel. np and nv are constants at every call. */
static inline __attribute__((always_inline)) void direct_accumulate(DirectVec (*acc)[2], const float *const *src,
                                                                    const float *restrict wt, size_t nk, size_t kstep,
                                                                    size_t vstep, const int np, const int nv) {
    /* unrolled so the 8 source pointers' increments are paid once per 4 channels: one by one, the
     * 10 scalar adds per 16 FMAs made the loop issue-bound (37 uops per 8 FMA cycles) */
#pragma GCC unroll 4
    for (size_t k = 0; k < nk; k++) {
        DirectVec w[2];
        for (int v = 0; v < nv; v++) __builtin_memcpy(&w[v], wt + k * kstep + v * vstep, sizeof w[v]);
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) {
            const float x = src[p][k];
            for (int v = 0; v < nv; v++) acc[p][v] += x * w[v];
        }
    }
}

/* The input pixel (n, y, x) [C], or the zeros where (y, x) lies in the padding. */
static inline const float *direct_pixel(const Direct *d, int n, int y, int x) {
    if ((unsigned)y >= (unsigned)d->H || (unsigned)x >= (unsigned)d->W) return d->zeros;
    return d->inp + (((size_t)n * d->H + y) * d->W + x) * d->C;
}

/* Output pixel (n, oy, ox), walked in flattened order without a division per pixel (at 3 input
 * channels a pixel's kernel row is only 288 FMAs, and 64-bit divisions cost a fifth of that). */
typedef struct {
    int n, oy, ox;
} DirectPixel;

static DirectPixel direct_pixel_at(long q, const Direct *d) {
    long r = q % ((long)d->OH * d->OW);
    return (DirectPixel){(int)(q / ((long)d->OH * d->OW)), (int)(r / d->OW), (int)(r % d->OW)};
}

static inline void direct_pixel_next(DirectPixel *p, const Direct *d) {
    if (++p->ox < d->OW) return;
    p->ox = 0;
    if (++p->oy < d->OH) return;
    p->oy = 0;
    p->n++;
}

/* out rows of np pixels (out + p*OC) x channels [ob*nv*16, (ob+1)*nv*16) = bias + the 3x3 window
 * of each pixel, pix[p] = {n, y, x} of its window's top-left corner (y, x = -1 on the padding).
 * np and nv are constants at every call, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void direct_block(float *restrict out, const int (*pix)[3],
                                                               const float *restrict wp, const float *restrict bias,
                                                               int ob, const Direct *d, const int np, const int nv,
                                                               const int rgb) {
    const size_t C = (size_t)d->C, wblock = 9 * C * DIRECT_VW; /* floats between 16-channel blocks */
    const OpsAct act = d->act;
    /* the bias goes through a copy: a memcpy into acc itself put the accumulators on the stack,
     * and loading them back stalled on the partial store forwards (14% of the forward's time) */
    DirectVec b[2] = {{0}, {0}}, acc[DIRECT_PX][2];
    for (int v = 0; bias && v < nv; v++) __builtin_memcpy(&b[v], bias + (size_t)(ob * nv + v) * DIRECT_VW, sizeof b[v]);
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) acc[p][v] = b[v];
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const float *src[DIRECT_PX];
            for (int p = 0; p < np; p++) src[p] = direct_pixel(d, pix[p][0], pix[p][1] + ky, pix[p][2] + kx);
            const float *restrict wt = wp + ((size_t)ob * nv * 9 + ky * 3 + kx) * C * DIRECT_VW;
            direct_accumulate(acc, src, wt, rgb ? 3 : C, DIRECT_VW, wblock, np, nv);
        }
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) {
            /* the same select as ops_relu_forward, so relu(-0) and NaN come out as there; into a
             * copy: assigning acc here made GCC keep the accumulators on the stack (17% slower) */
            DirectVec o = acc[p][v];
            if (act == OPS_RELU) o = (DirectVec)((DirectMask)o & (o > (DirectVec){0}));
            __builtin_memcpy(out + (size_t)p * d->OC + (size_t)(ob * nv + v) * DIRECT_VW, &o, sizeof o);
        }
}

/* Output pixels [q0, q1) (flattened n, oy, ox, at most DIRECT_CHUNK), every channel block. Their
 * windows' corners are found once, walking the pixels without a division each. */
static void direct_chunk(float *out, const float *wp, const float *bias, long q0, long q1, const Direct *d) {
    const int nv = d->OC % (2 * DIRECT_VW) == 0 ? 2 : 1, nob = d->OC / (nv * DIRECT_VW), nq = (int)(q1 - q0);
    const int rgb = d->C == 3; /* the first layer: its 3-channel products unrolled whole */
    int pix[DIRECT_CHUNK][3];
    DirectPixel at = direct_pixel_at(q0, d);
    for (int q = 0; q < nq; q++, direct_pixel_next(&at, d))
        pix[q][0] = at.n, pix[q][1] = at.oy * d->stride - 1, pix[q][2] = at.ox * d->stride - 1;
    for (int ob = 0; ob < nob; ob++)
        for (int q = 0; q < nq; q += DIRECT_PX) {
            const int np = nq - q < DIRECT_PX ? nq - q : DIRECT_PX;
            float *o = out + (size_t)(q0 + q) * d->OC;
            if (np == DIRECT_PX && nv == 2 && rgb) direct_block(o, pix + q, wp, bias, ob, d, DIRECT_PX, 2, 1);
            else if (np == DIRECT_PX && nv == 2) direct_block(o, pix + q, wp, bias, ob, d, DIRECT_PX, 2, 0);
            else if (np == DIRECT_PX) direct_block(o, pix + q, wp, bias, ob, d, DIRECT_PX, 1, 0);
            else
                for (int p = 0; p < np; p++) {
                    if (nv == 2) direct_block(o + (size_t)p * d->OC, pix + q + p, wp, bias, ob, d, 1, 2, 0);
                    else direct_block(o + (size_t)p * d->OC, pix + q + p, wp, bias, ob, d, 1, 1, 0);
                }
        }
}

void ops_conv2d_direct_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                               int N, int H, int W, int C, int OC, int stride, OpsAct act) {
    Direct d = direct_dims(N, H, W, C, OC, stride);
    const float *wp = scratch;
    pack_weights(scratch, weight, C, OC);
    d.inp = inp, d.zeros = direct_zeros(scratch, C, OC, C), d.act = act;
    const long M = (long)N * d.OH * d.OW;
#pragma omp parallel for if (M * OC * 9 * C > OPS_PAR_MIN) schedule(static)
    for (long q0 = 0; q0 < M; q0 += DIRECT_CHUNK)
        direct_chunk(out, wp, bias, q0, q0 + DIRECT_CHUNK < M ? q0 + DIRECT_CHUNK : M, &d);
}

/* ---- the weight gradient: dweight [OC, 3, 3, C] += sum over output pixels of dout x window ----
 * Per kernel row ky, a pixel's window row is one run of 3C floats (kx, c) of the input, contiguous
 * in NHWC; a run is accumulated DIRECT_CI (or, at C = 3, all 9) floats at a time against 16 or 32
 * output channels of dout, over a chunk of pixels, into dwt [3, 3C, OC] (the transposed gradient,
 * in scratch), which is added to dweight at the end. Runs of rows in the padding are skipped; runs
 * that hang over the left or right padding are copied, zero-filled, into the chunk's tmp rows.
 * Wide layers (OC >= DIRECT_PACK_OC) first pack, per kernel row, the operands of the pixels whose
 * row is not padding contiguous per block: runs as [3C/ci, rows, ci], dout as [OC/(nv*16), rows,
 * nv*16]. Read in place, their consecutive rows lie 1 KiB apart, so the 128 rows a block reads
 * fall into 4 of L1's 64 sets and evict each other: the 8x8x128 -> 256 layer ran at 71% of the
 * sgemm rate in place and 92% packed. Narrower layers read in place: there each packed float feeds
 * only 2-8 FMAs, and packing cost more than the conflicts (measured 13-70% slower at OC 32-128). */
#define DIRECT_CI 8 /* run floats per block when C % 8 == 0: 8 x 2 vectors = 16 accumulators */
#define DIRECT_GCHUNK 128 /* output pixels per chunk: their dout rows stay in cache across blocks */
#define DIRECT_PACK_OC 256 /* the narrowest layer whose weight gradient packs its operands */

int ops_conv2d_direct_dweight_ok(int K, int stride, int pad, int C, int OC) {
    return ops_conv2d_direct_ok(K, stride, pad, OC) && (C % DIRECT_CI == 0 || C == 3);
}

/* dwt, then the chunk's run copies (tmp rows, or packed runs), then its packed dout rows */
size_t ops_conv2d_direct_dweight_scratch_floats(int C, int OC) {
    return direct_weight_floats(C, OC) + (size_t)DIRECT_GCHUNK * 3 * C + (size_t)DIRECT_GCHUNK * OC;
}

/* The operands of one kernel row over a chunk's nr pixels: in place, row q's run at run[q] (NULL: a
 * padding row) and its dout row at g + q * OC; packed, its floats [j0, j0 + ci) at x + (j0/ci) * nr
 * * ci + q * ci and its channel block ob at g + ob * nr * nv*16 + q * nv*16 (run NULL). */
typedef struct {
    const float *const *run;
    const float *x, *g;
    int nr;
} DweightRows;

/* dwt rows [j0, j0 + ci) of kernel row ky x channels of block ob += sum over the rows of rw (packed
 * or in place) of their run floats times their dout channels. ci, nv and packed are constants at
 * every call. */
static inline __attribute__((always_inline)) void dweight_block(float *restrict dwt, const DweightRows *rw, int j0,
                                                                int ob, int ky, const Direct *d, const int ci,
                                                                const int nv, const int packed) {
    const int bw = nv * DIRECT_VW;
    const size_t gstep = packed ? (size_t)bw : (size_t)d->OC;
    const float *restrict g0 = rw->g + (packed ? (size_t)ob * rw->nr * bw : (size_t)ob * bw);
    const float *x0 = packed ? rw->x + (size_t)(j0 / ci) * rw->nr * ci : NULL;
    DirectVec acc[9][2];
    for (int i = 0; i < ci; i++)
        for (int v = 0; v < nv; v++) acc[i][v] = (DirectVec){0};
    for (int q = 0; q < rw->nr; q++) {
        const float *r = packed ? x0 + (size_t)q * ci : rw->run[q];
        if (!r) continue;
        if (!packed) r += j0;
        /* r opaque to the optimiser: otherwise GCC re-associates r[i] into run[q] + (j0 + i), keeps
         * the 8 or 9 offsets in registers and reloads spilled ones from the stack in this loop */
        __asm__("" : "+r"(r));
        DirectVec g[2];
        for (int v = 0; v < nv; v++) __builtin_memcpy(&g[v], g0 + q * gstep + (size_t)v * DIRECT_VW, sizeof g[v]);
#pragma GCC unroll 9
        for (int i = 0; i < ci; i++) {
            const float x = r[i];
            for (int v = 0; v < nv; v++) acc[i][v] += x * g[v];
        }
    }
    float *o = dwt + ((size_t)ky * 3 * d->C + j0) * d->OC + (size_t)ob * bw;
    for (int i = 0; i < ci; i++)
        for (int v = 0; v < nv; v++) {
            DirectVec s;
            __builtin_memcpy(&s, o + (size_t)i * d->OC + v * DIRECT_VW, sizeof s);
            s += acc[i][v];
            __builtin_memcpy(o + (size_t)i * d->OC + v * DIRECT_VW, &s, sizeof s);
        }
}

/* The window row ky of output pixel p: its three columns' C floats (NULL: padding), or 0 when the
 * whole row lies in the padding. */
static inline int dweight_columns(const float **cols, const DirectPixel *p, int ky, const Direct *d) {
    int y = p->oy * d->stride - 1 + ky, x0 = p->ox * d->stride - 1;
    if (y < 0 || y >= d->H) return 0;
    const float *row = d->inp + ((size_t)p->n * d->H + y) * d->W * d->C;
    for (int kx = 0; kx < 3; kx++) cols[kx] = x0 + kx >= 0 && x0 + kx < d->W ? row + (size_t)(x0 + kx) * d->C : NULL;
    return 1;
}

/* In place: run[q] for kernel row ky of the chunk's pixels [q0, q0 + nq), the input run, a
 * zero-filled copy in tmp [nq, 3C] where the window hangs over the side, or NULL on a padding row. */
static void dweight_runs(const float **run, float *tmp, long q0, int nq, int ky, const Direct *d) {
    const size_t C = (size_t)d->C;
    DirectPixel p = direct_pixel_at(q0, d);
    for (int q = 0; q < nq; q++, direct_pixel_next(&p, d)) {
        const float *cols[3];
        run[q] = NULL;
        if (!dweight_columns(cols, &p, ky, d)) continue;
        if (cols[0] && cols[2]) {
            run[q] = cols[0];
            continue;
        }
        float *t = tmp + (size_t)q * 3 * C;
        for (int kx = 0; kx < 3; kx++) {
            if (cols[kx]) memcpy(t + kx * C, cols[kx], C * sizeof *t);
            else memset(t + kx * C, 0, C * sizeof *t);
        }
        run[q] = t;
    }
}

/* Packed (C a multiple of DIRECT_CI): the rows of the chunk's pixels [q0, q0 + nq) whose kernel row
 * ky is not padding, their runs into xp [3C/ci, nr, ci] and their dout rows into gp [OC/bw, nr,
 * bw]. Returns nr. */
static int dweight_pack(float *restrict xp, float *restrict gp, const float *dout, long q0, int nq, int ky, int bw,
                        const Direct *d) {
    const int C = d->C, nob = d->OC / bw;
    int valid[DIRECT_GCHUNK], nr = 0;
    const float *cols[DIRECT_GCHUNK][3];
    DirectPixel p = direct_pixel_at(q0, d);
    for (int q = 0; q < nq; q++, direct_pixel_next(&p, d))
        if (dweight_columns(cols[nr], &p, ky, d)) valid[nr++] = q;
    for (int r = 0; r < nr; r++)
        for (int kx = 0; kx < 3; kx++)
            for (int c = 0; c < C; c += DIRECT_CI) {
                float *dst = xp + ((size_t)(kx * C + c) / DIRECT_CI * nr + r) * DIRECT_CI;
                if (cols[r][kx]) __builtin_memcpy(dst, cols[r][kx] + c, DIRECT_CI * sizeof *dst);
                else __builtin_memset(dst, 0, DIRECT_CI * sizeof *dst);
            }
    for (int ob = 0; ob < nob; ob++)
        for (int r = 0; r < nr; r++)
            memcpy(gp + ((size_t)ob * nr + r) * bw, dout + (size_t)(q0 + valid[r]) * d->OC + (size_t)ob * bw,
                   (size_t)bw * sizeof *gp);
    return nr;
}

static void dweight_chunk(float *dwt, float *dbias, float *tmp, float *gp, const float *dout, long q0, int nq,
                          const Direct *d) {
    const int nv = d->OC % (2 * DIRECT_VW) == 0 ? 2 : 1, nob = d->OC / (nv * DIRECT_VW);
    const int ci = d->C == 3 ? 9 : DIRECT_CI, packed = d->OC >= DIRECT_PACK_OC && ci == DIRECT_CI;
    const float *run[DIRECT_GCHUNK];
    for (int ky = 0; ky < 3; ky++) {
        DweightRows rw = {run, NULL, dout + (size_t)q0 * d->OC, nq};
        if (packed) rw = (DweightRows){NULL, tmp, gp, dweight_pack(tmp, gp, dout, q0, nq, ky, nv * DIRECT_VW, d)};
        else dweight_runs(run, tmp, q0, nq, ky, d);
        for (int j0 = 0; j0 < 3 * d->C; j0 += ci)
            for (int ob = 0; ob < nob; ob++) {
                if (packed && nv == 2) dweight_block(dwt, &rw, j0, ob, ky, d, DIRECT_CI, 2, 1);
                else if (packed) dweight_block(dwt, &rw, j0, ob, ky, d, DIRECT_CI, 1, 1);
                else if (ci == 9 && nv == 2) dweight_block(dwt, &rw, j0, ob, ky, d, 9, 2, 0);
                else if (ci == 9) dweight_block(dwt, &rw, j0, ob, ky, d, 9, 1, 0);
                else if (nv == 2) dweight_block(dwt, &rw, j0, ob, ky, d, DIRECT_CI, 2, 0);
                else dweight_block(dwt, &rw, j0, ob, ky, d, DIRECT_CI, 1, 0);
            }
    }
    /* the bias gradient on the rows the blocks just read: the same additions, in the same order, as
     * one pass over the whole dout */
    if (dbias) ops_bias_backward(dbias, dout + (size_t)q0 * d->OC, nq, d->OC);
}

void ops_conv2d_direct_dweight(float *dweight, float *dbias, float *scratch, const float *dout, const float *inp,
                               int N, int H, int W, int C, int OC, int stride) {
    Direct d = direct_dims(N, H, W, C, OC, stride);
    d.inp = inp;
    const size_t taps = (size_t)9 * C;
    float *dwt = scratch, *tmp = scratch + direct_weight_floats(C, OC), *gp = tmp + (size_t)DIRECT_GCHUNK * 3 * C;
    memset(dwt, 0, taps * OC * sizeof *dwt);
    const long M = (long)N * d.OH * d.OW;
    for (long q0 = 0; q0 < M; q0 += DIRECT_GCHUNK)
        dweight_chunk(dwt, dbias, tmp, gp, dout, q0, M - q0 < DIRECT_GCHUNK ? (int)(M - q0) : DIRECT_GCHUNK, &d);
    for (int o = 0; o < OC; o++)
        for (size_t t = 0; t < taps; t++) dweight[o * taps + t] += dwt[t * OC + o];
}

/* ---- the input gradient: dinp [N, H, W, C] += the transposed convolution of dout ----
 * Input pixel (y, x) receives tap (ky, kx) of output pixel ((y+1-ky)/s, (x+1-kx)/s) when both
 * divide exactly and land inside the output; at stride 2 that is 1, 2 or 4 taps, fixed by the
 * parities of y and x. So a block takes DIRECT_PX input pixels of one parity class (y and x
 * parities): they share their taps.
 * Per (tap, output channel) one vector of the weights [3, 3, OC, C] (repacked, C innermost) per 16
 * input channels and one broadcast of dout per pixel; a tap whose output pixel falls outside reads
 * a row of OC zeros. With relu_out (the conv's input, a ReLU's output) the block adds only where
 * relu_out > 0: the ReLU's backward, fused as in col2im. */
int ops_conv2d_direct_dinp_ok(int K, int stride, int pad, int C) {
    return K == 3 && pad == 1 && (stride == 1 || stride == 2) && C % DIRECT_VW == 0;
}

size_t ops_conv2d_direct_dinp_scratch_floats(int C, int OC) { return direct_weight_floats(C, OC) + (size_t)OC; }

/* wq [3, 3, OC, C] = weight [OC, 3, 3, C] with the input channels innermost. */
static void pack_weights_dinp(float *restrict wq, const float *restrict weight, int C, int OC) {
    for (int o = 0; o < OC; o++)
        for (int t = 0; t < 9; t++)
            memcpy(wq + ((size_t)t * OC + o) * C, weight + ((size_t)o * 9 + t) * C, (size_t)C * sizeof *wq);
}

/* The dout row [OC] that input pixel (n, y, x) reads through tap (ky, kx): NULL when the tap does
 * not reach it by parity, zeros when it reaches past the output's edge. s is a constant at every
 * call (1 or 2), so the parity tests and divisions compile to masks and shifts. */
static inline __attribute__((always_inline)) const float *dinp_source(const Direct *d, const float *dout,
                                                                      const float *zeros, int n, int y, int x,
                                                                      int ky, int kx, const int s) {
    int ty = y + 1 - ky, tx = x + 1 - kx;
    if ((ty | tx) & (s - 1)) return NULL; /* s is a power of two: s - 1 masks the remainder */
    if (ty < 0 || tx < 0) return zeros;
    int oy = ty / s, ox = tx / s;
    if (oy >= d->OH || ox >= d->OW) return zeros;
    return dout + (((size_t)n * d->OH + oy) * d->OW + ox) * d->OC;
}

/* The offset of input pixel pix = {n, y, x} in an [N, H, W, C] tensor. */
static size_t dinp_offset(const Direct *d, const int *pix) {
    return (((size_t)pix[0] * d->H + pix[1]) * d->W + pix[2]) * d->C;
}

/* The taps a parity class receives: those whose output pixel divides exactly by the stride,
 * the same for every pixel of the class (ry, rx: the class's row and column parity). */
typedef struct {
    int n, tap[9];
} DinpTaps;

static DinpTaps dinp_class_taps(int ry, int rx, int s) {
    DinpTaps c = {0, {0}};
    for (int t = 0; t < 9; t++)
        if ((ry + 1 - t / 3 + s) % s == 0 && (rx + 1 - t % 3 + s) % s == 0) c.tap[c.n++] = t;
    return c;
}

/* The dout rows src[i][p] that the pixels pix[0..np-1] (one parity class) read through the class's
 * i-th tap. They are the same for every channel block, so they are found once per pixel block. */
typedef const float *DinpSources[9][DIRECT_PX];
static inline __attribute__((always_inline)) void dinp_sources(DinpSources src, const DinpTaps *taps, const Direct *d,
                                                               const float *dout, const float *zeros,
                                                               const int (*pix)[3], int np, const int s) {
    for (int i = 0; i < taps->n; i++) {
        const int t = taps->tap[i];
        for (int p = 0; p < np; p++)
            src[i][p] = dinp_source(d, dout, zeros, pix[p][0], pix[p][1], pix[p][2], t / 3, t % 3, s);
    }
}

/* dinp at pixels pix[0..np-1] (one parity class), input channels [cb*nv*16, (cb+1)*nv*16), += (or,
 * OPS_OVERWRITE, =) the sum over the class's taps of the dout rows src. np and nv are constants at
 * every call. */
static inline __attribute__((always_inline)) void dinp_block(float *restrict dinp, const float *restrict relu_out,
                                                             const float *restrict wq, const DinpTaps *taps,
                                                             DinpSources src, const int (*pix)[3], int cb,
                                                             const Direct *d, OpsStore store, const int np,
                                                             const int nv) {
    const size_t C = (size_t)d->C, OC = (size_t)d->OC;
    DirectVec acc[DIRECT_PX][2];
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) acc[p][v] = (DirectVec){0};
    for (int i = 0; i < taps->n; i++) {
        const float *restrict wt = wq + (size_t)taps->tap[i] * OC * C + (size_t)cb * nv * DIRECT_VW;
        direct_accumulate(acc, src[i], wt, OC, C, DIRECT_VW, np, nv);
    }
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) {
            const size_t at = dinp_offset(d, pix[p]) + (size_t)(cb * nv + v) * DIRECT_VW;
            DirectVec s = {0};
            if (store == OPS_ACCUMULATE) __builtin_memcpy(&s, dinp + at, sizeof s);
            if (relu_out) {
                DirectVec m;
                __builtin_memcpy(&m, relu_out + at, sizeof m);
                s += (DirectVec)((DirectMask)acc[p][v] & (m > (DirectVec){0}));
            } else {
                s += acc[p][v];
            }
            __builtin_memcpy(dinp + at, &s, sizeof s);
        }
}

/* Every channel block of the np pixels pix of one parity class. */
static inline __attribute__((always_inline)) void dinp_pixels(float *dinp, const float *relu_out, const float *wq,
                                                              const float *dout, const float *zeros,
                                                              const DinpTaps *taps, const int (*pix)[3], int np,
                                                              const Direct *d, OpsStore store, const int s) {
    const int nv = d->C % (2 * DIRECT_VW) == 0 ? 2 : 1, ncb = d->C / (nv * DIRECT_VW);
    DinpSources src;
    dinp_sources(src, taps, d, dout, zeros, pix, np, s);
    for (int cb = 0; cb < ncb; cb++) {
        if (np == DIRECT_PX && nv == 2) dinp_block(dinp, relu_out, wq, taps, src, pix, cb, d, store, DIRECT_PX, 2);
        else if (np == DIRECT_PX) dinp_block(dinp, relu_out, wq, taps, src, pix, cb, d, store, DIRECT_PX, 1);
        else
            for (int p = 0; p < np; p++) {
                DinpSources one;
                for (int i = 0; i < taps->n; i++) one[i][0] = src[i][p];
                if (nv == 2) dinp_block(dinp, relu_out, wq, taps, one, pix + p, cb, d, store, 1, 2);
                else dinp_block(dinp, relu_out, wq, taps, one, pix + p, cb, d, store, 1, 1);
            }
    }
}

/* Image n at stride s (a constant at every call): each parity class (pixels (ry + i*s, rx + j*s))
 * in row-major blocks of DIRECT_PX pixels, which may span rows (at 8x8 and stride 2 a class row
 * has only 4 pixels), every channel block. */
static inline __attribute__((always_inline)) void dinp_image(float *dinp, const float *relu_out, const float *wq,
                                                             const float *dout, const float *zeros, int n,
                                                             const Direct *d, OpsStore store, const int s) {
    for (int ry = 0; ry < s && ry < d->H; ry++)
        for (int rx = 0; rx < s && rx < d->W; rx++) {
            const int cols = (d->W - rx + s - 1) / s, count = (d->H - ry + s - 1) / s * cols;
            const DinpTaps taps = dinp_class_taps(ry, rx, s);
            for (int k0 = 0; k0 < count; k0 += DIRECT_PX) {
                const int np = count - k0 < DIRECT_PX ? count - k0 : DIRECT_PX;
                int pix[DIRECT_PX][3];
                for (int p = 0; p < np; p++)
                    pix[p][0] = n, pix[p][1] = ry + (k0 + p) / cols * s, pix[p][2] = rx + (k0 + p) % cols * s;
                dinp_pixels(dinp, relu_out, wq, dout, zeros, &taps, pix, np, d, store, s);
            }
        }
}

void ops_conv2d_direct_dinp(float *dinp, float *scratch, const float *dout, const float *weight, const float *relu_out,
                            int N, int H, int W, int C, int OC, int stride, OpsStore store) {
    Direct d = direct_dims(N, H, W, C, OC, stride);
    pack_weights_dinp(scratch, weight, C, OC);
    const float *wq = scratch, *zeros = direct_zeros(scratch, C, OC, OC);
#pragma omp parallel for if ((size_t)N * H * W * C * OC > OPS_PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        if (stride == 1) dinp_image(dinp, relu_out, wq, dout, zeros, n, &d, store, 1);
        else dinp_image(dinp, relu_out, wq, dout, zeros, n, &d, store, 2);
    }
}
