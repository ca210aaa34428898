/* data_cli.c — `cliplab data preview|stats`: look at a dataset.
 *
 * preview: a contact sheet of n training samples with their captions. The images are composed
 * here into one raw RGB sheet (nearest-neighbour upscaled); gnuplot (pngcairo) draws it and
 * sets the captions as labels, so the PNG needs nothing beyond our stack.
 * stats: vocabulary size, caption length distribution, class balance, hold-out list.
 * Deliberately left out: interactive viewing, SVG output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check.h"
#include "data/dataset_impl.h"

#define PREVIEW_MAX 400
#define WRAP_CHARS 30 /* caption characters per label line at 9 pt in a 210 px cell */
#define WRAP_LINES 6
#define LINE_PX 14

static int usage(void) {
    char names[128];
    names_join(names, sizeof names, dataset_name);
    fprintf(stderr, "usage: cliplab data preview [--dataset NAME] [--n 64] --out FILE.png [--seed S]\n"
                    "                            [--caption-noise X] [--image-size R] [--fmnist-dir DIR]\n"
                    "       cliplab data stats   [--dataset NAME] [--n 10000] [same options]\n"
                    "NAME: one of %s\n", names);
    return 1;
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "cliplab data: %s '%s' is not an integer in [%ld, %ld]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Splits caption into at most WRAP_LINES lines of at most WRAP_CHARS at spaces; returns count. */
static int wrap_caption(const char *caption, char lines[WRAP_LINES][WRAP_CHARS + 8]) {
    int n = 0;
    const char *p = caption;
    while (*p && n < WRAP_LINES) {
        int len = (int)strlen(p), cut = len;
        if (len > WRAP_CHARS) {
            cut = WRAP_CHARS;
            while (cut > 0 && p[cut] != ' ') cut--;
            if (cut == 0) cut = WRAP_CHARS;
        }
        snprintf(lines[n], WRAP_CHARS + 8, "%.*s%s", cut, p, (n == WRAP_LINES - 1 && cut < len) ? "..." : "");
        n++;
        p += cut;
        while (*p == ' ') p++;
    }
    return n;
}

/* gnuplot strings are double-quoted: drop the characters that would end or escape them. */
static void put_label(FILE *g, const char *text, int x, int y, const char *font) {
    fputs("set label \"", g);
    for (const char *c = text; *c; c++)
        if (*c != '"' && *c != '\\') fputc(*c, g);
    fprintf(g, "\" at %d,%d center front noenhanced font \"%s\"\n", x, y, font);
}

static int preview(Dataset *ds, int n, const char *out_path) {
    /* Checked here: gnuplot, when it cannot open its output, writes the PNG to its stdout. */
    FILE *probe = fopen(out_path, "wb");
    if (!probe) {
        fprintf(stderr, "cliplab data: cannot write '%s' (%s)\n", out_path, strerror(errno));
        return 1;
    }
    fclose(probe);
    const DataConfig *cfg = dataset_config(ds);
    int R = cfg->image_size, scale = R >= 128 ? 1 : 128 / R, tile = R * scale;
    int cols = 1;
    while (cols * cols < n) cols++;
    int rows = (n + cols - 1) / cols, cell_w = 210, cell_h = tile + 12 + WRAP_LINES * LINE_PX, head = 40;
    int W = cols * cell_w, H = head + rows * cell_h;
    uint8_t *sheet = mallocCheck((size_t)W * H * 3);
    memset(sheet, 255, (size_t)W * H * 3);
    float *img = mallocCheck(sizeof *img * (size_t)R * R * 3);
    char (*captions)[CAPTION_MAX] = mallocCheck(sizeof *captions * (size_t)n);
    for (int i = 0; i < n; i++) {
        dataset_sample_raw(ds, (uint64_t)i, img, captions[i], CAPTION_MAX);
        int x0 = (i % cols) * cell_w + (cell_w - tile) / 2, y0 = head + (i / cols) * cell_h + 4;
        for (int y = 0; y < tile; y++)
            for (int x = 0; x < tile; x++)
                for (int ch = 0; ch < 3; ch++)
                    sheet[((size_t)(y0 + y) * W + x0 + x) * 3 + ch] = (uint8_t)(255.0f * img[((y / scale) * R + x / scale) * 3 + ch] + 0.5f);
    }
    free(img);
    char raw[] = "/tmp/cliplab-preview-XXXXXX";
    int fd = mkstemp(raw);
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    FILE *f = fdopen(fd, "wb");
    CHECK(f && fwrite(sheet, 1, (size_t)W * H * 3, f) == (size_t)W * H * 3 && fclose(f) == 0, "writing %s", raw);
    free(sheet);

    FILE *g = popen("gnuplot >/dev/null", "w");
    CHECK(g, "popen gnuplot: %s", strerror(errno));
    fprintf(g, "set terminal pngcairo size %d,%d font \"Sans,9\"\nset output \"%s\"\n", W, H, out_path);
    fprintf(g, "set lmargin at screen 0\nset rmargin at screen 1\nset tmargin at screen 1\nset bmargin at screen 0\n"
               "unset border\nunset tics\nunset key\nunset colorbox\n");
    fprintf(g, "set xrange [-0.5:%d.5]\nset yrange [-0.5:%d.5]\n", W - 1, H - 1);
    char title[256];
    snprintf(title, sizeof title, "%s, R=%d, seed %llu, caption_noise %.2f: training samples 0..%d", cfg->dataset, R,
             (unsigned long long)cfg->seed, (double)cfg->caption_noise, n - 1);
    put_label(g, title, W / 2, H - 20, "Sans,13");
    for (int i = 0; i < n; i++) {
        char lines[WRAP_LINES][WRAP_CHARS + 8];
        int nl = wrap_caption(captions[i], lines);
        int xc = (i % cols) * cell_w + cell_w / 2, ytop = head + (i / cols) * cell_h + 4 + tile + 10;
        for (int l = 0; l < nl; l++) put_label(g, lines[l], xc, H - 1 - (ytop + l * LINE_PX), "Sans,9");
    }
    fprintf(g, "plot \"%s\" binary array=(%d,%d) format=\"%%uchar\" flipy with rgbimage\n", raw, W, H);
    int status = pclose(g);
    free(captions);
    unlink(raw);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "cliplab data: gnuplot failed (status %d) writing %s; is gnuplot (pngcairo) installed and the folder writable?\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : status, out_path);
        return 1;
    }
    printf("wrote %s (%d samples)\n", out_path, n);
    return 0;
}

