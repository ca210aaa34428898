/* bench_train.c — whole training steps of the experiments/ models (*.yaml), as ratios.
 *
 * For each objective (contrastive with cbow text, contrastive with transformer text, bow,
 * caption) at the spec's tiny model and batch sizes 64 and 256, each on 1 and on 2 threads:
 * model_build from spec_load + spec_override, 2 warm-up steps, then a few timed steps of exactly
 * the trainer's step (dataset_fill_batch, tensors_zero GRAD, forward_backward,
 * grad_clip_global_norm, adamw_step; the learning rate is held at its peak instead of scheduled).
 * Per configuration: the best (shortest) step time, images/s with and without the data time, the
 * share of
 * the step spent in dataset_fill_batch (the budget: < 10% at B = 256, printed as
 * information, never as an exit status), achieved GFLOP/s as a fraction of the sgemm peak of this
 * process, and memory (arena sizes and VmHWM, reset before each configuration).
 * Best-of rather than median or mean, here and for the peak: the machine is shared, and other
 * processes only ever add time (an OpenMP barrier waits out a descheduled thread's time slice),
 * so the minimum is the estimate least distorted by them. For the same reason each configuration's
 * peak is measured just before and just after it (the better one is kept): a fraction of a peak
 * measured minutes away would mostly measure the other users of the machine.
 *
 * FLOPs (one multiply-add = 2), forward, then x3 for forward + backward:
 *   conv3x3   2 B OH^2 OC 9 C             every built conv of the image tower
 *   linear    2 N in out                  heads, cbow projection, transformer qkv/proj/fc/fcproj
 *                                         (N = B*S tokens), bow classifier, caption prefix
 *                                         projection and LM head (N = B*(T-1))
 * Left out of the count: attention's score/value products (4 B S^2 C per block, S = 16..20),
 * norms, activations, pooling, embeddings, the loss; and the x3 overcounts the first conv, whose
 * input gradient is not computed (< 2% of the total). So the fraction is a lower bound on how
 * busy the products keep the cores, not an exact utilisation.
 *
 * Output: a table on stdout, and <dir of this binary>/train.tsv (one row per configuration, with
 * the model dimensions) that tests/bench/run_bench.sh and torch_train_ref.py read to build the
 * same models in PyTorch. Usage: bench_train [EXPERIMENTS_DIR [LABEL [B [THREADS [STEPS]]]]] (default
 * "experiments", every configuration; LABEL ("" = all), B and THREADS keep only matching rows, e.g.
 * "caption 256 2"; STEPS > 0 times exactly that many steps, so that `perf stat` cycle counts of two
 * builds compare on a busy machine).
 * Deliberately left out: evaluation, logging and checkpointing (the trainer's non-step work), and
 * thread counts above 2 (the machine this was written for has 2 cores).
 */
#include <math.h>
#include <malloc.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "cliplab.h"
#include "common/check.h"
#include "common/timer.h"
#include "spec/spec.h"
#include "model/model.h"
#include "optim/optim.h"

#define WARMUP_STEPS 2
#define MIN_STEPS 3
#define MAX_STEPS 20
#define STEP_BUDGET_S 2.5 /* timed seconds per configuration, split into steps */
#define PEAK_N 2048       /* sgemm peak: PEAK_N^3, best of PEAK_REPS, around every configuration */
#define PEAK_REPS 3
#define DATA_BUDGET 0.10 /* the issue: a batch of 256 costs < 10% of a tiny model's step */

typedef struct {
    const char *spec;  /* file in the experiments directory */
    const char *label; /* row name */
    int batches[3];
    int n_batches;
} BenchCase;

/* The grid: every arm at these batch sizes, on each of these thread counts (omp_set_num_threads
 * before the row; OpenBLAS's OpenMP build follows it). */
static const int THREADS[] = {1, 2};
#define N_THREADS ((int)(sizeof THREADS / sizeof THREADS[0]))

