/* bench_ops.c — how close the kernels of core/ops come to the machine's sgemm peak.
 *
 * 1. the peak: best of a few 1024^3 cblas_sgemm, measured in this process;
 * 2. cblas_sgemm alone on the model's shapes (tiny CNN im2col products at batch 256, the text
 *    transformer's linears at B*T = 256*16, C = 128);
 * 3. each kernel's forward+backward on those shapes, FLOPs stated per line;
 * 4. the OpenMP break-even behind OPS_PAR_MIN: one elementwise loop serial vs forked;
 * 5. the spec model's four convs as one thread of a 2-thread step runs them, each direct kernel
 *    against a 1-thread peak, and their sum (the ceiling the step's convs set).
 * Every rate is printed as GFLOP/s and as a fraction of the peak. Memory-bound kernels (norms,
 * pools, activations) are far below the peak by nature; their line shows they are not the
 * bottleneck next to the products. Runs in well under a minute on 2 cores.
 * Deliberately left out: whole-model throughput (that is bench_train.c and run_bench.sh).
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/timer.h"
#include "ops/ops.h"

#define REPS 5

static double peak_gflops;

static float *buf(size_t n, Rng *r) {
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_ops: out of memory (%zu floats)\n", n);
        exit(1);
    }
    rng_fill_uniform(r, p, (long)n, -1.0f, 1.0f);
    return p;
}

/* Best wall time of REPS calls after one warm-up call (best-of, because a loaded machine only
 * ever adds time: an OpenMP barrier waits out a descheduled thread's whole time slice). */
