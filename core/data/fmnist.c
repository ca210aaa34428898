/* fmnist.c — Fashion-MNIST from Debian's gzipped IDX files, with captions from class names.
 *
 * Files are read whole with zlib (gzread also passes plain, uncompressed IDX through) and
 * validated strictly: magic (including byte-swapped and still-gzipped files), element type,
 * number of dimensions, 28x28 images, truncation and trailing bytes, labels in 0..9, and image /
 * label counts that agree. Every failure is one line naming the file.
 * Training stream: sample i is image perm_e(i mod N) of epoch e = i / N, with perm_e a keyed
 * Feistel permutation, so the stream is deterministic in (seed, index) without stored state.
 * Images: 28x28 grey, zero-padded (R >= 28) or area-resampled (R < 28) to R x R, grey
 * replicated to 3 channels. The test split is used only for evaluation.
 * Deliberately left out: augmentation, a validation split (the probes make their own).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/check.h"
#include "data/dataset_impl.h"

#define SIDE 28
#define N_CLASSES 10

typedef struct {
    uint8_t *file; /* decompressed file */
    const uint8_t *data;
    uint32_t n;
} IdxFile;

typedef struct {
    IdxFile train_images, train_labels, test_images, test_labels;
} Fmnist;

static const char *const CLASS_NAMES[N_CLASSES] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                    "sandal", "shirt", "sneaker", "bag", "ankle boot"};
static SynList CLASS_SYN[N_CLASSES] = {
    {"t-shirt", "tee", "top", "tshirt"},       {"trouser", "pants", "jeans", "slacks"},
    {"pullover", "sweater", "jumper"},         {"dress", "gown", "frock", "sundress"},
    {"coat", "jacket", "overcoat", "parka"},   {"sandal", "flip-flop", "slipper"},
    {"shirt", "blouse", "button-down shirt"},  {"sneaker", "trainer", "running shoe", "kicks"},
    {"bag", "handbag", "purse", "tote bag"},   {"ankle boot", "boot", "bootie", "chelsea boot"},
};
/* Template 0 is the canonical one. */
static const char *const TEMPLATES[] = {
    "a photo of a {}.", "a grayscale photo of a {}.", "a monochrome picture of a {}.", "a product photo of a {}.",
    "{} for sale.", "a low resolution photo of a {}.", "my new {}!", "buy this {} now.", "a picture of a {}.",
    "a {} on a dark background.", "cheap {}, free shipping.", "{}.", "a {} from the catalogue.", "an image of a {}.",
    "the {} i bought last week.", "vintage {}.", "{} in my wardrobe.", "a used {}, good condition.", "womens {}.",
    "mens {}.", "fashion item: {}.", "new season {}.", "a thumbnail of a {}.", "look at this {}!",
    "a pixelated photo of a {}.", "{} lol", "a cropped photo of a {}.", "a centered photo of a {}.",
    "{} on sale today.", "outfit inspiration: a {}.",
};
static const char *const ADJECTIVES[] = {"nice", "stylish", "casual", "cheap", "elegant", "classic", "comfy", "cool"};
static const char *const PREFIXES[] = {"wow", "omg", "new in:", "today:", "just arrived:", "sale:"};
static const char *const SUFFIXES[] = {"lol", "#ootd", "#fashion", "free shipping", "best price", "size m", "hd", "love it"};
static const char *const PROMPTS[] = {"a photo of a {}.", "a grayscale photo of a {}.", "a low resolution photo of a {}.",
                                      "a product photo of a {}.", "a picture of a {}."};

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Whole decompressed file into *buf (malloc'd), *len bytes. */
static int read_gz(const char *path, uint8_t **buf, size_t *len, Err *err) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open (%s)", path, errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = mallocCheck(cap);
    for (;;) {
        if (n == cap) b = reallocCheck(b, cap *= 2);
        int got = gzread(f, b + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
        if (got < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            err_set(err, "%s: corrupt gzip stream (%s)", path, code == Z_ERRNO ? strerror(errno) : msg);
            gzclose(f);
            free(b);
            return -1;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    /* gzread hands out a stream cut before its trailer (CRC-32 and length) as if it were whole,
     * noting only Z_BUF_ERROR; without the trailer nothing vouches for the data. */
    int code;
    gzerror(f, &code);
    if (gzclose(f) == Z_BUF_ERROR || code == Z_BUF_ERROR) {
        free(b);
        return err_set(err, "%s: truncated gzip stream: it ends before its CRC-32 and length trailer", path);
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Reads and validates one IDX file of unsigned bytes with `ndims` dimensions (3: images of
 * 28x28, 1: labels). */
static int idx_load(IdxFile *out, const char *path, int ndims, Err *err) {
    memset(out, 0, sizeof *out);
    uint8_t *b = NULL;
    size_t len = 0;
    if (read_gz(path, &b, &len, err)) return -1;
    uint32_t expect = 0x0800u | (uint32_t)ndims;
    size_t header = 4 + 4 * (size_t)ndims;
    int bad = 0;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        bad = err_set(err, "%s: still gzipped after decompression (compressed twice?)", path);
    } else if (len < 4) {
        bad = err_set(err, "%s: truncated: %zu bytes, no IDX header", path, len);
    } else if (be32(b) != expect) {
        uint32_t magic = be32(b), swapped = __builtin_bswap32(magic);
        if (swapped == expect)
            bad = err_set(err, "%s: byte-swapped IDX magic 0x%08x (expected 0x%08x; written little-endian?)", path, magic, expect);
        else if (b[0] || b[1])
            bad = err_set(err, "%s: bad IDX magic 0x%08x (expected 0x%08x)", path, magic, expect);
        else if (b[2] != 0x08)
            bad = err_set(err, "%s: IDX element type 0x%02x is not unsigned byte (0x08)", path, b[2]);
        else
            bad = err_set(err, "%s: %d dimensions, expected %d", path, b[3], ndims);
    } else if (len < header) {
        bad = err_set(err, "%s: truncated: %zu bytes, IDX header needs %zu", path, len, header);
    }
    if (bad) {
        free(b);
        return -1;
    }
    uint32_t n = be32(b + 4);
    size_t item = 1;
    if (ndims == 3) {
        uint32_t h = be32(b + 8), w = be32(b + 12);
        if (h != SIDE || w != SIDE) bad = err_set(err, "%s: images are %ux%u, expected %dx%d", path, h, w, SIDE, SIDE);
        item = (size_t)SIDE * SIDE;
    }
    size_t need = (size_t)n * item;
    if (!bad && n == 0) bad = err_set(err, "%s: no items", path);
    if (!bad && len - header < need)
        bad = err_set(err, "%s: truncated: %zu data bytes, expected %zu (%u items)", path, len - header, need, n);
    if (!bad && len - header > need)
        bad = err_set(err, "%s: %zu bytes of trailing data after %u items", path, len - header - need, n);
    for (uint32_t i = 0; !bad && ndims == 1 && i < n; i++)
        if (b[header + i] >= N_CLASSES) bad = err_set(err, "%s: label %u of item %u out of range 0..%d", path, b[header + i], i, N_CLASSES - 1);
    if (bad) {
        free(b);
        return -1;
    }
    out->file = b;
    out->data = b + header;
    out->n = n;
    return 0;
}

static int load_split(IdxFile *images, IdxFile *labels, const char *dir, const char *split, Err *err) {
    char ipath[512], lpath[512];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    if (idx_load(images, ipath, 3, err)) return -1;
    if (idx_load(labels, lpath, 1, err)) return -1;
    if (images->n != labels->n) return err_set(err, "%s has %u images but %s has %u labels", ipath, images->n, lpath, labels->n);
    return 0;
}

static void fmnist_close(Dataset *ds) {
    Fmnist *f = ds->impl;
    if (!f) return;
    free(f->train_images.file);
    free(f->train_labels.file);
    free(f->test_images.file);
    free(f->test_labels.file);
    free(f);
    ds->impl = NULL;
}

static int fmnist_open(Dataset *ds, Err *err) {
    /* its evaluation set is the test split; a validation set would have to come out of training */
    if (ds->cfg.validation) return err_set(err, "eval.validation: fashion-mnist has no validation set (shapes only)");
    Fmnist *f = callocCheck(1, sizeof *f);
    ds->impl = f;
    if (load_split(&f->train_images, &f->train_labels, ds->cfg.fmnist_dir, "train", err) ||
        load_split(&f->test_images, &f->test_labels, ds->cfg.fmnist_dir, "t10k", err)) {
        fmnist_close(ds);
        return -1;
    }
    ds->train_size = f->train_images.n;
    ds->eval_pool = f->test_images.n;
    return 0;
}

/* A bijection of [0, n) keyed by `key`: a 4-round Feistel network on the next even power of two,
 * cycle-walking back into range. */
static uint32_t permute(uint64_t key, uint32_t n, uint32_t i) {
    int bits = 2;
    while ((1u << bits) < n) bits += 2;
    int half = bits / 2;
    uint32_t mask = (1u << half) - 1, x = i;
    do {
        uint32_t l = x >> half, r = x & mask;
        for (uint64_t round = 0; round < 4; round++) {
            uint32_t t = r;
            r = l ^ ((uint32_t)rng_hash(key + round, r) & mask);
            l = t;
        }
        x = l << half | r;
    } while (x >= n);
    return x;
}

/* image [R, R, 3] in [0, 1] from one 28x28 grey image. */
static void to_rgb(float *image, const uint8_t *src, int R) {
    const float s = 1.0f / 255.0f;
    if (R >= SIDE) {
        int off = (R - SIDE) / 2;
        memset(image, 0, sizeof *image * (size_t)R * R * 3);
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                float *p = image + ((size_t)(y + off) * R + x + off) * 3;
                p[0] = p[1] = p[2] = s * src[y * SIDE + x];
            }
        return;
    }
    /* area resampling: output pixel (oy, ox) averages the source square it covers */
    float scale = (float)SIDE / (float)R;
    for (int oy = 0; oy < R; oy++)
        for (int ox = 0; ox < R; ox++) {
            float y0 = oy * scale, y1 = y0 + scale, x0 = ox * scale, x1 = x0 + scale, acc = 0.0f;
            for (int iy = (int)y0; iy < SIDE && iy < y1; iy++) {
                float wy = (y1 < iy + 1 ? y1 : iy + 1) - (y0 > iy ? y0 : iy);
                for (int ix = (int)x0; ix < SIDE && ix < x1; ix++) {
                    float wx = (x1 < ix + 1 ? x1 : ix + 1) - (x0 > ix ? x0 : ix);
                    acc += wy * wx * src[iy * SIDE + ix];
                }
            }
            float *p = image + ((size_t)oy * R + ox) * 3;
            p[0] = p[1] = p[2] = s * acc / (scale * scale);
        }
}

static void fmnist_caption(char *out, int cap, int label, float p, Rng *rng) {
    TextBuf b;
    text_init(&b, out, cap);
    if (chance(rng, 0.3f * p)) {
        text_add(&b, PREFIXES[rng_below(rng, N_OF(PREFIXES))]);
        text_add(&b, " ");
    }
    char noun[96];
    TextBuf nb;
    text_init(&nb, noun, sizeof noun);
    if (chance(rng, 0.4f * p)) {
        text_add(&nb, ADJECTIVES[rng_below(rng, N_OF(ADJECTIVES))]);
        text_add(&nb, " ");
    }
    text_add(&nb, syn_pick(CLASS_SYN[label], p, rng));
    text_add_filled(&b, TEMPLATES[chance(rng, p) ? rng_below(rng, N_OF(TEMPLATES)) : 0], noun);
    if (chance(rng, 0.4f * p)) {
        text_add(&b, " ");
        text_add(&b, SUFFIXES[rng_below(rng, N_OF(SUFFIXES))]);
    }
    text_fix_articles(&b);
}

static void fmnist_sample(const Dataset *ds, uint64_t index, float *image, char *caption, int cap) {
    const Fmnist *f = ds->impl;
    uint32_t n = f->train_images.n;
    uint32_t k = permute(rng_hash(ds->cfg.seed, index / n), n, (uint32_t)(index % n));
    to_rgb(image, f->train_images.data + (size_t)k * SIDE * SIDE, ds->cfg.image_size);
    Rng rng;
    rng_init(&rng, rng_hash(ds->cfg.seed ^ CAPTION_SALT, index));
    fmnist_caption(caption, cap, f->train_labels.data[k], ds->cfg.caption_noise, &rng);
}

static void fmnist_eval_sample(const Dataset *ds, uint64_t which, uint64_t k, float *image, char *caption, int cap) {
    const Fmnist *f = ds->impl;
    uint64_t seed = data_eval_seed(&ds->cfg, EVAL_PAIRS_STREAM + which);
    uint32_t i = permute(seed, f->test_images.n, (uint32_t)(k % f->test_images.n));
    to_rgb(image, f->test_images.data + (size_t)i * SIDE * SIDE, ds->cfg.image_size);
    Rng rng;
    rng_init(&rng, rng_hash(seed, k));
    fmnist_caption(caption, cap, f->test_labels.data[i], ds->cfg.caption_noise, &rng);
}

static void fmnist_build_tasks(Dataset *ds) {
    const Fmnist *f = ds->impl;
    int n = ds->cfg.eval_images < (int)f->test_images.n ? ds->cfg.eval_images : (int)f->test_images.n;
    ZeroShotTask *t = data_task_add(ds, "fmnist", n, N_CLASSES, CLASS_NAMES, PROMPTS, N_OF(PROMPTS));
    int R = ds->cfg.image_size;
    size_t stride = (size_t)R * R * 3;
    /* the first n test images: a fixed set, roughly class-balanced (the test split is shuffled) */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < n; k++) {
        to_rgb(t->images + (size_t)k * stride, f->test_images.data + (size_t)k * SIDE * SIDE, R);
        data_normalize_image(ds, t->images + (size_t)k * stride);
        t->labels[k] = f->test_labels.data[k];
    }
}

static void fmnist_stats(const Dataset *ds, FILE *out, int n_samples) {
    (void)n_samples;
    const Fmnist *f = ds->impl;
    const IdxFile *splits[2] = {&f->train_labels, &f->test_labels};
    const char *names[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        long counts[N_CLASSES] = {0};
        for (uint32_t i = 0; i < splits[s]->n; i++) counts[splits[s]->data[i]]++;
        fprintf(out, "%-5s %u images:", names[s], splits[s]->n);
        for (int c = 0; c < N_CLASSES; c++) fprintf(out, " %s %ld%s", CLASS_NAMES[c], counts[c], c + 1 < N_CLASSES ? "," : "\n");
    }
}

static void fmnist_grammar_words(Tokenizer *t) {
    syn_add_words(t, CLASS_SYN, N_CLASSES);
    text_add_words(t, CLASS_NAMES, N_CLASSES, 1);
    text_add_words(t, TEMPLATES, N_OF(TEMPLATES), 0);
    text_add_words(t, ADJECTIVES, N_OF(ADJECTIVES), 0);
    text_add_words(t, PREFIXES, N_OF(PREFIXES), 0);
    text_add_words(t, SUFFIXES, N_OF(SUFFIXES), 0);
    text_add_words(t, PROMPTS, N_OF(PROMPTS), 0);
}

const DatasetOps FMNIST_OPS = {
    .name = "fashion-mnist",
    .open = fmnist_open,
    .close = fmnist_close,
    .sample = fmnist_sample,
    .eval_sample = fmnist_eval_sample,
    .build_tasks = fmnist_build_tasks,
    .stats = fmnist_stats,
    .grammar_words = fmnist_grammar_words,
};