static const BenchCase CASES[] = {
    {"contrastive.yaml", "contrastive-cbow", {64, 256}, 2},
    {"contrastive-transformer.yaml", "contrastive-transformer", {64, 256}, 2},
    {"bow.yaml", "bow", {64, 256}, 2},
    {"caption.yaml", "caption", {64, 256}, 2},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

/* ---------- analytic FLOPs (see the header comment) ---------- */

/* 1-based stage named by an image tap ("img.stageK"), n_widths for "". */
static int stages_built(const Config *cfg) {
    int k = 0;
    if (sscanf(cfg->model.image.tap, "img.stage%d", &k) != 1) k = cfg->model.image.n_widths;
    return k;
}

static double linear_flops(double n, double in, double out) { return 2.0 * n * in * out; }

static double head_flops(const Config *cfg, double B, int in, int out) {
    const char *kind = cfg->model.head.kind;
    if (!strcmp(kind, "identity")) return 0.0;
    if (!strcmp(kind, "linear")) return linear_flops(B, in, out);
    int d = cfg->model.head.depth, h = cfg->model.head.hidden;
    double f = 0.0;
    for (int k = 0; k < d; k++) f += linear_flops(B, k == 0 ? in : h, k == d - 1 ? out : h);
    return f;
}

/* Forward FLOPs of a batch; *img_dim set to the image tower's output width. */
static double image_tower_flops(const Config *cfg, double B, int *img_dim) {
    double f = 0.0;
    int C = 3, H = cfg->data.image_size;
    for (int s = 0; s < stages_built(cfg); s++)
        for (int j = 0; j < cfg->model.image.convs_per_stage; j++) {
            int OC = cfg->model.image.widths[s], stride = s > 0 && j == 0 ? 2 : 1;
            int OH = (H + 2 - 3) / stride + 1;
            f += 2.0 * B * OH * OH * OC * 9.0 * C;
            C = OC;
            H = OH;
        }
    *img_dim = C;
    return f;
}

/* The qkv, attention projection and MLP linears of n_blocks pre-LN blocks over N tokens. */
static double transformer_flops(double N, int C, int n_blocks) {
    return n_blocks * (linear_flops(N, C, 3 * C) + linear_flops(N, C, C) + linear_flops(N, C, 4 * C) +
                       linear_flops(N, 4 * C, C));
}

static double forward_flops(const Config *cfg, int B, int V) {
    int F, C = cfg->model.text.width, T = cfg->data.context, D = cfg->model.embed_dim;
    double f = image_tower_flops(cfg, B, &F);
    const char *obj = cfg->objective.kind;
    if (!strcmp(obj, "contrastive")) {
        f += head_flops(cfg, B, F, D) + head_flops(cfg, B, C, D);
        if (!strcmp(cfg->model.text.kind, "cbow")) {
            f += linear_flops(B, C, C);
        } else {
            int built = cfg->model.text.layers;
            if (cfg->model.text.tap[0]) sscanf(cfg->model.text.tap, "txt.block%d", &built);
            f += transformer_flops((double)B * T, C, built);
        }
    } else if (!strcmp(obj, "bow")) {
        f += linear_flops(B, F, V);
    } else {
        int P = cfg->objective.prefix_tokens;
        f += linear_flops(B, F, (double)P * C) + transformer_flops((double)B * (P + T), C, cfg->model.text.layers) +
             linear_flops((double)B * (T - 1), C, V);
    }
    return f;
}

/* ---------- one configuration ---------- */

typedef struct {
    char label[48];
    int B, threads, steps, V, stages;
    double ms_step, ms_data, ms_compute, step_gflop, loss;
    double ms_cpu; /* process CPU time of the step without data (all threads), best step */
    double peak; /* sgemm GFLOP/s, the better of just before and just after this configuration */
    size_t params_floats;
    double param_mib, act_mib, hwm_mib, rss0_mib; /* rss0: RSS when the configuration started */
    Config cfg;
} Row;

static double minimum(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

/* One trainer step, timed in two parts: the data, and everything else (also in CPU time). */
static void train_step(Model *m, const AdamWConfig *adam, long step, double *t_data, double *t_compute, double *t_cpu,
                       float *loss) {
    int B = m->cfg.train.batch_size;
    double t0 = time_now();
    dataset_fill_batch(m->ds, &m->batch, (uint64_t)(step - 1) * (uint64_t)B, B);
    double t1 = time_now(), c1 = bench_cpu_now();
    tensors_zero(&m->params, TBUF_GRAD);
    *loss = m->obj->ops->forward_backward(m->obj, &m->batch, comm_serial());
    grad_clip_global_norm(&m->params, (float)m->cfg.train.grad_clip);
    adamw_step(&m->params, adam, adam->lr, step);
    double t2 = time_now();
    *t_cpu = bench_cpu_now() - c1;
    *t_data = t1 - t0;
    *t_compute = t2 - t1;
}

static int bench_config(const char *dir, const BenchCase *bc, int B, int threads, int fixed_steps, Row *row) {
    char path[1024], assign[64];
    snprintf(path, sizeof path, "%s/%s", dir, bc->spec);
    snprintf(assign, sizeof assign, "train.batch_size=%d", B);
    Config cfg;
    Err err;
    Model m;
    if (spec_load(path, &cfg, &err) || spec_override(&cfg, assign, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return -1;
    }
    memset(row, 0, sizeof *row);
    omp_set_num_threads(threads);
    row->peak = bench_sgemm_peak(PEAK_N, PEAK_REPS, NULL);
    proc_reset_hwm();
    row->rss0_mib = proc_status_kb("VmRSS:") / 1024.0;
    if (model_build(&m, &cfg, &err)) {
        fprintf(stderr, "bench_train: %s: %s\n", path, err.msg);
        return -1;
    }
    AdamWConfig adam = {.lr = (float)cfg.train.lr, .beta1 = (float)cfg.train.beta1, .beta2 = (float)cfg.train.beta2,
                        .eps = (float)cfg.train.eps, .weight_decay = (float)cfg.train.weight_decay};
    double td, tc, tcpu, data[MAX_STEPS], compute[MAX_STEPS], total[MAX_STEPS], cpu[MAX_STEPS];
    float loss = 0.0f;
    long step = 0;
    for (int i = 0; i < WARMUP_STEPS; i++) train_step(&m, &adam, ++step, &td, &tc, &tcpu, &loss);
    /* the last warm-up step sizes the timed run: enough steps for STEP_BUDGET_S */
    int n = (int)ceil(STEP_BUDGET_S / (td + tc));
    n = n < MIN_STEPS ? MIN_STEPS : n > MAX_STEPS ? MAX_STEPS : n;
    if (fixed_steps) n = fixed_steps;
    for (int i = 0; i < n; i++) {
        train_step(&m, &adam, ++step, &data[i], &compute[i], &cpu[i], &loss);
        total[i] = data[i] + compute[i];
    }
    row->hwm_mib = proc_status_kb("VmHWM:") / 1024.0;

    snprintf(row->label, sizeof row->label, "%s", bc->label);
    row->cfg = cfg;
    row->B = B;
    row->threads = threads;
    row->steps = n;
    row->V = dataset_vocab_size(m.ds);
    row->stages = stages_built(&cfg);
    row->ms_step = 1e3 * minimum(total, n);
    row->ms_data = 1e3 * minimum(data, n);
    row->ms_compute = 1e3 * minimum(compute, n);
    row->ms_cpu = 1e3 * minimum(cpu, n);
    row->step_gflop = 3.0 * forward_flops(&cfg, B, row->V) * 1e-9;
    row->loss = loss;
    row->params_floats = m.params.total;
    row->param_mib = (double)m.params.total * m.params.n_bufs * sizeof(float) / 1048576.0;
    row->act_mib = (double)m.acts.total * m.acts.n_bufs * sizeof(float) / 1048576.0;
    model_free(&m);
    malloc_trim(0); /* hand the arenas back, so the next configuration's VmHWM starts low */
    double after = bench_sgemm_peak(PEAK_N, PEAK_REPS, NULL);
    if (after > row->peak) row->peak = after;
    return 0;
}

/* ---------- output ---------- */

static double row_gflops(const Row *r) { return r->step_gflop / (r->ms_compute * 1e-3); }

static void print_row(const Row *r) {
    double img_s = r->B / (r->ms_step * 1e-3), img_s_nodata = r->B / (r->ms_compute * 1e-3);
    double share = r->ms_data / r->ms_step;
    char verdict[24] = "";
    if (r->B == 256) snprintf(verdict, sizeof verdict, " %s", share < DATA_BUDGET ? "PASS" : "FAIL");
    printf("%-23s %4d %2d %2d %7.1f %6.0f %6.0f %5.1f%%%-5s %5.1f %6.1f %6.1f %5.1f%% %7zu %6.1f %6.1f %5.0f %5.0f %s%.3f\n",
           r->label, r->B, r->threads, r->steps, r->ms_step, img_s, img_s_nodata, 100.0 * share, verdict, r->step_gflop,
           row_gflops(r), r->peak, 100.0 * row_gflops(r) / r->peak, r->params_floats, r->param_mib, r->act_mib,
           r->rss0_mib, r->hwm_mib, isfinite(r->loss) ? "" : "NON-FINITE ", r->loss);
}

static void write_tsv(const char *path, const Row *rows, int n, double best_peak) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_train: cannot write %s\n", path);
        return;
    }
    fprintf(f, "label\tobjective\ttext\tB\tthreads\tsteps\tR\twidths\tconvs_per_stage\tstages\tT\tC\tlayers\theads\t"
               "D\tV\tP\thead\tms_step\tms_data\tms_compute\tms_cpu\timg_s\timg_s_nodata\tdata_share\tstep_gflop\t"
               "gflops\tpeak_gflops\tpeak_frac\tbest_peak_gflops\tparams\tparam_mib\tact_mib\trss0_mib\thwm_mib\n");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        const Config *c = &r->cfg;
        char widths[96] = "";
        for (int k = 0; k < c->model.image.n_widths; k++)
            snprintf(widths + strlen(widths), sizeof widths - strlen(widths), "%s%d", k ? "," : "",
                     c->model.image.widths[k]);
        fprintf(f, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t", r->label,
                c->objective.kind, c->model.text.kind, r->B, r->threads, r->steps, c->data.image_size, widths,
                c->model.image.convs_per_stage, r->stages, c->data.context, c->model.text.width, c->model.text.layers,
                c->model.text.heads, c->model.embed_dim, r->V, c->objective.prefix_tokens, c->model.head.kind);
        fprintf(f, "%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.4f\t%.4f\t%.2f\t%.2f\t%.4f\t%.2f\t%zu\t%.2f\t%.2f\t%.1f\t%.1f\n",
                r->ms_step, r->ms_data, r->ms_compute, r->ms_cpu, r->B / (r->ms_step * 1e-3), r->B / (r->ms_compute * 1e-3),
                r->ms_data / r->ms_step, r->step_gflop, row_gflops(r), r->peak, row_gflops(r) / r->peak, best_peak,
                r->params_floats, r->param_mib, r->act_mib, r->rss0_mib, r->hwm_mib);
    }
    fclose(f);
}

