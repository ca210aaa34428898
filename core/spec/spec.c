/* spec.c — the schema of an experiment and everything derived from it: defaults, strict YAML
 * loading (libyaml document API, nested or dotted keys, `base:` includes), `key=value` overrides,
 * the nearest-key suggestion, YAML dumping, equality and `cliplab help-spec`.
 *
 * Every user-input error is one line "file:line:col: message" (or "command line: message").
 * Deliberately left out: YAML tags (ignored), multi-document files (refused), files over 1 MiB,
 * and checks that need a built model (tap existence, width/heads divisibility).
 */
#include "spec/spec.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "heads/head.h"
#include "losses/losses.h"
#include "objectives/objective.h"
#include "spec/spec_internal.h"
#include "towers/image_cnn.h"
#include "towers/text_tower.h"
#include "optim/optim.h"

#define SPEC_FILE_MAX (1u << 20)
#define SPEC_NAME_CHARS "letters, digits, '.', '_' or '-'"

/* Enum keys read their valid values from the registry that owns the names (datasets, norms, text
 * towers, heads, activations, objectives, losses, temperature modes), so a plug-in added to its
 * registry is accepted, listed by help-spec and named in "valid:" lists with no change here. */

/* A file-system-safe name: it becomes part of results paths. */
static bool valid_name(const char *s) {
    if (!s[0] || s[0] == '.') return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s)) return false;
    return true;
}

static bool valid_image_tap(const char *s) {
    const char *p = "img.stage";
    if (strncmp(s, p, strlen(p))) return false;
    s += strlen(p);
    return s[0] >= '1' && s[0] <= '0' + CONFIG_WIDTHS_MAX && s[1] == 0;
}