typedef void (*BenchFn)(void *ctx);
static double best_time(BenchFn fn, void *ctx) {
    fn(ctx);
    double best = 1e30;
    for (int i = 0; i < REPS; i++) {
        double t0 = time_now();
        fn(ctx);
        double dt = time_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Lines are collected and printed at the end, against the best peak seen before AND after them:
 * other processes on the machine depress any single peak measurement. */
#define MAX_LINES 64
static struct {
    char what[96];
    double flops, seconds; /* flops < 0: a section heading */
} lines[MAX_LINES];
static int n_lines;

static void report(const char *what, double flops, double seconds) {
    if (n_lines == MAX_LINES) return;
    snprintf(lines[n_lines].what, sizeof lines[n_lines].what, "%s", what);
    lines[n_lines].flops = flops;
    lines[n_lines++].seconds = seconds;
}

static void heading(const char *what) { report(what, -1.0, 0.0); }

static void print_lines(void) {
    for (int i = 0; i < n_lines; i++) {
        if (lines[i].flops < 0) {
            printf("\n%s\n", lines[i].what);
            continue;
        }
        double gf = lines[i].flops / lines[i].seconds * 1e-9;
        printf("  %-58s %9.3f ms %7.1f GFLOP/s %6.1f%% of peak\n", lines[i].what, lines[i].seconds * 1e3, gf,
               100.0 * gf / peak_gflops);
    }
}

/* ---------- sgemm ---------- */

typedef struct {
    int M, N, K, transb;
    float *A, *B, *C;
} Gemm;

static void run_gemm(void *ctx) {
    Gemm *g = ctx;
    /* C [M, N] = A [M, K] @ B, B stored [N, K] (transb, as the linear forward) or [K, N] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, g->transb ? CblasTrans : CblasNoTrans, g->M, g->N, g->K, 1.0f, g->A, g->K,
                g->B, g->transb ? g->K : g->N, 0.0f, g->C, g->N);
}

static double bench_gemm(const char *what, int M, int N, int K, int transb, Rng *r) {
    Gemm g = {M, N, K, transb, buf((size_t)M * K, r), buf((size_t)N * K, r), buf((size_t)M * N, r)};
    double s = best_time(run_gemm, &g);
    if (what) report(what, 2.0 * M * N * K, s);
    free(g.A), free(g.B), free(g.C);
    return 2.0 * M * N * K / s * 1e-9;
}

/* ---------- kernels ---------- */

typedef struct {
    int N, H, C, OC, K, S, P, OH;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *scratch;
} ConvBench;

static void run_conv(void *ctx) {
    ConvBench *c = ctx;
    ops_conv2d_forward(c->y, c->scratch, c->x, c->w, c->b, c->N, c->H, c->H, c->C, c->OC, c->K, c->S, c->P, OPS_IDENTITY);
    ops_conv2d_backward(c->dx, c->dw, c->db, c->scratch, c->dy, c->x, c->w, c->N, c->H, c->H, c->C, c->OC, c->K, c->S,
                        c->P);
}

/* need_dinp = 0 for the first layer, whose input is the image (the tower passes dinp = NULL) */
static void bench_conv(int N, int H, int C, int OC, int K, int S, int P, int need_dinp, Rng *r) {
    ConvBench c = {.N = N, .H = H, .C = C, .OC = OC, .K = K, .S = S, .P = P, .OH = (H + 2 * P - K) / S + 1};
    size_t ni = (size_t)N * H * H * C, nw = (size_t)OC * K * K * C, no = (size_t)N * c.OH * c.OH * OC;
    c.x = buf(ni, r), c.w = buf(nw, r), c.b = buf(OC, r), c.y = buf(no, r), c.dy = buf(no, r);
    c.dx = need_dinp ? buf(ni, r) : NULL, c.dw = buf(nw, r), c.db = buf(OC, r);
    c.scratch = buf(ops_conv2d_scratch_floats(N, H, H, C, OC, K, S, P) + 1, r);
    char what[96];
    snprintf(what, sizeof what, "conv %dx%d/%d %d->%d @%dx%d N=%d fwd+bwd%s", K, K, S, C, OC, H, H, N,
             need_dinp ? "" : " (no dinp)");
    /* products of M x OC x KKC: forward, dweight, and dcol when dinp is needed */
    report(what, (need_dinp ? 6.0 : 4.0) * N * c.OH * c.OH * OC * K * K * C, best_time(run_conv, &c));
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy), free(c.dx), free(c.dw), free(c.db), free(c.scratch);
}

typedef struct {
    int B, C, OC;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} LinearBench;

static void run_linear(void *ctx) {
    LinearBench *l = ctx;
    ops_linear_forward(l->y, l->x, l->w, l->b, l->B, l->C, l->OC);
    ops_linear_backward(l->dx, l->dw, l->db, l->dy, l->x, l->w, l->B, l->C, l->OC);
}

static void bench_linear(int B, int C, int OC, Rng *r) {
    LinearBench l = {B, C, OC, buf((size_t)B * C, r), buf((size_t)OC * C, r), buf(OC, r), buf((size_t)B * OC, r),
                     buf((size_t)B * OC, r), buf((size_t)B * C, r), buf((size_t)OC * C, r), buf(OC, r)};
    char what[96];
    snprintf(what, sizeof what, "linear %d x %d -> %d fwd+bwd", B, C, OC);
    report(what, 6.0 * B * C * OC, best_time(run_linear, &l));
    free(l.x), free(l.w), free(l.b), free(l.y), free(l.dy), free(l.dx), free(l.dw), free(l.db);
}

typedef struct {
    int B, T, C, NH;
    float *qkv, *out, *pre, *att, *dqkv, *dpre, *datt, *dout;
} AttnBench;

static void run_attn(void *ctx) {
    AttnBench *a = ctx;
    ops_attention_forward(a->out, a->pre, a->att, a->qkv, a->B, a->T, a->C, a->NH);
    ops_attention_backward(a->dqkv, a->dpre, a->datt, a->dout, a->qkv, a->att, a->B, a->T, a->C, a->NH);
}

static void bench_attention(int B, int T, int C, int NH, Rng *r) {
    size_t na = (size_t)B * NH * T * T, nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C;
    AttnBench a = {B, T, C, NH, buf(nq, r), buf(no, r), buf(na, r), buf(na, r), buf(nq, r), buf(na, r), buf(na, r),
                   buf(no, r)};
    char what[96];
    snprintf(what, sizeof what, "attention B=%d T=%d C=%d NH=%d fwd+bwd", B, T, C, NH);
    /* causal pairs P = B*NH*T(T+1)/2, each 2*hs FLOPs per product: forward q.k and a*v (2 products),
     * backward dv, da, dq, dk (4 products) */
    report(what, 6.0 * 2.0 * B * NH * (T * (T + 1) / 2.0) * (C / NH), best_time(run_attn, &a));
    free(a.qkv), free(a.out), free(a.pre), free(a.att), free(a.dqkv), free(a.dpre), free(a.datt), free(a.dout);
}

/* Row kernels on [B, C] share one context. */
typedef struct {
    int B, C;
    float *x, *y, *dy, *dx, *w, *b, *dw, *db, *mean, *rstd, *losses;
    int *targets, *argmax;
} RowBench;

static void run_layernorm(void *ctx) {
    RowBench *k = ctx;
    ops_layernorm_forward(k->y, k->mean, k->rstd, k->x, k->w, k->b, k->B, k->C, 1e-5f);
    ops_layernorm_backward(k->dx, k->dw, k->db, k->dy, k->x, k->w, k->mean, k->rstd, k->B, k->C);
}

static void run_gelu(void *ctx) {
    RowBench *k = ctx;
    ops_gelu_forward(k->y, k->x, (size_t)k->B * k->C);
    ops_gelu_backward(k->dx, k->dy, k->x, (size_t)k->B * k->C, OPS_ACCUMULATE);
}

static void run_relu(void *ctx) {
    RowBench *k = ctx;
    ops_relu_forward(k->y, k->x, (size_t)k->B * k->C);
    ops_relu_backward(k->dx, k->dy, k->x, (size_t)k->B * k->C);
}

static void run_xent(void *ctx) {
    RowBench *k = ctx;
    ops_softmax_xent_forward(k->losses, k->y, k->x, k->targets, k->B, k->C);
    ops_softmax_xent_backward(k->dx, k->mean, k->y, k->targets, k->B, k->C);
}

static void run_l2norm(void *ctx) {
    RowBench *k = ctx;
    ops_l2norm_forward(k->y, k->mean, k->x, k->B, k->C, 1e-6f);
    ops_l2norm_backward(k->dx, k->dy, k->y, k->mean, k->B, k->C, 1e-6f);
}

/* B rows here are images of 8x8 pixels with C channels. */
static void run_maxpool(void *ctx) {
    RowBench *k = ctx;
    ops_maxpool2d_forward(k->y, k->argmax, k->x, k->B / 64, 8, 8, k->C, 2, 2);
    ops_maxpool2d_backward(k->dx, k->dy, k->argmax, k->B / 64, 4, 4, k->C);
}

static void run_gap(void *ctx) {
    RowBench *k = ctx;
    ops_global_avgpool_forward(k->y, k->x, k->B / 64, 8, 8, k->C);
    ops_global_avgpool_backward(k->dx, k->dy, k->B / 64, 8, 8, k->C);
}

static void bench_rows(const char *what, BenchFn fn, int B, int C, double flops_per_elem, Rng *r) {
    size_t n = (size_t)B * C;
    RowBench k = {B, C, buf(n, r), buf(n, r), buf(n, r), buf(n, r), buf(C, r), buf(C, r), buf(C, r), buf(C, r),
                  buf(B, r), buf(B, r), buf(B, r), malloc(sizeof(int) * B), malloc(sizeof(int) * n)};
    for (int i = 0; i < B; i++) k.targets[i] = (int)rng_below(r, C);
    char line[96];
    snprintf(line, sizeof line, "%s [%d x %d] (~%.0f FLOP/elem)", what, B, C, flops_per_elem);
    report(line, flops_per_elem * n, best_time(fn, &k));
    free(k.x), free(k.y), free(k.dy), free(k.dx), free(k.w), free(k.b), free(k.dw), free(k.db), free(k.mean);
    free(k.rstd), free(k.losses), free(k.targets), free(k.argmax);
}

/* ---------- OpenMP break-even ---------- */

typedef struct {
    size_t n;
    float *x, *y;
} Loop;

static void loop_serial(void *ctx) {
    Loop *l = ctx;
    for (size_t i = 0; i < l->n; i++) l->y[i] += l->x[i] > 0.0f ? l->x[i] : 0.0f;
}

static void loop_forked(void *ctx) {
    Loop *l = ctx;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < l->n; i++) l->y[i] += l->x[i] > 0.0f ? l->x[i] : 0.0f;
}

static void bench_break_even(Rng *r) {
    printf("\nOpenMP break-even (elementwise relu-backward-like loop; OPS_PAR_MIN = %d):\n", OPS_PAR_MIN);
    const size_t sizes[] = {4096, 16384, 32768, 65536, 262144};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        Loop l = {sizes[s], buf(sizes[s], r), buf(sizes[s], r)};
        double ts = 1e30, tf = 1e30;
        /* many repetitions: one call is microseconds */
        for (int rep = 0; rep < 5; rep++) {
            double t0 = time_now();
            for (int i = 0; i < 200; i++) loop_serial(&l);
            double t1 = time_now();
            for (int i = 0; i < 200; i++) loop_forked(&l);
            double t2 = time_now();
            ts = (t1 - t0) < ts ? (t1 - t0) : ts;
            tf = (t2 - t1) < tf ? (t2 - t1) : tf;
        }
        printf("  n = %7zu: serial %7.2f us, %d threads %7.2f us -> %s\n", sizes[s], ts / 200 * 1e6,
               omp_get_max_threads(), tf / 200 * 1e6, tf < ts ? "fork pays" : "serial wins");
        free(l.x), free(l.y);
    }
}