static int stats(Dataset *ds, int n) {
    const DataConfig *cfg = dataset_config(ds);
    const Tokenizer *tok = dataset_tokenizer(ds);
    int V = tokenizer_vocab_size(tok), n_content = 0, T = cfg->context;
    for (int id = 0; id < V; id++) n_content += tokenizer_is_content(tok, id);
    printf("dataset %s, R %d, caption_noise %.2f, context T %d, seed %llu\n", cfg->dataset, cfg->image_size,
           (double)cfg->caption_noise, T, (unsigned long long)cfg->seed);
    printf("vocabulary: %d tokens (%d specials, %d content words, shared by all datasets)\n", V, TOKENIZER_N_SPECIAL, n_content);
    long *hist = callocCheck((size_t)T + 1, sizeof *hist), truncated = 0, words_sum = 0;
    float *img = mallocCheck(sizeof *img * (size_t)cfg->image_size * cfg->image_size * 3);
    int *tokens = mallocCheck(sizeof *tokens * (size_t)T);
    char caption[CAPTION_MAX];
    for (int i = 0; i < n; i++) {
        dataset_sample_raw(ds, (uint64_t)i, img, caption, CAPTION_MAX);
        int words = tokenizer_count_words(caption);
        hist[tokenizer_encode(tok, caption, tokens, T)]++;
        truncated += words > T - 2;
        words_sum += words;
    }
    printf("caption length over %d samples: mean %.2f words; %.1f%% truncated to T; tokens incl. BOS/EOS:\n", n,
           (double)words_sum / n, 100.0 * (double)truncated / n);
    for (int len = 0; len <= T; len++)
        if (hist[len]) printf("  %2d tokens: %6.2f%%\n", len, 100.0 * (double)hist[len] / n);
    free(hist);
    free(img);
    free(tokens);
    ds->ops->stats(ds, stdout, n);
    return 0;
}

int data_main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "preview") && strcmp(argv[1], "stats"))) return usage();
    int is_preview = !strcmp(argv[1], "preview");
    DataConfig cfg;
    data_config_default(&cfg);
    long n = is_preview ? 64 : 10000;
    const char *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc || strncmp(opt, "--", 2)) {
            fprintf(stderr, "cliplab data: %s '%s'\n", strncmp(opt, "--", 2) ? "unexpected argument" : "missing value after", opt);
            return usage();
        }
        const char *val = argv[++i];
        long v;
        if (!strcmp(opt, "--dataset")) {
            snprintf(cfg.dataset, sizeof cfg.dataset, "%s", val);
        } else if (!strcmp(opt, "--n")) {
            if (parse_long(opt, val, 1, is_preview ? PREVIEW_MAX : 10000000, &n)) return 1;
        } else if (!strcmp(opt, "--out")) {
            out = val;
        } else if (!strcmp(opt, "--seed")) {
            if (parse_long(opt, val, 0, 2147483647L, &v)) return 1;
            cfg.seed = (uint64_t)v;
        } else if (!strcmp(opt, "--image-size")) {
            if (parse_long(opt, val, 16, 64, &v)) return 1;
            cfg.image_size = (int)v;
        } else if (!strcmp(opt, "--caption-noise")) {
            char *end;
            cfg.caption_noise = strtof(val, &end);
            if (end == val || *end) {
                fprintf(stderr, "cliplab data: --caption-noise '%s' is not a number\n", val);
                return 1;
            }
        } else if (!strcmp(opt, "--fmnist-dir")) {
            snprintf(cfg.fmnist_dir, sizeof cfg.fmnist_dir, "%s", val);
        } else {
            fprintf(stderr, "cliplab data: unknown option '%s'\n", opt);
            return usage();
        }
    }
    if (is_preview && !out) {
        fprintf(stderr, "cliplab data preview: --out FILE.png is required\n");
        return 1;
    }
    Err err;
    Dataset *ds = dataset_open(&cfg, &err);
    if (!ds) {
        fprintf(stderr, "cliplab data: %s\n", err.msg);
        return 1;
    }
    int rc = is_preview ? preview(ds, (int)n, out) : stats(ds, (int)n);
    dataset_free(ds);
    return rc;
}