/* "colour shape": two lowercase words joined by one space. */
static bool valid_colour_shape(const char *s) {
    int words = 0;
    for (const char *p = s; *p;) {
        const char *start = p;
        while (*p && (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-')) p++;
        if (p == start) return false;
        words++;
        if (*p == ' ') p++;
        else if (*p) return false;
        else break;
    }
    return words == 2;
}

/* Length of the UTF-8 sequence at s and its code point in *cp, or 0 if it is not valid UTF-8
 * (truncated, overlong, a surrogate or above U+10FFFF). */
static int utf8_next(const unsigned char *s, uint32_t *cp) {
    int n = s[0] < 0x80 ? 1 : s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
    uint32_t c = s[0] & (0xffu >> (n > 1 ? n + 1 : 1)); /* the lead byte's payload bits */
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3fu);
    }
    static const uint32_t MIN[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (!n || c < MIN[n] || (c >= 0xd800 && c < 0xe000) || c > 0x10ffff) return 0;
    *cp = c;
    return n;
}

/* Offset of the first byte that is not valid UTF-8, or -1. */
static long utf8_invalid_at(const char *s) {
    uint32_t cp;
    for (const char *p = s; *p;) {
        int n = utf8_next((const unsigned char *)p, &cp);
        if (!n) return p - s;
        p += n;
    }
    return -1;
}

#define FIELD(m) .offset = offsetof(Config, m), .size = sizeof(((Config *)0)->m)
#define LIST(m, n) FIELD(m), .elem_size = sizeof(((Config *)0)->m[0]), .count_offset = offsetof(Config, n)

/* The schema. Keys of one section must stay contiguous (config_to_yaml nests by runs of the same
 * section). To add a key: add its field to config.h and one row here. */
static const SpecKey SCHEMA[] = {
    {"name", SPEC_STRING, FIELD(name), .def = "experiment", .help = "experiment name",
     .valid = valid_name, .format = SPEC_NAME_CHARS},
    {"seed", SPEC_INT, FIELD(seed), .def = "1", .min = 0, .max = INT_MAX,
     .help = "seed of parameter initialization and of the data stream"},

    {"data.dataset", SPEC_ENUM, FIELD(data.dataset), .names = dataset_name,
     .help = "synthetic shapes world or Fashion-MNIST"},
    {"data.image_size", SPEC_INT, FIELD(data.image_size), .def = "32", .min = 16, .max = 64,
     .help = "image side in pixels (shapes)"},
    {"data.caption_noise", SPEC_FLOAT, FIELD(data.caption_noise), .def = "0.5", .min = 0, .max = 1,
     .help = "caption diversity: synonyms, templates, fillers, partial mentions", .id = "noise"},
    {"data.max_objects", SPEC_INT, FIELD(data.max_objects), .def = "3", .min = 1, .max = 3,
     .help = "objects per shapes image, at most"},
    {"data.holdout", SPEC_STRING_LIST, LIST(data.holdout, data.n_holdout),
     .def = "red circle,blue square", .help = "(colour, shape) pairs never seen in training",
     .valid = valid_colour_shape, .format = "\"colour shape\""},
    {"data.fmnist_dir", SPEC_STRING, FIELD(data.fmnist_dir),
     .def = "/usr/share/datasets/fashion-mnist", .help = "folder of the gzipped Fashion-MNIST IDX files"},
    {"data.context", SPEC_INT, FIELD(data.context), .def = "16", .min = 4, .max = 64,
     .help = "tokens per caption, including BOS and EOT"},
    {"data.eval_images", SPEC_INT, FIELD(data.eval_images), .def = "512", .min = 16, .max = 100000,
     .help = "images in each fixed evaluation set"},

    {"model.image.widths", SPEC_INT_LIST, LIST(model.image.widths, model.image.n_widths),
     .def = "32,64,128,256", .min = 1, .max = 4096, .help = "channels of each image tower stage"},
    {"model.image.convs_per_stage", SPEC_INT, FIELD(model.image.convs_per_stage), .def = "1",
     .min = 1, .max = 4, .help = "3x3 convolutions per stage", .id = "convs"},
    {"model.image.residual", SPEC_BOOL, FIELD(model.image.residual), .def = "false",
     .help = "residual connections around each stage's convolutions"},
    {"model.image.norm", SPEC_ENUM, FIELD(model.image.norm), .names = image_tower_norm_name,
     .help = "normalization after each convolution"},
    {"model.image.tap", SPEC_STRING, FIELD(model.image.tap), .def = "img.stage4",
     .help = "image layer the head reads (stage K's pooled features)", .valid = valid_image_tap,
     .format = "img.stageK (K = 1..8)"},
    {"model.text.kind", SPEC_ENUM, FIELD(model.text.kind), .names = text_tower_kind_name,
     .help = "text tower"},
    {"model.text.width", SPEC_INT, FIELD(model.text.width), .def = "128", .min = 8, .max = 4096,
     .help = "text tower width"},
    {"model.text.layers", SPEC_INT, FIELD(model.text.layers), .def = "2", .min = 1, .max = 24,
     .help = "transformer blocks"},
    {"model.text.heads", SPEC_INT, FIELD(model.text.heads), .def = "4", .min = 1, .max = 64,
     .help = "attention heads per block"},
    {"model.text.tap", SPEC_STRING, FIELD(model.text.tap), .def = "",
     .help = "text layer the head reads (txt.blockK; empty = last)"},
    {"model.head.kind", SPEC_ENUM, FIELD(model.head.kind), .names = head_kind_name,
     .help = "projection head on each side"},
    {"model.head.depth", SPEC_INT, FIELD(model.head.depth), .def = "2", .min = 2, .max = 4,
     .help = "mlp head: linear layers (gated: 2)"},
    {"model.head.hidden", SPEC_INT, FIELD(model.head.hidden), .def = "256", .min = 1, .max = 8192,
     .help = "mlp and gated heads: hidden width"},
    {"model.head.activation", SPEC_ENUM, FIELD(model.head.activation),
     .names = head_activation_name, .help = "mlp and gated heads: activation"},
    {"model.embed_dim", SPEC_INT, FIELD(model.embed_dim), .def = "64", .min = 2, .max = 4096,
     .help = "joint embedding dimension"},

    {"objective.kind", SPEC_ENUM, FIELD(objective.kind), .names = objective_kind_name,
     .help = "training objective"},
    {"objective.prefix_tokens", SPEC_INT, FIELD(objective.prefix_tokens), .def = "4", .min = 1,
     .max = 16, .help = "caption: image prefix tokens of the decoder"},

    {"loss.kind", SPEC_ENUM, FIELD(loss.kind), .names = loss_registry_name,
     .help = "contrastive loss"},
    {"loss.one_sided", SPEC_BOOL, FIELD(loss.one_sided), .def = "false",
     .help = "image-to-text direction only"},
    {"loss.temperature", SPEC_ENUM, FIELD(loss.temperature), .names = objective_temperature_name,
     .help = "learn the logit scale or keep it fixed"},
    {"loss.init_temperature", SPEC_FLOAT, FIELD(loss.init_temperature), .def = "0.07", .min = 0,
     .max = 10, .bounds = SPEC_MIN_OPEN, .help = "infonce, dcl, multipos_infonce: initial temperature (logit scale = 1/T)",
     .id = "temp"},
    {"loss.init_logit_scale", SPEC_FLOAT, FIELD(loss.init_logit_scale), .def = "10", .min = 0, .max = 1000,
     .bounds = SPEC_MIN_OPEN, .help = "siglip: initial logit scale exp(t) (paper: 10)", .id = "scale0"},
    {"loss.init_bias", SPEC_FLOAT, FIELD(loss.init_bias), .def = "-10", .min = -100, .max = 100,
     .help = "siglip: initial logit bias b (paper: -10)", .id = "bias0"},
    {"loss.scalar_lr_scale", SPEC_FLOAT, FIELD(loss.scalar_lr_scale), .def = "1.0", .min = 0,
     .max = 1000, .help = "learning-rate multiplier of the loss scalars (logit scale, bias)", .id = "slr"},
    {"loss.group_size", SPEC_INT, FIELD(loss.group_size), .def = "0", .min = 0, .max = 1048576,
     .help = "loss within groups of this many rows of the batch (0 = the whole batch)", .id = "g"},
    {"loss.lambda", SPEC_FLOAT, FIELD(loss.lambda), .def = "1.0", .min = 0, .max = 100,
     .help = "align_uniform: weight of the uniformity term"},
    {"loss.tile", SPEC_INT, FIELD(loss.tile), .def = "0", .min = 0, .max = 1048576,
     .help = "column tile of the tiled loss (0 = automatic)"},

    {"train.images", SPEC_INT64, FIELD(train.images), .def = "200000", .min = 1, .max = 1e12,
     .help = "images processed in training"},
    {"train.batch_size", SPEC_INT, FIELD(train.batch_size), .def = "256", .min = 1, .max = 1048576,
     .help = "global batch size", .id = "bs"},
    {"train.lr", SPEC_FLOAT, FIELD(train.lr), .def = "1e-3", .min = 0, .max = 10,
     .bounds = SPEC_MIN_OPEN, .help = "peak AdamW learning rate"},
    {"train.weight_decay", SPEC_FLOAT, FIELD(train.weight_decay), .def = "0.1", .min = 0, .max = 10,
     .help = "AdamW decoupled weight decay", .id = "wd"},
    {"train.warmup_images", SPEC_INT64, FIELD(train.warmup_images), .def = "10000", .min = 0,
     .max = 1e12, .help = "linear warm-up length, then train.schedule", .id = "warmup"},
    {"train.schedule", SPEC_ENUM, FIELD(train.schedule), .names = schedule_kind_name,
     .help = "after warm-up: cosine (to 0 at the budget), constant, or wsd (constant, then a linear decay over "
             "the last train.decay_fraction); constant and wsd do not depend on the budget before the decay",
     .id = "sched"},
    {"train.decay_fraction", SPEC_FLOAT, FIELD(train.decay_fraction), .def = "0.2", .min = 0, .max = 1,
     .help = "wsd: final fraction of train.images spent decaying to 0", .id = "decay"},
    {"train.beta1", SPEC_FLOAT, FIELD(train.beta1), .def = "0.9", .min = 0, .max = 1,
     .bounds = SPEC_MAX_OPEN, .help = "AdamW first-moment decay"},
    {"train.beta2", SPEC_FLOAT, FIELD(train.beta2), .def = "0.98", .min = 0, .max = 1,
     .bounds = SPEC_MAX_OPEN, .help = "AdamW second-moment decay"},
    {"train.eps", SPEC_FLOAT, FIELD(train.eps), .def = "1e-6", .min = 0, .max = 1,
     .bounds = SPEC_MIN_OPEN, .help = "AdamW epsilon"},
    {"train.grad_clip", SPEC_FLOAT, FIELD(train.grad_clip), .def = "1.0", .min = 0, .max = 1e6,
     .help = "global gradient-norm clip (0 = off)"},
    {"train.threads", SPEC_INT, FIELD(train.threads), .def = "0", .min = 0, .max = 256,
     .help = "OpenMP/BLAS threads (0 = all cores)"},
    {"train.checkpoint_every_images", SPEC_INT64, FIELD(train.checkpoint_every_images), .def = "0",
     .min = 0, .max = 1e12, .help = "checkpoint period in images (0 = only at the end)"},

    {"eval.every_images", SPEC_INT64, FIELD(eval.every_images), .def = "20000", .min = 1,
     .max = 1e12, .help = "evaluation period in images"},
    {"eval.probe", SPEC_BOOL, FIELD(eval.probe), .def = "true",
     .help = "run linear probes at every tap"},
    {"eval.probe_all_taps", SPEC_BOOL, FIELD(eval.probe_all_taps), .def = "true",
     .help = "probe every stage of the image tower (false: only the tapped stage, probe.pre_head, and the "
             "embedding, probe.post_head, for an ablation that reads only those two)"},
    {"eval.probe_images", SPEC_INT, FIELD(eval.probe_images), .def = "9000", .min = 9, .max = 100000,
     .help = "images of the linear probe's own set (4/9 train, 1/9 validation, 4/9 test); fashion-mnist: at most its "
             "10,000 test images"},
    {"eval.all_tasks", SPEC_BOOL, FIELD(eval.all_tasks), .def = "true",
     .help = "score every zero-shot task at the final evaluation (earlier ones score only eval.task; false: only "
             "eval.task throughout, for objectives whose scoring is costly)"},
    {"eval.retrieval_n", SPEC_INT, FIELD(eval.retrieval_n), .def = "512", .min = 2, .max = 100000,
     .help = "image-text pairs in the retrieval evaluation"},
    {"eval.target_top1", SPEC_FLOAT, FIELD(eval.target_top1), .def = "0.5", .min = 0, .max = 1,
     .help = "zero-shot top-1 that defines images-to-target"},
    {"eval.task", SPEC_STRING, FIELD(eval.task), .def = "colour_shape_seen",
     .help = "zero-shot task whose top-1 drives efficiency", .valid = valid_name,
     .format = SPEC_NAME_CHARS},
    {"eval.probe_task", SPEC_STRING, FIELD(eval.probe_task), .def = "shape",
     .help = "task whose images and labels the linear probes are fitted on (half train, a quarter "
             "validation, a quarter test)", .valid = valid_name, .format = SPEC_NAME_CHARS},
    {"eval.validation", SPEC_BOOL, FIELD(eval.validation), .def = "false",
     .help = "evaluate on the validation sets, drawn from a seed space disjoint from the reported test "
             "sets (tuning stages); shapes only"},
};
#define N_SCHEMA (int)(sizeof SCHEMA / sizeof SCHEMA[0])

const SpecKey *spec_keys(int *n) {
    *n = N_SCHEMA;
    return SCHEMA;
}

const SpecKey *spec_find(const char *name) {
    for (int i = 0; i < N_SCHEMA; i++)
        if (!strcmp(SCHEMA[i].name, name)) return &SCHEMA[i];
    return NULL;
}

/* True when `name` is a proper dotted prefix of some key ("model", "model.image"). */
static bool is_section(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < N_SCHEMA; i++)
        if (!strncmp(SCHEMA[i].name, name, n) && SCHEMA[i].name[n] == '.') return true;
    return false;
}