/* best of 5: other processes on the machine can only slow it down */
static void measure_peak(Rng *r) {
    for (int i = 0; i < 5; i++) {
        double g = bench_gemm(NULL, 1024, 1024, 1024, 0, r);
        if (g > peak_gflops) peak_gflops = g;
    }
}

/* ---------- the spec model's convs, one thread ----------
 * The tower of the experiments/ specs (32x32x3 -> 32 at stride 1, then -> 64, 128, 256 at stride 2, one
 * conv per stage) at N = TOWER_SLICE, one thread's slice of B = 256 on 2 threads: each direct
 * kernel alone as the tower calls it (forward with its ReLU; weight gradient with the bias; ReLU-fused
 * input gradient, overwriting) against a 1-thread sgemm peak, and their sum. The sum bounds the step: were everything else in it free,
 * its convs would still take this long. */
#define TOWER_SLICE 128
#define TOWER_REPS 10

static double best_of(double *best, double t0, double t1) { return *best = t1 - t0 < *best ? t1 - t0 : *best; }

static void bench_tower_convs(Rng *r) {
    const int layers[][4] = {{32, 3, 32, 1}, {32, 32, 64, 2}, {16, 64, 128, 2}, {8, 128, 256, 2}}; /* H, C, OC, stride */
    const int N = TOWER_SLICE, saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double peak = 0.0, total_s = 0.0, total_flop = 0.0;
    for (int i = 0; i < 3; i++) {
        double g = bench_gemm(NULL, 1024, 1024, 1024, 0, r);
        peak = g > peak ? g : peak;
    }
    printf("\nthe spec model's convs on one thread, N = %d (one thread's share of B = 256), best of %d, against\n"
           "the 1-thread sgemm peak %.1f GFLOP/s (fwd: forward with its ReLU; dW: weight and bias gradient; dX:\n"
           "ReLU-fused input gradient, overwriting; none for the first layer), as the tower calls them:\n", N, TOWER_REPS, peak);
    for (int l = 0; l < 4; l++) {
        const int H = layers[l][0], C = layers[l][1], OC = layers[l][2], S = layers[l][3], OH = (H - 1) / S + 1;
        const size_t ni = (size_t)N * H * H * C, no = (size_t)N * OH * OH * OC, nw = (size_t)OC * 9 * C;
        float *x = buf(ni, r), *w = buf(nw, r), *b = buf((size_t)OC, r), *y = buf(no, r), *dx = buf(ni, r);
        float *dw = buf(nw, r), *db = buf((size_t)OC, r);
        float *sc = buf(ops_conv2d_scratch_floats(N, H, H, C, OC, 3, S, 1), r);
        double bf = 1e30, bw = 1e30, bx = 1e30, flop = 2.0 * N * OH * OH * OC * 9.0 * C;
        for (int it = 0; it <= TOWER_REPS; it++) { /* it = 0 warms up */
            double t0 = time_now();
            ops_conv2d_direct_forward(y, sc, x, w, b, N, H, H, C, OC, S, OPS_RELU);
            double t1 = time_now();
            ops_conv2d_direct_dweight(dw, db, sc, y, x, N, H, H, C, OC, S);
            double t2 = time_now();
            if (l > 0) ops_conv2d_direct_dinp(dx, sc, y, w, x, N, H, H, C, OC, S, OPS_OVERWRITE);
            double t3 = time_now();
            if (it > 0) best_of(&bf, t0, t1), best_of(&bw, t1, t2), best_of(&bx, t2, t3);
        }
        const int n_ops = l > 0 ? 3 : 2;
        total_s += bf + bw + (l > 0 ? bx : 0.0);
        total_flop += n_ops * flop;
        printf("  %2dx%-2d x %3d -> %3d /%d  fwd %6.2f ms %5.1f%%   dW %6.2f ms %5.1f%%", H, H, C, OC, S, bf * 1e3,
               100.0 * flop / bf * 1e-9 / peak, bw * 1e3, 100.0 * flop / bw * 1e-9 / peak);
        if (l > 0) printf("   dX %6.2f ms %5.1f%%", bx * 1e3, 100.0 * flop / bx * 1e-9 / peak);
        printf("   (%.2f GFLOP each)\n", flop * 1e-9);
        free(x), free(w), free(b), free(y), free(dx), free(dw), free(db), free(sc);
    }
    printf("  all four: %.1f ms for %.2f GFLOP = %.1f%% of the peak: the ceiling of a step's conv time\n", total_s * 1e3,
           total_flop * 1e-9, 100.0 * total_flop / total_s * 1e-9 / peak);
    omp_set_num_threads(saved);
}

