/* fuzz_idx.c — libFuzzer target: the Fashion-MNIST IDX loader, through dataset_open.
 *
 * Input: one control byte, then the bytes of one of the four files (the other three are small
 * valid files written at start-up). Control byte: bits 0-1 pick the file (train images, train
 * labels, t10k images, t10k labels); bit 2 gzips the bytes first (else they are written as they
 * are: gzread passes plain files through, and gzip-level corruption comes in raw); bits 3-4 pick
 * the image size (16, 28, 32, 64: area-resampled, exact, padded).
 * Oracles: sanitizers; nothing printed; an error is one line naming a file of the scratch folder;
 * an accepted dataset samples a batch, its eval pairs and its zero-shot task.
 */
#include <stdbool.h>
#include <zlib.h>

#include "data/data.h"
#include "fuzz_util.h"

#define VALID_ITEMS 8
#define SIDE 28

static const char *const FILES[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
static const int SIZES[4] = {16, 28, 32, 64};

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile f = gzopen(path, "wb");
    if (!f || (n && gzwrite(f, data, (unsigned)n) != (int)n) || gzclose(f) != Z_OK) fuzz_fail("cannot write %s", path);
}

/* A valid file of VALID_ITEMS items: images with a per-item pattern, labels 0..7. */
static void write_valid(int which) {
    bool images = which % 2 == 0;
    size_t header = images ? 16 : 8, item = images ? SIDE * SIDE : 1, n = header + VALID_ITEMS * item;
    uint8_t *b = calloc(n, 1);
    put32(b, images ? 0x803 : 0x801);
    put32(b + 4, VALID_ITEMS);
    if (images) put32(b + 8, SIDE), put32(b + 12, SIDE);
    for (size_t i = 0; i < VALID_ITEMS * item; i++) b[header + i] = (uint8_t)(images ? (i * 7 + i / item * 31) : i % 10);
    char rel[128];
    snprintf(rel, sizeof rel, "idx/%s", FILES[which]);
    write_gz(fuzz_path(rel), b, n);
    free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init(false);
    fuzz_mkdir("idx");
    for (int i = 0; i < 4; i++) write_valid(i);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static int replaced = -1; /* the file the previous input overwrote */
    if (replaced >= 0) write_valid(replaced);
    int which = replaced = data[0] & 3;
    char rel[128];
    snprintf(rel, sizeof rel, "idx/%s", FILES[which]);
    if (data[0] & 4) write_gz(fuzz_path(rel), data + 1, size - 1);
    else fuzz_write(fuzz_path(rel), data + 1, size - 1);

    DataConfig cfg;
    data_config_default(&cfg);
    snprintf(cfg.dataset, sizeof cfg.dataset, "fashion-mnist");
    snprintf(cfg.fmnist_dir, sizeof cfg.fmnist_dir, "%s", fuzz_path("idx"));
    cfg.image_size = SIZES[(data[0] >> 3) & 3];
    cfg.eval_images = 16;
    Err err;
    fuzz_capture_begin();
    Dataset *ds = dataset_open(&cfg, &err);
    fuzz_check_silent(fuzz_capture_end(), "dataset_open");
    if (!ds) {
        const char *const prefixes[] = {fuzz_dir, NULL};
        fuzz_check_error(&err, prefixes);
        return 0;
    }
    Batch b;
    batch_alloc(&b, ds, 4);
    dataset_fill_batch(ds, &b, 0, 4);
    dataset_fill_batch(ds, &b, (uint64_t)dataset_train_size(ds) * 3 + 1, 4);
    dataset_eval_pairs(ds, &b, 4, 0);
    int n_tasks;
    const ZeroShotTask *t = dataset_zeroshot_tasks(ds, &n_tasks);
    for (int k = 0; k < n_tasks; k++)
        for (int i = 0; i < t[k].n_images; i++)
            if (t[k].labels[i] < 0 || t[k].labels[i] >= t[k].n_classes) fuzz_fail("task %s: label %d out of range", t[k].name, t[k].labels[i]);
    batch_free(&b);
    dataset_free(ds);
    return 0;
}