static bool is_list(const SpecKey *k) { return k->type == SPEC_INT_LIST || k->type == SPEC_STRING_LIST; }

static void *field(const Config *c, const SpecKey *k) { return (char *)c + k->offset; }
static int *list_count(const Config *c, const SpecKey *k) { return (int *)((char *)c + k->count_offset); }
static int list_cap(const SpecKey *k) { return (int)(k->size / k->elem_size); }

/* ---------------------------------------------------------------- messages */

/* At most `limit` characters of text, control bytes escaped, "..." when cut (by the limit or by
 * the buffer: every byte may take four). */
static SpecShow show_limited(const char *text, size_t limit) {
    SpecShow out;
    size_t n = 0;
    const char *p = text;
    for (; *p && (size_t)(p - text) < limit && n + 8 < sizeof out.s; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f) n += (size_t)snprintf(out.s + n, sizeof out.s - n, "\\x%02x", ch);
        else out.s[n++] = (char)ch;
    }
    if (*p) n += (size_t)snprintf(out.s + n, sizeof out.s - n, "...");
    out.s[n] = 0;
    return out;
}

SpecShow spec_show(const char *text) { return show_limited(text, 60); }

SpecWhere spec_where(const SpecDoc *d, const yaml_node_t *n) {
    SpecWhere w;
    snprintf(w.s, sizeof w.s, "%s:%zu:%zu", d->file, n->start_mark.line + 1, n->start_mark.column + 1);
    return w;
}

/* "a list", "a mapping" or the quoted scalar text: what the user wrote instead. */
static SpecShow node_desc(const yaml_node_t *n) {
    SpecShow out;
    if (n->type == YAML_SEQUENCE_NODE) snprintf(out.s, sizeof out.s, "a list");
    else if (n->type == YAML_MAPPING_NODE) snprintf(out.s, sizeof out.s, "a mapping");
    else snprintf(out.s, sizeof out.s, "'%.200s'", spec_show((const char *)n->data.scalar.value).s);
    return out;
}

static SpecShow enum_values(const SpecKey *k) {
    SpecShow out;
    names_join(out.s, sizeof out.s, k->names);
    return out;
}

/* What a scalar of this key looks like, for "expected X for 'key'". */
static const char *kind_text(const SpecKey *k) {
    switch (k->type) {
    case SPEC_INT:
    case SPEC_INT64:
    case SPEC_INT_LIST: return "an integer";
    case SPEC_FLOAT: return "a number";
    case SPEC_BOOL: return "true or false";
    case SPEC_ENUM: return "a name";
    default: return "a string";
    }
}

/* Shortest text that reads back as the same double. */
static void format_double(char *buf, size_t cap, double v) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Whole bounds print in full ("1000000", not "1e+06"), fractional ones in their shortest form. */
static void format_bound(char *buf, size_t cap, double v) {
    if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, cap, "%.0f", v);
    else format_double(buf, cap, v);
}

static SpecShow range_text(const SpecKey *k) {
    SpecShow out;
    char lo[32], hi[32];
    format_bound(lo, sizeof lo, k->min);
    format_bound(hi, sizeof hi, k->max);
    snprintf(out.s, sizeof out.s, "%c%s, %s%c", k->bounds & SPEC_MIN_OPEN ? '(' : '[', lo, hi,
             k->bounds & SPEC_MAX_OPEN ? ')' : ']');
    return out;
}

/* ---------------------------------------------------------------- nearest key */

