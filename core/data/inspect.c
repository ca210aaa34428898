/* inspect.c — looking at a dataset (what `cliplab data preview|stats` print; the arguments are
 * parsed in cli/data_cli.c).
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

#define WRAP_CHARS 30 /* caption characters per label line at 9 pt in a 210 px cell */
#define WRAP_LINES 6
#define LINE_PX 14

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

int data_preview(Dataset *ds, int n, const char *out_path) {
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

int data_stats(Dataset *ds, int n) {
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