int main(void) {
    Rng r;
    rng_init(&r, 1);
    double t_start = time_now();
    printf("bench_ops: %d OpenMP threads\n", omp_get_max_threads());
    measure_peak(&r);
    heading("sgemm on the model's shapes (M x N x K):");
    /* tiny CNN at batch 256, forward products out [M, OC] = col [M, KKC] @ W^T */
    const int conv[][3] = {{256 * 32 * 32, 32, 27}, {256 * 16 * 16, 64, 288}, {256 * 8 * 8, 128, 576}, {256 * 4 * 4, 256, 1152}};
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "im2col %d x %d x %d", conv[i][0], conv[i][1], conv[i][2]);
        bench_gemm(what, conv[i][0], conv[i][1], conv[i][2], 1, &r);
    }
    /* text transformer at B*T = 256*16, C = 128: qkv (3C), attention proj (C), MLP (4C and back) */
    const int txt[][3] = {{4096, 384, 128}, {4096, 128, 128}, {4096, 512, 128}, {4096, 128, 512}};
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "linear %d x %d x %d", txt[i][0], txt[i][1], txt[i][2]);
        bench_gemm(what, txt[i][0], txt[i][1], txt[i][2], 1, &r);
    }

    heading("kernels, forward + backward (FLOPs: products counted 2*M*N*K):");
    bench_conv(256, 32, 3, 32, 3, 1, 1, 0, &r);
    bench_conv(256, 16, 32, 64, 3, 1, 1, 1, &r);
    bench_conv(256, 8, 64, 128, 3, 1, 1, 1, &r);
    bench_conv(256, 4, 128, 256, 3, 1, 1, 1, &r);
    bench_conv(256, 32, 32, 64, 3, 2, 1, 1, &r); /* the stride-2 transition between stages */
    for (int i = 0; i < 4; i++) bench_linear(txt[i][0], txt[i][2], txt[i][1], &r);
    bench_attention(256, 16, 128, 4, &r);
    bench_rows("layernorm", run_layernorm, 4096, 128, 17, &r);
    bench_rows("layernorm (NHWC channels)", run_layernorm, 256 * 16 * 16, 64, 17, &r);
    bench_rows("gelu", run_gelu, 4096, 512, 30, &r);
    bench_rows("relu", run_relu, 256 * 32 * 32, 32, 2, &r);
    bench_rows("softmax-xent", run_xent, 4096, 512, 8, &r);
    bench_rows("l2norm", run_l2norm, 256, 128, 8, &r);
    bench_rows("maxpool 2x2 (rows = pixels)", run_maxpool, 256 * 64, 64, 1, &r);
    bench_rows("global avgpool (rows = pixels)", run_gap, 256 * 64, 256, 2, &r);

    measure_peak(&r);
    printf("sgemm peak (best 1024^3 before and after): %.1f GFLOP/s\n", peak_gflops);
    print_lines();
    bench_break_even(&r);
    bench_tower_convs(&r);
    printf("\nbench_ops: %.1f s\n", time_now() - t_start);
    return 0;
}