static int levenshtein(const char *a, const char *b) {
    enum { MAXL = 96 };
    size_t la = strnlen(a, MAXL), lb = strnlen(b, MAXL);
    int row[MAXL + 1];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *last_component(const char *s) {
    const char *p = strrchr(s, '.');
    return p ? p + 1 : s;
}

/* Distance of a user key to a candidate: the better of the distance between the full dotted
 * names and between the last components (a prefix counts as 1; another section costs 2), so both
 * "train.lrr" and a misplaced "lr" find "train.lr". */
static int key_distance(const char *user, const char *cand, int *full) {
    *full = levenshtein(user, cand);
    const char *lu = last_component(user), *lc = last_component(cand);
    int d = levenshtein(lu, lc);
    size_t nu = strlen(lu), nc = strlen(lc), shorter = nu < nc ? nu : nc;
    if (shorter >= 2 && !strncmp(lu, lc, shorter) && d > 1) d = 1;
    size_t pu = (size_t)(lu - user), pc = (size_t)(lc - cand);
    if (pu != pc || strncmp(user, cand, pu)) d += 2;
    return d < *full ? d : *full;
}

typedef struct {
    const char *user;
    const char *best;
    char best_buf[128];
    int score, full;
} Suggest;

static void suggest_try(Suggest *s, const char *cand) {
    int full, d = key_distance(s->user, cand, &full);
    if (d < s->score || (d == s->score && full < s->full)) {
        s->score = d;
        s->full = full;
        snprintf(s->best_buf, sizeof s->best_buf, "%s", cand);
        s->best = s->best_buf;
    }
}

int spec_unknown_key(Err *err, const char *where, const char *key, const char *const *extra,
                     bool only_extra) {
    Suggest s = {.user = key, .score = INT_MAX, .full = INT_MAX};
    for (int i = 0; extra && extra[i]; i++) suggest_try(&s, extra[i]);
    for (int i = 0; !only_extra && i < N_SCHEMA; i++) {
        const char *name = SCHEMA[i].name;
        suggest_try(&s, name);
        for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
            char section[128];
            snprintf(section, sizeof section, "%.*s", (int)(dot - name), name);
            suggest_try(&s, section);
        }
    }
    int limit = 2 + (int)strlen(last_component(key)) / 4;
    if (s.best && s.score <= limit)
        return err_set(err, "%s: unknown key '%s'; did you mean '%s'?", where, spec_show(key).s, s.best);
    return err_set(err, "%s: unknown key '%s' (see cliplab help-spec)", where, spec_show(key).s);
}

/* ---------------------------------------------------------------- values */

/* 0: ok; 1: not a number of that kind; 2: a number far outside any range. Only decimal digits,
 * signs, '.' and exponents are accepted (no hex, inf or nan). */
static int parse_number(const char *t, bool integer, double *v) {
    if (!t[0] || strspn(t, "0123456789+-.eE") != strlen(t)) return 1;
    char *end;
    errno = 0;
    long long ll = strtoll(t, &end, 10);
    if (!*end && !errno) {
        *v = (double)ll;
        return 0;
    }
    errno = 0;
    double d = strtod(t, &end);
    if (*end) return 1;
    if (!isfinite(d)) return 2;
    if (integer && d != floor(d)) return 1;
    *v = d;
    return 0;
}

static bool in_range(const SpecKey *k, double v) {
    bool lo = k->bounds & SPEC_MIN_OPEN ? v > k->min : v >= k->min;
    bool hi = k->bounds & SPEC_MAX_OPEN ? v < k->max : v <= k->max;
    return lo && hi;
}

/* Parses one scalar of k's (entry) type from text into dst (the field or a list entry). */
static int set_scalar(const SpecKey *k, void *dst, const char *text, const char *where, Err *err) {
    switch (k->type) {
    case SPEC_INT:
    case SPEC_INT64:
    case SPEC_INT_LIST:
    case SPEC_FLOAT: {
        double v;
        int r = parse_number(text, k->type != SPEC_FLOAT, &v);
        if (r == 1)
            return err_set(err, "%s: expected %s for '%s', got '%s'", where, kind_text(k), k->name,
                           spec_show(text).s);
        if (r == 2 || !in_range(k, v))
            return err_set(err, "%s: '%s' = %s is out of range %s", where, k->name, spec_show(text).s,
                           range_text(k).s);
        if (k->type == SPEC_FLOAT) *(double *)dst = v;
        else if (k->type == SPEC_INT64) *(int64_t *)dst = (int64_t)v;
        else *(int *)dst = (int)v;
        return 0;
    }
    case SPEC_BOOL:
        if (!strcmp(text, "true")) *(bool *)dst = true;
        else if (!strcmp(text, "false")) *(bool *)dst = false;
        else
            return err_set(err, "%s: expected true or false for '%s', got '%s'", where, k->name,
                           spec_show(text).s);
        return 0;
    case SPEC_ENUM:
        if (names_find(k->names, text) >= 0) {
            CHECK(strlen(text) < k->size, "registry name '%s' does not fit the field of '%s'", text, k->name);
            memset(dst, 0, k->size);
            memcpy(dst, text, strlen(text));
            return 0;
        }
        return err_set(err, "%s: unknown %s '%s'; valid: %s", where, k->name, spec_show(text).s,
                       enum_values(k).s);
    case SPEC_STRING:
    case SPEC_STRING_LIST: {
        size_t cap = k->type == SPEC_STRING ? k->size : k->elem_size;
        if (strlen(text) >= cap)
            return err_set(err, "%s: '%s' is too long (at most %zu characters), got '%s'", where,
                           k->name, cap - 1, spec_show(text).s);
        size_t len = strlen(text);
        if (len && (isspace((unsigned char)text[0]) || isspace((unsigned char)text[len - 1])))
            return err_set(err, "%s: '%s' starts or ends with a blank (overrides trim them, so it could "
                           "not be given again), got '%s'", where, k->name, spec_show(text).s);
        long bad = utf8_invalid_at(text);
        if (bad >= 0)
            return err_set(err, "%s: '%s' is not valid UTF-8 (byte 0x%02x at offset %ld)", where, k->name,
                           (unsigned char)text[bad], bad);
        if (k->valid && !k->valid(text))
            return err_set(err, "%s: expected %s for '%s', got '%s'", where, k->format, k->name,
                           spec_show(text).s);
        memset(dst, 0, cap);
        memcpy(dst, text, strlen(text));
        return 0;
    }
    }
    CHECK(0, "bad spec type %d", (int)k->type);
}

/* Sets a whole list from n entry texts (each with its own location); the field changes only when
 * every entry is valid. */
