/* bench_data.c — samples/s of the batch loader (render or decode, caption, tokenize, bag of
 * words) at B = 256, for shapes and fashion-mnist, on all threads and on one; plus CPU time per
 * sample, which stays meaningful when the machine is busy. */
#include <omp.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include "common/timer.h"
#include "data/data.h"

#define B 256

static void bench(const char *dataset, int threads) {
    DataConfig cfg;
    data_config_default(&cfg);
    strcpy(cfg.dataset, dataset);
    Err err;
    Dataset *ds = dataset_open(&cfg, &err);
    if (!ds) {
        fprintf(stderr, "bench_data: %s\n", err.msg);
        return;
    }
    Batch b;
    batch_alloc(&b, ds, B);
    omp_set_num_threads(threads);
    dataset_fill_batch(ds, &b, 0, B); /* warm-up */
    int batches = 0;
    clock_t c0 = clock();
    double t0 = time_now(), t;
    do {
        dataset_fill_batch(ds, &b, (uint64_t)(batches + 1) * B, B);
        batches++;
        t = time_now() - t0;
    } while (t < 1.0);
    /* CPU time per sample as well: wall-clock rates drop when other jobs share the cores */
    double cpu_us = 1e6 * (double)(clock() - c0) / CLOCKS_PER_SEC / (batches * (double)B);
    printf("data %-13s R %d T %d B %d threads %d: %8.0f samples/s (%.2f ms per batch, %.1f us CPU per sample)\n", dataset,
           cfg.image_size, cfg.context, B, threads, batches * (double)B / t, 1e3 * t / batches, cpu_us);
    batch_free(&b);
    dataset_free(ds);
}

int main(void) {
    int threads = omp_get_max_threads();
    bench("shapes", threads);
    bench("shapes", 1);
    bench("fashion-mnist", threads);
    bench("fashion-mnist", 1);
    return 0;
}