int main(int argc, char **argv) {
    cliplab_runtime_init();
    const char *dir = argc > 1 ? argv[1] : "experiments";
    const char *only_label = argc > 2 && argv[2][0] ? argv[2] : NULL;
    int only_b = argc > 3 ? atoi(argv[3]) : 0, only_threads = argc > 4 ? atoi(argv[4]) : 0;
    int fixed_steps = argc > 5 ? atoi(argv[5]) : 0;
    CHECK(fixed_steps >= 0 && fixed_steps <= MAX_STEPS, "STEPS %d: 0 (timed) .. %d", fixed_steps, MAX_STEPS);
    double start = time_now();
    printf("bench_train: trainer steps of the %s/ specs on 1 and 2 threads (progress on stderr)\n", dir);
    fflush(stdout);
    Row rows[N_CASES * 3 * N_THREADS];
    int n_rows = 0, failed = 0;
    for (int c = 0; c < N_CASES; c++)
        for (int k = 0; k < CASES[c].n_batches; k++)
            for (int t = 0; t < N_THREADS; t++) {
                int B = CASES[c].batches[k], th = THREADS[t];
                if ((only_label && strcmp(only_label, CASES[c].label)) || (only_b && only_b != B) ||
                    (only_threads && only_threads != th))
                    continue;
                double t0 = time_now();
                if (bench_config(dir, &CASES[c], B, th, fixed_steps, &rows[n_rows])) {
                    failed = 1;
                    continue;
                }
                fprintf(stderr, "bench_train: %s B=%d threads=%d: %d steps, %.1f s\n", CASES[c].label, B, th,
                        rows[n_rows].steps, time_now() - t0);
                n_rows++;
            }
    double best_peak = 0.0, low_peak = 1e30;
    for (int i = 0; i < n_rows; i++) {
        best_peak = rows[i].peak > best_peak ? rows[i].peak : best_peak;
        low_peak = rows[i].peak < low_peak ? rows[i].peak : low_peak;
    }

    printf("columns: ms/step, img/s: best of n timed steps; img/s-nd: without dataset_fill_batch; data%%: fill\n"
           "time / step time (PASS < %.0f%% at B = 256, information only); GF/st: 3 x forward FLOPs of convs and\n"
           "linears; GF/s: over the step without data; peak: sgemm %d^3 GFLOP/s (best of %d, just before and after\n"
           "the row); parMiB: params x 4 buffers; actMiB: activations x 2 buffers; RSS0, HWM: MiB at the row's\n"
           "start, and VmHWM during it\n",
           100.0 * DATA_BUDGET, PEAK_N, PEAK_REPS);
    printf("%-23s %4s %2s %2s %7s %6s %6s %11s %5s %6s %6s %6s %7s %6s %6s %5s %5s %s\n", "config", "B", "th", "n", "ms/step",
           "img/s", "img/nd", "data%", "GF/st", "GF/s", "peak", "%peak", "params", "parMiB", "actMiB", "RSS0", "HWM",
           "loss");
    for (int i = 0; i < n_rows; i++) print_row(&rows[i]);
    if (n_rows)
        printf("sgemm peak over the rows: %.1f .. %.1f GFLOP/s (a wide range means the machine was busy; %%peak is "
               "against each row's own)\n", low_peak, best_peak);

    char tsv[1100];
    const char *slash = strrchr(argv[0], '/');
    snprintf(tsv, sizeof tsv, "%.*s%s", slash ? (int)(slash - argv[0] + 1) : 0, argv[0], "train.tsv");
    write_tsv(tsv, rows, n_rows, best_peak);
    printf("wrote %s; bench_train total %.1f s\n", tsv, time_now() - start);
    return failed;
}