static int set_list(Config *c, const SpecKey *k, int n, const char *const *texts,
                    const SpecWhere *wheres, const char *where, Err *err) {
    if (n == 0) return err_set(err, "%s: empty list for '%s'", where, k->name);
    if (n > list_cap(k))
        return err_set(err, "%s: too many entries for '%s' (at most %d)", where, k->name, list_cap(k));
    unsigned char tmp[1024];
    CHECK(k->size <= sizeof tmp, "list field of '%s' too large", k->name);
    memset(tmp, 0, k->size);
    for (int i = 0; i < n; i++)
        if (set_scalar(k, tmp + (size_t)i * k->elem_size, texts[i], wheres[i].s, err)) return -1;
    memcpy(field(c, k), tmp, k->size);
    *list_count(c, k) = n;
    return 0;
}

static int set_value(Config *c, const SpecKey *k, const char *text, const char *where, Err *err) {
    unsigned char tmp[CONFIG_PATH_MAX];
    CHECK(k->size <= sizeof tmp, "field of '%s' too large", k->name);
    if (set_scalar(k, tmp, text, where, err)) return -1;
    memcpy(field(c, k), tmp, k->size);
    return 0;
}

int spec_node_int(SpecDoc *d, yaml_node_t *val, const char *name, int min, int max, int *out, Err *err) {
    const SpecKey k = {.name = name, .type = SPEC_INT, .size = sizeof(int), .min = min, .max = max};
    SpecWhere w = spec_where(d, val);
    const char *text = spec_scalar(val);
    if (!text) return err_set(err, "%s: expected an integer for '%s', got %s", w.s, name, node_desc(val).s);
    int v;
    if (set_scalar(&k, &v, text, w.s, err)) return -1;
    *out = v;
    return 0;
}

const char *spec_scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

yaml_node_t *spec_node(SpecDoc *d, int index) { return yaml_document_get_node(&d->doc, index); }

/* A scalar's text stops at its first NUL ("\0" in a quoted YAML string): refused rather than cut. */
static int check_no_nul(const SpecKey *k, const yaml_node_t *n, const SpecWhere *w, Err *err) {
    if (n->type == YAML_SCALAR_NODE && strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return err_set(err, "%s: the value of '%s' contains a NUL byte", w->s, k->name);
    return 0;
}

int spec_apply_node(Config *c, const SpecKey *k, SpecDoc *d, yaml_node_t *val, Err *err) {
    SpecWhere w = spec_where(d, val);
    if (!is_list(k)) {
        const char *text = spec_scalar(val);
        if (check_no_nul(k, val, &w, err)) return -1;
        if (!text) {
            if (k->type == SPEC_ENUM)
                return err_set(err, "%s: expected one of %s for '%s', got %s", w.s, enum_values(k).s,
                               k->name, node_desc(val).s);
            return err_set(err, "%s: expected %s for '%s', got %s", w.s, kind_text(k), k->name,
                           node_desc(val).s);
        }
        return set_value(c, k, text, w.s, err);
    }
    if (val->type != YAML_SEQUENCE_NODE)
        return err_set(err, "%s: expected a list for '%s', got %s", w.s, k->name, node_desc(val).s);
    int n = (int)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n > list_cap(k)) return set_list(c, k, n, NULL, NULL, w.s, err);
    const char *texts[CONFIG_HOLDOUT_MAX > CONFIG_WIDTHS_MAX ? CONFIG_HOLDOUT_MAX : CONFIG_WIDTHS_MAX];
    SpecWhere wheres[sizeof texts / sizeof texts[0]];
    CHECK(list_cap(k) <= (int)(sizeof texts / sizeof texts[0]), "list '%s' too long for its buffers", k->name);
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = spec_node(d, val->data.sequence.items.start[i]);
        wheres[i] = spec_where(d, item);
        texts[i] = spec_scalar(item);
        if (check_no_nul(k, item, &wheres[i], err)) return -1;
        if (!texts[i])
            return err_set(err, "%s: expected %s for '%s', got %s", wheres[i].s, kind_text(k), k->name,
                           node_desc(item).s);
    }
    return set_list(c, k, n, texts, wheres, w.s, err);
}

/* Copies text without surrounding blanks into buf; false if it does not fit. */
static bool trim_copy(char *buf, size_t cap, const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= cap) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    return true;
}

int spec_apply_text(Config *c, const SpecKey *k, const char *text, const char *where, Err *err) {
    char value[1024];
    if (!trim_copy(value, sizeof value, text, strlen(text)))
        return err_set(err, "%s: value of '%s' is too long", where, k->name);
    if (!is_list(k)) return set_value(c, k, value, where, err);
    char *body = value;
    size_t len = strlen(body);
    if (len >= 2 && body[0] == '[' && body[len - 1] == ']') {
        body[len - 1] = 0;
        body++;
    }
    char items[CONFIG_HOLDOUT_MAX + 1][CONFIG_PATH_MAX];
    const char *texts[CONFIG_HOLDOUT_MAX + 1];
    SpecWhere wheres[CONFIG_HOLDOUT_MAX + 1];
    int n = 0;
    bool blank = strspn(body, " \t") == strlen(body);
    for (char *p = body; !blank;) {
        char *comma = strchr(p, ',');
        size_t m = comma ? (size_t)(comma - p) : strlen(p);
        if (n == list_cap(k)) return set_list(c, k, n + 1, NULL, NULL, where, err);
        if (!trim_copy(items[n], sizeof items[n], p, m))
            return err_set(err, "%s: entry of '%s' is too long", where, k->name);
        texts[n] = items[n];
        snprintf(wheres[n].s, sizeof wheres[n].s, "%s", where);
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    return set_list(c, k, n, texts, wheres, where, err);
}

/* The default of key k: its row's, or for an enum its registry's first name. */
static const char *default_text(const SpecKey *k) { return k->type == SPEC_ENUM ? k->names(0) : k->def; }

void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    Err err;
    for (int i = 0; i < N_SCHEMA; i++)
        CHECK(!spec_apply_text(c, &SCHEMA[i], default_text(&SCHEMA[i]), "schema default", &err), "%s", err.msg);
}

/* ---------------------------------------------------------------- YAML files */

int spec_read_file(const char *path, char **text, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    char *buf = mallocCheck(cap + 1);
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) {
            if (ferror(f)) {
                int e = errno ? errno : EIO;
                fclose(f);
                free(buf);
                errno = e;
                return -1;
            }
            break;
        }
        if (cap >= SPEC_FILE_MAX) {
            fclose(f);
            free(buf);
            errno = EFBIG;
            return -1;
        }
        cap *= 2;
        buf = reallocCheck(buf, cap + 1);
    }
    fclose(f);
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

