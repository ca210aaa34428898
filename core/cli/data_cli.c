/* data_cli.c — `cliplab data preview|stats [options]`: look at a dataset (the work is in
 * data/inspect.c). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/check.h"
#include "data/data.h"

#define PREVIEW_MAX 400      /* samples on one contact sheet */
#define STATS_MAX 10000000L  /* samples read by stats */

/* The usage text, with the dataset names read from the registry. */
static void data_usage(char *out, size_t cap) {
    char names[128];
    names_join(names, sizeof names, dataset_name);
    snprintf(out, cap,
             "usage: cliplab data preview [--dataset NAME] [--n 64] --out FILE.png [--seed S]\n"
             "                            [--caption-noise X] [--image-size R] [--fmnist-dir DIR]\n"
             "       cliplab data stats   [--dataset NAME] [--n 10000] [same options]\n"
             "NAME: one of %s. preview draws a contact sheet of training samples and their captions;\n"
             "stats prints the vocabulary, caption lengths and class balance.\n", names);
}

int data_main(int argc, char **argv) {
    char usage[1024];
    data_usage(usage, sizeof usage);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc < 2 || (strcmp(argv[1], "preview") && strcmp(argv[1], "stats"))) {
        fputs(usage, stderr);
        return 1;
    }
    int is_preview = !strcmp(argv[1], "preview");
    DataConfig cfg;
    data_config_default(&cfg);
    long n = is_preview ? 64 : 10000, seed = (long)cfg.seed, image_size = cfg.image_size;
    double noise = cfg.caption_noise;
    const char *out = NULL, *dataset = NULL, *fmnist_dir = NULL;
    const CliOpt opts[] = {
        CLI_OPT_STRING("--dataset", &dataset),
        CLI_OPT_INT("--n", &n, 1, is_preview ? PREVIEW_MAX : STATS_MAX),
        CLI_OPT_STRING("--out", &out),
        CLI_OPT_INT("--seed", &seed, 0, 2147483647.0),
        CLI_OPT_INT("--image-size", &image_size, 16, 64),
        CLI_OPT_NUMBER("--caption-noise", &noise, 0, 1),
        CLI_OPT_STRING("--fmnist-dir", &fmnist_dir),
    };
    const CliSpec spec = {"data", usage, opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
    int n_pos, rc = cli_parse(&spec, argc - 1, argv + 1, NULL, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (is_preview && !out) {
        fprintf(stderr, "cliplab data preview: --out FILE.png is required\n");
        return 1;
    }
    if (dataset) snprintf(cfg.dataset, sizeof cfg.dataset, "%s", dataset);
    if (fmnist_dir) snprintf(cfg.fmnist_dir, sizeof cfg.fmnist_dir, "%s", fmnist_dir);
    cfg.seed = (uint64_t)seed;
    cfg.image_size = (int)image_size;
    cfg.caption_noise = (float)noise;
    Err err;
    Dataset *ds = dataset_open(&cfg, &err);
    if (!ds) {
        fprintf(stderr, "cliplab data: %s\n", err.msg);
        return 1;
    }
    rc = is_preview ? data_preview(ds, (int)n, out) : data_stats(ds, (int)n);
    dataset_free(ds);
    return rc;
}