static int yaml_error(Err *err, const char *file, const yaml_parser_t *p, const char *text, size_t len) {
    CHECK(p->error != YAML_MEMORY_ERROR, "libyaml: out of memory parsing %s", file);
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        /* reader errors carry a byte offset, not a mark */
        line = col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (text[i] == '\n') line++, col = 1;
            else col++;
        }
    }
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        return err_set(err, "%s:%zu:%zu: %s (%s that started at line %zu)", file, line, col, problem,
                       p->context, p->context_mark.line + 1);
    return err_set(err, "%s:%zu:%zu: %s", file, line, col, problem);
}

/* Refuses nesting deeper than SPEC_NESTING_MAX before the document is built: libyaml's cost per
 * token grows with the nesting depth (its simple-key stack), so 80 KB of `[[[...` took seconds and
 * a MiB minutes. This pass stops at the first level too deep; a syntax error is left to the load
 * that follows, which reports it with the same position. */
static int check_nesting(const char *file, const char *text, size_t len, Err *err) {
    yaml_parser_t p;
    CHECK(yaml_parser_initialize(&p), "libyaml: cannot initialize a parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) break;
        yaml_event_type_t t = e.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) depth++;
        if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) depth--;
        if (depth > SPEC_NESTING_MAX)
            rc = err_set(err, "%s:%zu:%zu: nesting deeper than %d levels (a spec needs at most a few)", file,
                         e.start_mark.line + 1, e.start_mark.column + 1, SPEC_NESTING_MAX);
        yaml_event_delete(&e);
        if (rc || t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&p);
    return rc;
}

int spec_doc_parse(SpecDoc *d, const char *file, const char *text, size_t len, Err *err) {
    snprintf(d->file, sizeof d->file, "%s", file);
    if (check_nesting(file, text, len, err)) return -1;
    yaml_parser_t p;
    CHECK(yaml_parser_initialize(&p), "libyaml: cannot initialize a parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &d->doc)) {
        yaml_error(err, file, &p, text, len);
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_document_t next;
    int rc = 0;
    if (!yaml_parser_load(&p, &next)) {
        rc = yaml_error(err, file, &p, text, len);
    } else {
        yaml_node_t *extra = yaml_document_get_root_node(&next);
        if (extra) {
            rc = err_set(err, "%s:%zu:%zu: expected one YAML document, found a second one", file,
                         extra->start_mark.line + 1, extra->start_mark.column + 1);
        }
        yaml_document_delete(&next);
    }
    yaml_parser_delete(&p);
    yaml_node_t *root = yaml_document_get_root_node(&d->doc);
    if (!rc && root && root->type != YAML_MAPPING_NODE)
        rc = err_set(err, "%s: expected a mapping of keys at the top, got %s", spec_where(d, root).s,
                     node_desc(root).s);
    if (rc) yaml_document_delete(&d->doc);
    return rc;
}

void spec_doc_free(SpecDoc *d) { yaml_document_delete(&d->doc); }

static bool in_list(const char *const *list, const char *s) {
    for (int i = 0; list && list[i]; i++)
        if (!strcmp(list[i], s)) return true;
    return false;
}

int spec_walk(SpecDoc *d, yaml_node_t *map, const char *prefix, const char *const *extra,
              SpecLeafFn fn, void *ctx, Err *err) {
    if (!map) return 0;
    yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *key = spec_node(d, p->key), *val = spec_node(d, p->value);
        const char *name = spec_scalar(key);
        if (!name)
            return err_set(err, "%s: expected a key name, got %s", spec_where(d, key).s, node_desc(key).s);
        char full[256];
        int m = snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (m >= (int)sizeof full) return spec_unknown_key(err, spec_where(d, key).s, full, extra, false);
        for (yaml_node_pair_t *q = start; q < p; q++) {
            yaml_node_t *other = spec_node(d, q->key);
            const char *oname = spec_scalar(other);
            if (oname && !strcmp(oname, name))
                return err_set(err, "%s: duplicate key '%s' (first at line %zu)", spec_where(d, key).s,
                               spec_show(full).s, other->start_mark.line + 1);
        }
        int rc;
        const SpecKey *k = spec_find(full);
        if (!prefix[0] && in_list(extra, full)) {
            rc = fn(ctx, d, full, NULL, key, val, err);
        } else if (k) {
            rc = fn(ctx, d, full, k, key, val, err);
        } else if (is_section(full)) {
            if (val->type != YAML_MAPPING_NODE)
                return err_set(err, "%s: '%s' is a section: expected a mapping of its keys, got %s",
                               spec_where(d, val).s, full, node_desc(val).s);
            rc = spec_walk(d, val, full, NULL, fn, ctx, err);
        } else {
            return spec_unknown_key(err, spec_where(d, key).s, full, extra, false);
        }
        if (rc) return rc;
    }
    return 0;
}

/* The leaves one file has set, to refuse the same key twice (also across nesting styles, e.g.
 * `train.lr:` and `train: {lr:}`). */
typedef struct {
    Config *config;
    size_t first_line[N_SCHEMA];
} LoadCtx;

static int load_leaf(void *ctx, SpecDoc *d, const char *name, const SpecKey *k, yaml_node_t *key,
                     yaml_node_t *val, Err *err) {
    LoadCtx *lc = ctx;
    if (!k) return 0; /* `base:`, loaded before the walk */
    size_t i = (size_t)(k - SCHEMA);
    if (lc->first_line[i])
        return err_set(err, "%s: duplicate key '%s' (first at line %zu)", spec_where(d, key).s, name,
                       lc->first_line[i]);
    lc->first_line[i] = key->start_mark.line + 1;
    return spec_apply_node(lc->config, k, d, val, err);
}

static const char *const EXPERIMENT_EXTRA[] = {"base", NULL};

static int load_experiment(const char *file, const char *text, size_t len, SpecChain *chain,
                           Config *c, Err *err) {
    SpecDoc d;
    if (spec_doc_parse(&d, file, text, len, err)) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&d.doc);
    if (chain->n == 1 && (!root || root->data.mapping.pairs.top == root->data.mapping.pairs.start)) {
        /* the defaults alone are a full 200k-image run: nobody means that by an empty file */
        spec_doc_free(&d);
        return err_set(err, "%s: the spec is empty; a minimal spec is `base: <path>/experiments/contrastive.yaml` "
                            "or `name: my-run` plus the keys to change (cliplab help-spec lists them)", file);
    }
    int rc = 0;
    for (yaml_node_pair_t *p = root ? root->data.mapping.pairs.start : NULL;
         root && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *key = spec_node(&d, p->key);
        const char *name = spec_scalar(key);
        if (name && !strcmp(name, "base")) {
            rc = spec_load_base(&d, key, spec_node(&d, p->value), chain, c, NULL, 0, err);
            break;
        }
    }
    LoadCtx lc = {.config = c};
    if (!rc) rc = spec_walk(&d, root, "", EXPERIMENT_EXTRA, load_leaf, &lc, err);
    spec_doc_free(&d);
    return rc;
}

/* Canonical form of a path for cycle detection (the path itself if it does not resolve). */
static void chain_name(char *out, size_t cap, const char *path) {
    char real[PATH_MAX];
    snprintf(out, cap, "%s", realpath(path, real) ? real : path);
}

int spec_load_base(SpecDoc *d, yaml_node_t *key, yaml_node_t *val, SpecChain *chain, Config *c,
                   char *resolved, size_t resolved_cap, Err *err) {
    SpecWhere wk = spec_where(d, key);
    const char *name = spec_scalar(val);
    if (!name || !name[0])
        return err_set(err, "%s: expected a file name for 'base', got %s", spec_where(d, val).s,
                       node_desc(val).s);
    char path[1024];
    const char *slash = strrchr(d->file, '/');
    int m = name[0] == '/' || !slash
                ? snprintf(path, sizeof path, "%s", name)
                : snprintf(path, sizeof path, "%.*s/%s", (int)(slash - d->file), d->file, name);
    if (m >= (int)sizeof path) return err_set(err, "%s: base path too long", wk.s);
    char canon[sizeof chain->paths[0]];
    chain_name(canon, sizeof canon, path);
    for (int i = 0; i < chain->n; i++)
        if (!strcmp(chain->paths[i], canon))
            return err_set(err, "%s: base '%s' includes itself (a cycle)", wk.s, spec_show(path).s);
    if (chain->n == SPEC_BASE_DEPTH)
        return err_set(err, "%s: more than %d nested base files", wk.s, SPEC_BASE_DEPTH);
    char *text;
    size_t len;
    if (spec_read_file(path, &text, &len))
        return err_set(err, "%s: cannot open base '%s': %s", wk.s, show_limited(path, sizeof(SpecShow) - 8).s,
                       strerror(errno));
    snprintf(chain->paths[chain->n++], sizeof chain->paths[0], "%s", canon);
    int rc = load_experiment(path, text, len, chain, c, err);
    chain->n--;
    free(text);
    if (resolved) snprintf(resolved, resolved_cap, "%s", path);
    return rc;
}

int spec_load_string(const char *name, const char *text, size_t len, Config *out, Err *err) {
    Config c;
    config_defaults(&c);
    SpecChain chain = {.n = 1};
    chain_name(chain.paths[0], sizeof chain.paths[0], name);
    if (load_experiment(name, text, len, &chain, &c, err)) return -1;
    *out = c;
    return 0;
}

int spec_load(const char *path, Config *out, Err *err) {
    char *text;
    size_t len;
    if (spec_read_file(path, &text, &len)) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    int rc = spec_load_string(path, text, len, out, err);
    free(text);
    return rc;
}

int spec_override(Config *c, const char *assignment, Err *err) {
    const char *where = "command line";
    const char *eq = strchr(assignment, '=');
    if (!eq) return err_set(err, "%s: expected key=value, got '%s'", where, spec_show(assignment).s);
    char key[256];
    if (!trim_copy(key, sizeof key, assignment, (size_t)(eq - assignment)))
        return spec_unknown_key(err, where, spec_show(assignment).s, NULL, false);
    const SpecKey *k = spec_find(key);
    if (!k && is_section(key))
        return err_set(err, "%s: '%s' is a section, not a key (see cliplab help-spec %s)", where, key, key);
    if (!k) return spec_unknown_key(err, where, key, NULL, false);
    return spec_apply_text(c, k, eq + 1, where, err);
}

int spec_check(const Config *c, Err *err) {
    const ObjectiveOps *ops = objective_lookup(c->objective.kind, err);
    if (!ops) return -1;
    ObjectiveSections sections = {&c->objective, &c->model, &c->loss};
    return ops->validate ? ops->validate(sections, c->train.batch_size, err) : 0;
}

/* ---------------------------------------------------------------- dumping, equality, help */

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        CHECK(m >= 0, "vsnprintf failed");
        if ((size_t)m < b->cap - b->n) {
            b->n += (size_t)m;
            return;
        }
        b->cap = 2 * b->cap + (size_t)m;
        b->s = reallocCheck(b->s, b->cap);
    }
}

/* A YAML double-quoted scalar of valid UTF-8: characters YAML does not allow raw (C0 and C1
 * controls, DEL, U+FFFE/U+FFFF, the BOM) are escaped, so the dump always reloads. */
static void buf_quoted(Buf *b, const char *s) {
    buf_printf(b, "\"");
    for (uint32_t cp; *s;) {
        int n = utf8_next((const unsigned char *)s, &cp);
        CHECK(n > 0, "spec string is not valid UTF-8 (the loader refuses that)");
        if (cp == '"' || cp == '\\') buf_printf(b, "\\%c", (char)cp);
        else if (cp < 0x20 || cp == 0x7f) buf_printf(b, "\\x%02x", (unsigned)cp);
        else if ((cp >= 0x80 && cp < 0xa0) || cp == 0xfeff || cp == 0xfffe || cp == 0xffff) buf_printf(b, "\\u%04x", (unsigned)cp);
        else buf_printf(b, "%.*s", n, s);
        s += n;
    }
    buf_printf(b, "\"");
}

/* A float that YAML 1.1 readers (PyYAML, h5py users) also see as a float: it has a '.'. */
static void buf_double(Buf *b, double v) {
    char num[40];
    format_double(num, sizeof num, v);
    char *e = strchr(num, 'e');
    if (strchr(num, '.')) buf_printf(b, "%s", num);
    else if (e) buf_printf(b, "%.*s.0%s", (int)(e - num), num, e);
    else buf_printf(b, "%s.0", num);
}

static void buf_entry(Buf *b, const SpecKey *k, const void *p) {
    switch (k->type) {
    case SPEC_INT:
    case SPEC_INT_LIST: buf_printf(b, "%d", *(const int *)p); break;
    case SPEC_INT64: buf_printf(b, "%" PRId64, *(const int64_t *)p); break;
    case SPEC_FLOAT: buf_double(b, *(const double *)p); break;
    case SPEC_BOOL: buf_printf(b, "%s", *(const bool *)p ? "true" : "false"); break;
    case SPEC_ENUM: buf_printf(b, "%s", (const char *)p); break;
    case SPEC_STRING:
    case SPEC_STRING_LIST: buf_quoted(b, (const char *)p); break;
    }
}

static void buf_value(Buf *b, const SpecKey *k, const Config *c) {
    if (!is_list(k)) {
        buf_entry(b, k, field(c, k));
        return;
    }
    buf_printf(b, "[");
    for (int i = 0; i < *list_count(c, k); i++) {
        if (i) buf_printf(b, ", ");
        buf_entry(b, k, (const char *)field(c, k) + (size_t)i * k->elem_size);
    }
    buf_printf(b, "]");
}

char *config_to_yaml(const Config *c) {
    Buf b = {.s = mallocCheck(4096), .cap = 4096};
    b.s[0] = 0;
    const char *prev = "";
    size_t prev_len = 0; /* length of prev's section part, "" at top level */
    for (int i = 0; i < N_SCHEMA; i++) {
        const char *name = SCHEMA[i].name;
        size_t sec_len = (size_t)(last_component(name) - name);
        /* common whole-component prefix of the previous and this key's sections */
        size_t common = 0;
        for (size_t j = 0; j < sec_len && j < prev_len && name[j] == prev[j]; j++)
            if (name[j] == '.') common = j + 1;
        int depth = 0;
        for (size_t j = 0; j < common; j++) depth += name[j] == '.';
        for (size_t j = common; j < sec_len; j++) {
            if (name[j] != '.') continue;
            size_t from = j;
            while (from > common && name[from - 1] != '.') from--;
            buf_printf(&b, "%*s%.*s:\n", 2 * depth, "", (int)(j - from), name + from);
            depth++;
            common = j + 1;
        }
        buf_printf(&b, "%*s%s: ", 2 * depth, "", last_component(name));
        buf_value(&b, &SCHEMA[i], c);
        buf_printf(&b, "\n");
        prev = name;
        prev_len = sec_len;
    }
    return b.s;
}

static bool entry_equal(const SpecKey *k, const void *a, const void *b) {
    switch (k->type) {
    case SPEC_INT:
    case SPEC_INT_LIST: return *(const int *)a == *(const int *)b;
    case SPEC_INT64: return *(const int64_t *)a == *(const int64_t *)b;
    case SPEC_FLOAT: return *(const double *)a == *(const double *)b;
    case SPEC_BOOL: return *(const bool *)a == *(const bool *)b;
    default: return !strcmp((const char *)a, (const char *)b);
    }
}

bool spec_key_equal(const SpecKey *k, const Config *a, const Config *b) {
    if (!is_list(k)) return entry_equal(k, field(a, k), field(b, k));
    int n = *list_count(a, k);
    if (n != *list_count(b, k)) return false;
    for (int j = 0; j < n; j++) {
        size_t off = (size_t)j * k->elem_size;
        if (!entry_equal(k, (const char *)field(a, k) + off, (const char *)field(b, k) + off)) return false;
    }
    return true;
}

bool config_equal(const Config *a, const Config *b) { return config_diff(a, b, NULL, NULL, 0) == 0; }

int config_diff(const Config *a, const Config *b, const char *const *ignore, char *out, size_t cap) {
    int n = 0;
    size_t len = 0;
    if (cap) out[0] = '\0';
    for (int i = 0; i < N_SCHEMA; i++) {
        const SpecKey *k = &SCHEMA[i];
        int ignored = 0;
        for (int j = 0; ignore && ignore[j]; j++) ignored |= !strcmp(ignore[j], k->name);
        if (ignored || spec_key_equal(k, a, b)) continue;
        if (len + 1 < cap) len += (size_t)snprintf(out + len, cap - len, "%s%s", n ? ", " : "", k->name);
        n++;
    }
    return n;
}

static const char *type_name(SpecType t) {
    switch (t) {
    case SPEC_INT: return "int";
    case SPEC_INT64: return "int64";
    case SPEC_FLOAT: return "float";
    case SPEC_BOOL: return "bool";
    case SPEC_STRING: return "string";
    case SPEC_ENUM: return "enum";
    case SPEC_INT_LIST: return "int list";
    case SPEC_STRING_LIST: return "str list";
    }
    return "?";
}

int spec_help_print(FILE *out, const char *only, Err *err) {
    if (only && !is_section(only)) return spec_unknown_key(err, "help-spec", only, NULL, false);
    fprintf(out, "Experiment spec keys. Set them in YAML (nested sections or dotted names; `base: other.yaml`\n"
                 "inherits another file) or on the command line as key=value (lists as a,b or [a,b]).\n");
    Config defaults;
    config_defaults(&defaults);
    size_t shown_len = SIZE_MAX;
    const char *shown = "";
    for (int i = 0; i < N_SCHEMA; i++) {
        const SpecKey *k = &SCHEMA[i];
        size_t sec_len = (size_t)(last_component(k->name) - k->name);
        if (only && (strncmp(k->name, only, strlen(only)) || k->name[strlen(only)] != '.')) continue;
        if (sec_len != shown_len || strncmp(k->name, shown, sec_len)) {
            fprintf(out, "\n%.*s\n", sec_len ? (int)sec_len - 1 : 9, sec_len ? k->name : "top level");
            shown = k->name;
            shown_len = sec_len;
        }
        Buf def = {.s = mallocCheck(64), .cap = 64};
        def.s[0] = 0;
        buf_value(&def, k, &defaults);
        char range[300] = "";
        if (k->type == SPEC_ENUM) {
            SpecShow v = enum_values(k);
            snprintf(range, sizeof range, "one of %s", v.s);
        } else if (k->type == SPEC_INT_LIST) {
            snprintf(range, sizeof range, "1..%d entries in %s", list_cap(k), range_text(k).s);
        } else if (k->type == SPEC_STRING_LIST) {
            snprintf(range, sizeof range, "1..%d entries, each %s", list_cap(k), k->format);
        } else if (k->type == SPEC_STRING) {
            snprintf(range, sizeof range, "%s", k->format ? k->format : "");
        } else if (k->type != SPEC_BOOL) {
            snprintf(range, sizeof range, "%s", range_text(k).s);
        }
        fprintf(out, "  %-30s %-8s %-22s %s%s%s\n", k->name, type_name(k->type), def.s, k->help,
                range[0] ? "; " : "", range);
        free(def.s);
    }
    return 0;
}
