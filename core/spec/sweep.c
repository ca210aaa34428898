/* sweep.c — loading ablation files and expanding them into runs (see sweep.h for the format).
 *
 * The file is parsed and checked entirely before any run is built: every axis value and every
 * profile (not only the selected one) is applied to a scratch Config, so a typo in the `full`
 * profile is caught by a `smoke` run. Errors reuse spec.c's walker and messages.
 * Deliberately left out: running, resuming and the --force policy (the CLI driver's job).
 */
#include "spec/sweep.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"

static const char *const ABLATION_KEYS[] = {"base", "question", "name", "sweep", "seeds", "set",
                                            "profiles", "report", "tune", "arms", "ratios", NULL};
enum { K_BASE, K_QUESTION, K_NAME, K_SWEEP, K_SEEDS, K_SET, K_PROFILES, K_REPORT, K_TUNE, K_ARMS, K_RATIOS, K_COUNT };
static const char *const TUNE_KEYS[] = {"images", "metric", "grid", "when", NULL};
enum { T_IMAGES, T_METRIC, T_GRID, T_WHEN, T_COUNT };
/* The profiles, the only list of their names; the first two are the CI and default sizes, `long`
 * a budget whose results ship with the project (hours), `full` the largest. */
static const char *const PROFILES[] = {"smoke", "quick", "long", "full"};
enum { N_PROFILES = (int)(sizeof PROFILES / sizeof PROFILES[0]), PROFILE_DEFAULT = 1 };
static const char *profile_name(int i) { return i >= 0 && i < N_PROFILES ? PROFILES[i] : NULL; }

/* "<where>: unknown profile 'x'; valid: smoke, quick, long, full" */
static int unknown_profile(Err *err, const char *where, const char *name) {
    char valid[64];
    names_join(valid, sizeof valid, profile_name);
    return err_set(err, "%s: unknown profile '%s'; valid: %s", where, spec_show(name).s, valid);
}
static const char *const PROFILE_EXTRA[] = {"seeds", "tune.images", NULL};

typedef struct {
    const SpecKey *k;
    int n;
    yaml_node_t *values[SWEEP_MAX_VALUES];
    char text[SWEEP_MAX_VALUES][300]; /* override syntax */
    char id[SWEEP_MAX_VALUES][SWEEP_ID_MAX]; /* file-system-safe form */
} Axis;

/* A `tune.when` entry's selector: every part "key=value" (or "key!=value", negate) must hold of
 * a configuration's values for the entry's grid to apply to it. */
typedef struct {
    int n;
    const SpecKey *k[SWEEP_MAX_AXES];
    char value[SWEEP_MAX_AXES][300]; /* override syntax */
    bool negate[SWEEP_MAX_AXES];
} TuneWhen;

typedef struct {
    SpecDoc *doc;
    Config base;    /* base experiment + set + the selected profile's fixed keys */
    Config scratch; /* where values are checked */
    int n_axes;
    Axis axes[SWEEP_MAX_AXES];
    size_t first_line[SWEEP_MAX_AXES]; /* of each axis's latest replacement in the profile */
    size_t set_line[128];              /* `set:` and profile keys seen, by schema index */
    Config *target;                    /* where set/profile keys go */
    bool in_profile;                   /* walking a profile (else `set:`) */
    bool selected;                     /* walking the selected profile */
    int profile_seeds;                 /* the walked profile's `seeds:`, 0 if none */
    int seeds;
    int n_tune;                        /* tuning stage: grid axes (grid:, then each when: entry's), */
    Axis tune[SWEEP_TUNE_AXES];        /*   images per candidate */
    int tune_when[SWEEP_TUNE_AXES];    /* each tuned axis's when: entry, -1 for grid: */
    int n_when, cur_when;              /* when: entries; the one being walked (-1: grid:) */
    TuneWhen when[SWEEP_TUNE_WHEN_MAX];
    int tune_images;
    int profile_tune_images;           /* the walked profile's `tune.images:`, 0 if none */
    int selected_tune_images;          /* the selected profile's, 0 if none */
    yaml_node_t *tune_images_key;      /* where the selected profile sets it */
} Builder;

static int find_axis(const Builder *b, const SpecKey *k) {
    for (int i = 0; i < b->n_axes; i++)
        if (b->axes[i].k == k) return i;
    return -1;
}

static bool is_list_key(const SpecKey *k) { return k->type == SPEC_INT_LIST || k->type == SPEC_STRING_LIST; }

/* Keeps letters, digits and ". _ + -"; anything else (spaces, slashes, commas) becomes '-'. */
static void id_safe(char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._+-", *s)))
            *s = '-';
}

/* Fills one axis value's override text ("[a,b]" for lists) and its file-system-safe id text
 * ("a-b"), and refuses a value whose id repeats an earlier one of the axis. */
static int value_texts(Builder *b, Axis *a, int i, Err *err) {
    yaml_node_t *v = a->values[i];
    char *text = a->text[i], *id = a->id[i];
    size_t cap = sizeof a->text[i], n = 0;
    bool seq = v->type == YAML_SEQUENCE_NODE;
    if (seq) {
        n += (size_t)snprintf(text, cap, "[");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
            n += (size_t)snprintf(text + n, n < cap ? cap - n : 0, "%s%s",
                                  it == v->data.sequence.items.start ? "" : ",",
                                  spec_scalar(spec_node(b->doc, *it)));
        n += (size_t)snprintf(text + n, n < cap ? cap - n : 0, "]");
    } else {
        n = (size_t)snprintf(text, cap, "%s", spec_scalar(v));
    }
    if (n >= cap || n >= sizeof a->id[i])
        return err_set(err, "%s: value of sweep '%s' is too long", spec_where(b->doc, v).s, a->k->name);
    size_t m = seq ? n - 2 : n;
    memcpy(id, seq ? text + 1 : text, m);
    id[m] = 0;
    id_safe(id);
    for (int j = 0; j < i; j++)
        if (!strcmp(a->id[j], id))
            return err_set(err, "%s: duplicate value '%s' in sweep '%s'", spec_where(b->doc, v).s,
                           spec_show(text).s, a->k->name);
    return 0;
}

/* Sets axis a's values from `list`: a list of values (for list-valued keys, a list of lists). With
 * allow_single (profiles), a single value pins the axis. Every value is checked against the key. */
static int axis_set(Builder *b, Axis *a, yaml_node_t *list, bool allow_single, Err *err) {
    SpecWhere w = spec_where(b->doc, list);
    bool is_axis = list->type == YAML_SEQUENCE_NODE;
    if (is_axis && is_list_key(a->k)) {
        yaml_node_item_t *first = list->data.sequence.items.start;
        is_axis = first == list->data.sequence.items.top ||
                  spec_node(b->doc, *first)->type == YAML_SEQUENCE_NODE;
    }
    if (!is_axis) {
        if (!allow_single)
            return err_set(err, "%s: expected a list of values for sweep '%s'%s", w.s, a->k->name,
                           is_list_key(a->k) ? " (a list of lists)" : "");
        if (spec_apply_node(&b->scratch, a->k, b->doc, list, err)) return -1;
        a->n = 1;
        a->values[0] = list;
        return value_texts(b, a, 0, err);
    }
    int n = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n == 0) return err_set(err, "%s: empty list for '%s'", w.s, a->k->name);
    if (n > SWEEP_MAX_VALUES)
        return err_set(err, "%s: too many entries for '%s' (at most %d)", w.s, a->k->name, SWEEP_MAX_VALUES);
    a->n = 0;
    for (int i = 0; i < n; i++) {
        yaml_node_t *v = spec_node(b->doc, list->data.sequence.items.start[i]);
        if (spec_apply_node(&b->scratch, a->k, b->doc, v, err)) return -1;
        a->values[a->n++] = v;
        if (value_texts(b, a, i, err)) return -1;
    }
    return 0;
}

static int sweep_leaf(void *ctx, SpecDoc *d, const char *name, const SpecKey *k, yaml_node_t *key,
                      yaml_node_t *val, Err *err) {
    Builder *b = ctx;
    (void)name;
    SpecWhere w = spec_where(d, key);
    if (!strcmp(k->name, "seed"))
        return err_set(err, "%s: 'seed' cannot be swept; use 'seeds: n'", w.s);
    int i = find_axis(b, k);
    if (i >= 0)
        return err_set(err, "%s: duplicate key '%s' (first at line %zu)", w.s, k->name, b->first_line[i]);
    if (b->n_axes == SWEEP_MAX_AXES) return err_set(err, "%s: too many sweep axes (at most %d)", w.s, SWEEP_MAX_AXES);
    Axis *a = &b->axes[b->n_axes];
    a->k = k;
    b->first_line[b->n_axes++] = key->start_mark.line + 1;
    return axis_set(b, a, val, false, err);
}

/* A fixed key of `set:` or of a profile: applied to b->target (every run, or a scratch copy when
 * the profile is not the selected one). In a profile, a swept key replaces the axis instead. */
static int fixed_leaf(void *ctx, SpecDoc *d, const char *name, const SpecKey *k, yaml_node_t *key,
                      yaml_node_t *val, Err *err) {
    Builder *b = ctx;
    SpecWhere w = spec_where(d, key);
    if (!k && !strcmp(name, "tune.images")) {
        if (b->selected) b->tune_images_key = key;
        return spec_node_int(d, val, name, 1, INT32_MAX, &b->profile_tune_images, err);
    }
    if (!k) return spec_node_int(d, val, name, 1, SWEEP_MAX_SEEDS, &b->profile_seeds, err);
    int n_keys;
    size_t idx = (size_t)(k - spec_keys(&n_keys));
    CHECK(idx < sizeof b->set_line / sizeof b->set_line[0], "schema larger than set_line");
    if (b->set_line[idx])
        return err_set(err, "%s: duplicate key '%s' (first at line %zu)", w.s, name, b->set_line[idx]);
    b->set_line[idx] = key->start_mark.line + 1;
    int i = find_axis(b, k);
    if (i < 0) return spec_apply_node(b->target, k, d, val, err);
    if (!b->in_profile)
        return err_set(err, "%s: '%s' is swept; remove it from 'set:'", w.s, name);
    Axis replacement = {.k = k};
    if (axis_set(b, &replacement, val, true, err)) return -1;
    if (b->selected) b->axes[i] = replacement;
    return 0;
}

/* `profiles:`: checks every profile, applies the selected one. */
static int load_profiles(Builder *b, yaml_node_t *key_node, yaml_node_t *map, const char *profile, Sweep *out,
                         Err *err) {
    SpecDoc *d = b->doc;
    if (map->type != YAML_MAPPING_NODE) {
        char valid[64];
        names_join(valid, sizeof valid, profile_name);
        return err_set(err, "%s: expected a mapping of profiles (%s) for 'profiles'", spec_where(d, map).s, valid);
    }
    bool found = false;
    char defined[64] = "";
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = spec_node(d, p->key), *val = spec_node(d, p->value);
        const char *name = spec_scalar(key);
        SpecWhere w = spec_where(d, key);
        if (names_find(profile_name, name) < 0) return unknown_profile(err, w.s, name ? name : "?");
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
            if (!strcmp(spec_scalar(spec_node(d, q->key)), name))
                return err_set(err, "%s: duplicate key '%s' (first at line %zu)", w.s, name,
                               spec_node(d, q->key)->start_mark.line + 1);
        if (val->type != YAML_MAPPING_NODE)
            return err_set(err, "%s: expected a mapping of keys for profile '%s', got %s",
                           spec_where(d, val).s, name, val->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar");
        size_t n = strlen(defined);
        snprintf(defined + n, sizeof defined - n, "%s%s", n ? ", " : "", name);
        b->selected = !strcmp(name, profile);
        found |= b->selected;
        b->target = b->selected ? &b->base : &b->scratch;
        b->in_profile = true;
        b->profile_seeds = 0;
        memset(b->set_line, 0, sizeof b->set_line);
        if (spec_walk(d, val, "", PROFILE_EXTRA, fixed_leaf, b, err)) return -1;
        if (b->selected && b->profile_seeds) b->seeds = b->profile_seeds;
        if (b->selected) b->selected_tune_images = b->profile_tune_images;
        b->profile_tune_images = 0;
    }
    if (!found)
        return err_set(err, "%s: profile '%s' is not defined (defined: %s)", spec_where(d, key_node).s, profile,
                       defined);
    snprintf(out->profile, sizeof out->profile, "%s", profile);
    return 0;
}

/* arms: a mapping name -> selector ("key=value[,key!=value...]" over the swept values). */
static int load_arms(SpecDoc *d, yaml_node_t *map, Sweep *out, Err *err) {
    if (map->type != YAML_MAPPING_NODE) return err_set(err, "%s: expected a mapping of arm name -> selector for 'arms'", spec_where(d, map).s);
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = spec_node(d, pr->key), *v = spec_node(d, pr->value);
        const char *name = spec_scalar(k), *sel = spec_scalar(v);
        if (out->n_arms == SWEEP_ARMS_MAX) return err_set(err, "%s: more than %d arms", spec_where(d, k).s, SWEEP_ARMS_MAX);
        if (!name || !name[0] || strchr(name, ' ') || strchr(name, '/') || strlen(name) >= 40)
            return err_set(err, "%s: expected an arm name (no spaces or '/', under 40 characters)", spec_where(d, k).s);
        if (!sel || !strchr(sel, '=') || strchr(sel, ' ') || strlen(name) + strlen(sel) + 2 > sizeof out->arms[0])
            return err_set(err, "%s: expected a selector such as objective.kind=bow,model.text.kind!=transformer", spec_where(d, v).s);
        snprintf(out->arms[out->n_arms++], sizeof out->arms[0], "%s %s", name, sel);
    }
    return 0;
}

/* ratios: a list of "fast/slow" arm names. */
static int load_ratios(SpecDoc *d, yaml_node_t *list, Sweep *out, Err *err) {
    if (list->type != YAML_SEQUENCE_NODE) return err_set(err, "%s: expected a list of fast/slow arm pairs for 'ratios'", spec_where(d, list).s);
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        yaml_node_t *v = spec_node(d, *it);
        const char *r = spec_scalar(v), *slash = r ? strchr(r, '/') : NULL;
        int found[2] = {0, 0};
        for (int a = 0; slash && a < out->n_arms; a++) {
            size_t len = strcspn(out->arms[a], " ");
            found[0] |= len == (size_t)(slash - r) && !strncmp(out->arms[a], r, len);
            found[1] |= len == strlen(slash + 1) && !strncmp(out->arms[a], slash + 1, len);
        }
        if (!found[0] || !found[1]) return err_set(err, "%s: expected fast/slow naming two of the arms", spec_where(d, v).s);
        if (out->n_ratios == SWEEP_ARMS_MAX) return err_set(err, "%s: more than %d ratios", spec_where(d, v).s, SWEEP_ARMS_MAX);
        snprintf(out->ratios[out->n_ratios++], sizeof out->ratios[0], "%s", r);
    }
    return 0;
}

static int load_report(Builder *b, yaml_node_t *list, Sweep *out, Err *err) {
    SpecDoc *d = b->doc;
    SpecWhere w = spec_where(d, list);
    if (list->type != YAML_SEQUENCE_NODE)
        return err_set(err, "%s: expected a list of metric names for 'report'", w.s);
    int n = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n == 0) return err_set(err, "%s: empty list for 'report'", w.s);
    if (n > SWEEP_REPORT_MAX)
        return err_set(err, "%s: too many entries for 'report' (at most %d)", w.s, SWEEP_REPORT_MAX);
    for (int i = 0; i < n; i++) {
        yaml_node_t *v = spec_node(d, list->data.sequence.items.start[i]);
        const char *s = spec_scalar(v);
        if (!s || !s[0] || strlen(s) >= sizeof out->report[0])
            return err_set(err, "%s: expected a metric name for 'report'", spec_where(d, v).s);
        snprintf(out->report[i], sizeof out->report[i], "%s", s);
    }
    out->n_report = n;
    return 0;
}

static int tune_leaf(void *ctx, SpecDoc *d, const char *name, const SpecKey *k, yaml_node_t *key,
                     yaml_node_t *val, Err *err) {
    Builder *b = ctx;
    (void)name;
    SpecWhere w = spec_where(d, key);
    if (!strcmp(k->name, "seed") || !strcmp(k->name, "train.images") || !strcmp(k->name, "eval.validation"))
        return err_set(err, "%s: '%s' is set by the tuning stage itself and cannot be tuned", w.s, k->name);
    if (find_axis(b, k) >= 0) return err_set(err, "%s: '%s' is swept; it cannot also be tuned", w.s, k->name);
    for (int i = 0; i < b->n_tune; i++)
        if (b->tune[i].k == k && b->tune_when[i] == b->cur_when)
            return err_set(err, "%s: duplicate key '%s' in 'tune.%s'", w.s, k->name, b->cur_when < 0 ? "grid" : "when");
    if (b->n_tune == SWEEP_TUNE_AXES) return err_set(err, "%s: too many tuned keys (at most %d)", w.s, SWEEP_TUNE_AXES);
    b->tune_when[b->n_tune] = b->cur_when;
    Axis *a = &b->tune[b->n_tune++];
    a->k = k;
    return axis_set(b, a, val, false, err);
}

/* One grid mapping (key -> list of values) of `tune:` into tuned axes of b->cur_when. */
static int tune_grid(Builder *b, yaml_node_t *map, const char *what, Err *err) {
    SpecDoc *d = b->doc;
    if (map->type != YAML_MAPPING_NODE)
        return err_set(err, "%s: expected a mapping of key -> list of values for '%s'", spec_where(d, map).s, what);
    int before = b->n_tune;
    if (spec_walk(d, map, "", NULL, tune_leaf, b, err)) return -1;
    if (b->n_tune == before) return err_set(err, "%s: empty '%s'", spec_where(d, map).s, what);
    return 0;
}

/* A `tune.when` selector "key=value[,key!=value...]" over a configuration's values; each value is
 * checked against its key. */
static int when_selector(Builder *b, yaml_node_t *node, TuneWhen *w, Err *err) {
    SpecWhere at = spec_where(b->doc, node);
    const char *sel = spec_scalar(node);
    char buf[600];
    if (!sel || !strchr(sel, '=') || strlen(sel) >= sizeof buf)
        return err_set(err, "%s: expected a selector such as loss.kind=siglip,train.batch_size!=32 for 'tune.when'", at.s);
    snprintf(buf, sizeof buf, "%s", sel);
    for (char *save = NULL, *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '=');
        if (!eq || eq == part || (eq[-1] == '!' && eq - 1 == part))
            return err_set(err, "%s: expected key=value or key!=value in the selector, got '%s'", at.s, spec_show(part).s);
        bool negate = eq[-1] == '!';
        eq[negate ? -1 : 0] = 0;
        const SpecKey *k = spec_find(part);
        if (!k) return spec_unknown_key(err, at.s, part, NULL, false);
        if (w->n == SWEEP_MAX_AXES) return err_set(err, "%s: more than %d parts in the selector", at.s, SWEEP_MAX_AXES);
        Config probe = b->base;
        if (spec_apply_text(&probe, k, eq + 1, at.s, err)) return -1;
        w->k[w->n] = k;
        w->negate[w->n] = negate;
        snprintf(w->value[w->n++], sizeof w->value[0], "%s", eq + 1);
    }
    return 0;
}

/* `tune.when`: a mapping selector -> grid; each grid applies only to the configurations its
 * selector matches. */
static int load_tune_when(Builder *b, yaml_node_t *map, Err *err) {
    SpecDoc *d = b->doc;
    if (map->type != YAML_MAPPING_NODE)
        return err_set(err, "%s: expected a mapping of selector -> grid for 'tune.when'", spec_where(d, map).s);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = spec_node(d, p->key);
        if (b->n_when == SWEEP_TUNE_WHEN_MAX)
            return err_set(err, "%s: more than %d entries in 'tune.when'", spec_where(d, key).s, SWEEP_TUNE_WHEN_MAX);
        if (when_selector(b, key, &b->when[b->n_when], err)) return -1;
        b->cur_when = b->n_when++;
        if (tune_grid(b, spec_node(d, p->value), "tune.when", err)) return -1;
    }
    return 0;
}

/* `tune:` {images, metric, grid and/or when}. */
static int load_tune(Builder *b, yaml_node_t *key_node, yaml_node_t *map, Sweep *out, Err *err) {
    SpecDoc *d = b->doc;
    if (map->type != YAML_MAPPING_NODE)
        return err_set(err, "%s: expected a mapping (images, metric, grid) for 'tune'", spec_where(d, map).s);
    yaml_node_t *vals[T_COUNT] = {0};
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = spec_node(d, p->key);
        const char *name = spec_scalar(key);
        SpecWhere w = spec_where(d, key);
        int i = 0;
        while (name && TUNE_KEYS[i] && strcmp(TUNE_KEYS[i], name)) i++;
        if (!name || !TUNE_KEYS[i]) return spec_unknown_key(err, w.s, name ? name : "?", TUNE_KEYS, true);
        if (vals[i]) return err_set(err, "%s: duplicate key 'tune.%s'", w.s, name);
        vals[i] = spec_node(d, p->value);
    }
    for (int i = 0; i < T_GRID; i++)
        if (!vals[i]) return err_set(err, "%s: 'tune' needs '%s'", spec_where(d, key_node).s, TUNE_KEYS[i]);
    if (!vals[T_GRID] && !vals[T_WHEN])
        return err_set(err, "%s: 'tune' needs 'grid' or 'when'", spec_where(d, key_node).s);
    if (spec_node_int(d, vals[T_IMAGES], "tune.images", 1, INT32_MAX, &b->tune_images, err)) return -1;
    const char *metric = spec_scalar(vals[T_METRIC]);
    if (!metric || !metric[0] || strlen(metric) >= sizeof out->tune_metric)
        return err_set(err, "%s: expected a metric name for 'tune.metric'", spec_where(d, vals[T_METRIC]).s);
    snprintf(out->tune_metric, sizeof out->tune_metric, "%s", metric);
    b->cur_when = -1;
    if (vals[T_GRID] && tune_grid(b, vals[T_GRID], "tune.grid", err)) return -1;
    return vals[T_WHEN] ? load_tune_when(b, vals[T_WHEN], err) : 0;
}

/* The name of an axis in run ids: the schema's short id, else the last component ("kind" -> its
 * section's name); when two axes would share one, the last two components. */
static void axis_short(const Builder *b, int i, char *out, size_t cap) {
    const char *names[SWEEP_MAX_AXES];
    char buf[SWEEP_MAX_AXES][SWEEP_KEY_MAX];
    for (int j = 0; j < b->n_axes; j++) {
        const SpecKey *k = b->axes[j].k;
        const char *last = strrchr(k->name, '.');
        last = last ? last + 1 : k->name;
        if (k->id) snprintf(buf[j], sizeof buf[j], "%s", k->id);
        else if (strcmp(last, "kind") || last == k->name) snprintf(buf[j], sizeof buf[j], "%s", last);
        else {
            const char *from = last - 1;
            while (from > k->name && from[-1] != '.') from--;
            snprintf(buf[j], sizeof buf[j], "%.*s", (int)(last - 1 - from), from);
        }
        names[j] = buf[j];
    }
    bool clash = false;
    for (int j = 0; j < b->n_axes; j++) clash |= j != i && !strcmp(names[j], names[i]);
    if (!clash) {
        snprintf(out, cap, "%s", names[i]);
        return;
    }
    const char *name = b->axes[i].k->name, *p = name + strlen(name);
    int dots = 0;
    while (p > name && dots < 2) dots += *--p == '.';
    snprintf(out, cap, "%s", *p == '.' ? p + 1 : p);
}

static int expand(Builder *b, Sweep *out, Err *err) {
    int64_t n = b->seeds;
    for (int i = 0; i < b->n_axes; i++) n *= b->axes[i].n;
    if (n > SWEEP_MAX_RUNS)
        return err_set(err, "%s: the sweep has %lld runs, more than the limit of %d", out->path,
                       (long long)n, SWEEP_MAX_RUNS);
    if ((int64_t)b->base.seed + b->seeds - 1 > INT32_MAX)
        return err_set(err, "%s: seed %d + seeds %d overflows", out->path, b->base.seed, b->seeds);
    char shorts[SWEEP_MAX_AXES][SWEEP_KEY_MAX];
    for (int i = 0; i < b->n_axes; i++) {
        axis_short(b, i, shorts[i], sizeof shorts[i]);
        snprintf(out->axes[i], sizeof out->axes[i], "%s", b->axes[i].k->name);
        out->axis_len[i] = b->axes[i].n;
    }
    out->n_axes = b->n_axes;
    out->seeds = b->seeds;
    out->n_runs = (int)n;
    out->runs = callocCheck((size_t)n, sizeof *out->runs);
    for (int r = 0; r < out->n_runs; r++) {
        SweepRun *run = &out->runs[r];
        run->config = b->base;
        int rest = r, pick[SWEEP_MAX_AXES];
        int s = rest % b->seeds;
        rest /= b->seeds;
        for (int i = b->n_axes - 1; i >= 0; i--) {
            pick[i] = rest % b->axes[i].n;
            rest /= b->axes[i].n;
        }
        size_t ni = 0, ns = 0;
        for (int i = 0; i < b->n_axes; i++) {
            const Axis *a = &b->axes[i];
            Err e; /* every value was checked when the file was loaded */
            CHECK(!spec_apply_node(&run->config, a->k, b->doc, a->values[pick[i]], &e), "%s", e.msg);
            ni += (size_t)snprintf(run->id + ni, ni < sizeof run->id ? sizeof run->id - ni : 0, "%s=%s_",
                                   shorts[i], a->id[pick[i]]);
            ns += (size_t)snprintf(run->swept + ns, ns < sizeof run->swept ? sizeof run->swept - ns : 0,
                                   "%s=%s; ", a->k->name, a->text[pick[i]]);
        }
        run->seed = run->config.seed = b->base.seed + s;
        ni += (size_t)snprintf(run->id + ni, ni < sizeof run->id ? sizeof run->id - ni : 0, "seed=%d", run->seed);
        ns += (size_t)snprintf(run->swept + ns, ns < sizeof run->swept ? sizeof run->swept - ns : 0,
                               "seed=%d", run->seed);
        if (ni >= sizeof run->id || ns >= sizeof run->swept)
            return err_set(err, "%s: run id longer than %d characters; shorten the swept values",
                           out->path, SWEEP_ID_MAX - 1);
        Err e; /* every run is checked before any starts */
        if (spec_check(&run->config, &e)) return err_set(err, "%s: run %s: %s", out->path, run->id, e.msg);
    }
    return 0;
}

/* The part of a run's id or swept string before its seed entry ("seed=..."). */
static int before_seed(const char *s) {
    const char *at = strstr(s, "seed=");
    while (at && strstr(at + 1, "seed=")) at = strstr(at + 1, "seed=");
    return at ? (int)(at - s) : (int)strlen(s);
}

/* Whether every part of w's selector holds of c. */
static bool when_matches(const TuneWhen *w, const Config *c) {
    for (int i = 0; i < w->n; i++) {
        Config probe = *c;
        Err e; /* checked when the file was loaded */
        CHECK(!spec_apply_text(&probe, w->k[i], w->value[i], "tune.when", &e), "%s", e.msg);
        if (spec_key_equal(w->k[i], &probe, c) == w->negate[i]) return false;
    }
    return true;
}

/* The tuned axes of configuration c in axes [n_tune]: grid:'s, then those of each when: entry that
 * matches c, an entry's key replacing the same key's earlier axis. Returns their number (0: c is
 * not tuned) and the number of candidates in *n_cand. */
static int tune_axes_of(const Builder *b, const Config *c, int *axes, int64_t *n_cand) {
    bool match[SWEEP_TUNE_WHEN_MAX];
    for (int w = 0; w < b->n_when; w++) match[w] = when_matches(&b->when[w], c);
    int n = 0;
    for (int i = 0; i < b->n_tune; i++) {
        if (b->tune_when[i] >= 0 && !match[b->tune_when[i]]) continue;
        int j = 0;
        while (j < n && b->tune[axes[j]].k != b->tune[i].k) j++;
        axes[j] = i;
        n += j == n;
    }
    *n_cand = 1;
    for (int j = 0; j < n && *n_cand <= SWEEP_MAX_RUNS; j++) *n_cand *= b->tune[axes[j]].n;
    return n;
}

/* Candidate `cand` of a configuration (base: its first-seed run) over the tuned axes [n]: on the
 * seed after the reported ones, on the validation sets, for tune_images images, with the warm-up
 * scaled by the same factor so the schedule keeps its shape. */
static int tune_candidate(const Builder *b, const Sweep *out, const SweepRun *base, const int *axes, int n,
                          int cand, SweepRun *run, Err *err) {
    int seed = b->base.seed + b->seeds; /* no reported run trains with it */
    run->config = base->config;
    int ni = snprintf(run->id, sizeof run->id, "%.*s", before_seed(base->id), base->id);
    int ns = snprintf(run->swept, sizeof run->swept, "%.*s", before_seed(base->swept), base->swept);
    int pick[SWEEP_TUNE_AXES];
    for (int j = n - 1, rest = cand; j >= 0; j--) { /* the last key varies fastest */
        pick[j] = rest % b->tune[axes[j]].n;
        rest /= b->tune[axes[j]].n;
    }
    size_t nt = 0;
    for (int j = 0; j < n; j++) {
        const Axis *a = &b->tune[axes[j]];
        Err e; /* every value was checked when the file was loaded */
        CHECK(!spec_apply_node(&run->config, a->k, b->doc, a->values[pick[j]], &e), "%s", e.msg);
        const char *last = strrchr(a->k->name, '.');
        ni += snprintf(run->id + ni, (size_t)ni < sizeof run->id ? sizeof run->id - ni : 0, "%s=%s_",
                       a->k->id ? a->k->id : last ? last + 1 : a->k->name, a->id[pick[j]]);
        nt += (size_t)snprintf(run->tuned + nt, nt < sizeof run->tuned ? sizeof run->tuned - nt : 0, "%s%s=%s",
                               nt ? "; " : "", a->k->name, a->text[pick[j]]);
    }
    ns += snprintf(run->swept + ns, (size_t)ns < sizeof run->swept ? sizeof run->swept - ns : 0, "%s; seed=%d",
                   run->tuned, seed);
    ni += snprintf(run->id + ni, (size_t)ni < sizeof run->id ? sizeof run->id - ni : 0, "seed=%d", seed);
    if ((size_t)ni >= sizeof run->id || (size_t)ns >= sizeof run->swept || nt >= sizeof run->tuned)
        return err_set(err, "%s: tuning run id longer than %d characters; shorten the tuned values", out->path,
                       SWEEP_ID_MAX - 1);
    Config *c = &run->config;
    c->train.warmup_images = c->train.images > 0 ? c->train.warmup_images * b->tune_images / c->train.images : 0;
    c->train.images = b->tune_images;
    c->eval.every_images = b->tune_images;
    c->eval.validation = true;
    run->seed = c->seed = seed;
    return 0;
}

/* Tuning candidates, configuration-major: every combination of each configuration's tuned axes
 * (none for a configuration no grid applies to). */
static int expand_tune(Builder *b, Sweep *out, Err *err) {
    int n_configs = out->n_runs / out->seeds, axes[SWEEP_TUNE_AXES];
    int64_t total = 0, n_cand;
    for (int c = 0; c < n_configs; c++)
        total += tune_axes_of(b, &out->runs[c * out->seeds].config, axes, &n_cand) ? n_cand : 0;
    if (total > SWEEP_MAX_RUNS)
        return err_set(err, "%s: the tuning stage has %lld runs, more than the limit of %d", out->path,
                       (long long)total, SWEEP_MAX_RUNS);
    if (!total) return 0;
    out->tune_runs = callocCheck((size_t)total, sizeof *out->tune_runs);
    for (int c = 0; c < n_configs; c++) {
        const SweepRun *base = &out->runs[c * out->seeds];
        int n = tune_axes_of(b, &base->config, axes, &n_cand);
        for (int j = 0; n && j < n_cand; j++) {
            SweepRun *run = &out->tune_runs[out->n_tune_runs++];
            run->tune_config = c;
            if (tune_candidate(b, out, base, axes, n, j, run, err)) return -1;
        }
    }
    return 0;
}

void sweep_tune_apply(Sweep *s, const double *score) {
    for (int t0 = 0, t1; t0 < s->n_tune_runs; t0 = t1) { /* one configuration's candidates */
        int c = s->tune_runs[t0].tune_config, best = -1;
        for (t1 = t0; t1 < s->n_tune_runs && s->tune_runs[t1].tune_config == c; t1++)
            if (score[t1] == score[t1] && (best < 0 || score[t1] > score[best])) best = t1;
        if (best < 0) continue; /* every candidate failed: the configuration keeps its spec */
        const char *chosen = s->tune_runs[best].tuned;
        for (int r = c * s->seeds; r < (c + 1) * s->seeds; r++) {
            SweepRun *run = &s->runs[r];
            snprintf(run->tuned, sizeof run->tuned, "%s", chosen);
            char buf[SWEEP_SWEPT_MAX];
            snprintf(buf, sizeof buf, "%s", chosen);
            for (char *a = strtok(buf, ";"); a; a = strtok(NULL, ";")) {
                Err e; /* these values were checked when the file was loaded */
                CHECK(!spec_override(&run->config, a + (*a == ' '), &e), "%s", e.msg);
            }
        }
    }
}

static int build(Builder *b, const char *profile, Sweep *out, Err *err) {
    SpecDoc *d = b->doc;
    yaml_node_t *root = yaml_document_get_root_node(&d->doc);
    yaml_node_t *keys[K_COUNT] = {0}, *vals[K_COUNT] = {0};
    for (yaml_node_pair_t *p = root ? root->data.mapping.pairs.start : NULL;
         root && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *key = spec_node(d, p->key);
        const char *name = spec_scalar(key);
        SpecWhere w = spec_where(d, key);
        if (!name) return err_set(err, "%s: expected a key name", w.s);
        int i = 0;
        while (ABLATION_KEYS[i] && strcmp(ABLATION_KEYS[i], name)) i++;
        if (!ABLATION_KEYS[i]) return spec_unknown_key(err, w.s, name, ABLATION_KEYS, true);
        if (keys[i])
            return err_set(err, "%s: duplicate key '%s' (first at line %zu)", w.s, name, keys[i]->start_mark.line + 1);
        keys[i] = key;
        vals[i] = spec_node(d, p->value);
    }
    if (!keys[K_BASE])
        return err_set(err, "%s: missing 'base:' (the experiment file this ablation starts from)", d->file);
    if (!keys[K_QUESTION])
        return err_set(err, "%s: missing 'question:' (one line: what this ablation answers)", d->file);

    config_defaults(&b->base);
    SpecChain chain = {0};
    if (spec_load_base(d, keys[K_BASE], vals[K_BASE], &chain, &b->base, out->base, sizeof out->base, err))
        return -1;
    b->scratch = b->base;

    const char *q = spec_scalar(vals[K_QUESTION]);
    SpecWhere wq = spec_where(d, vals[K_QUESTION]);
    if (!q || !q[0] || strchr(q, '\n') || strlen(q) >= sizeof out->question)
        return err_set(err, "%s: 'question' must be one line of at most %zu characters", wq.s,
                       sizeof out->question - 1);
    snprintf(out->question, sizeof out->question, "%s", q);

    if (keys[K_NAME]) {
        if (spec_apply_node(&b->scratch, spec_find("name"), d, vals[K_NAME], err)) return -1;
        snprintf(out->name, sizeof out->name, "%s", b->scratch.name);
    } else {
        const char *slash = strrchr(out->path, '/'), *stem = slash ? slash + 1 : out->path;
        const char *dot = strrchr(stem, '.');
        snprintf(out->name, sizeof out->name, "%.*s", dot && dot != stem ? (int)(dot - stem) : (int)strlen(stem), stem);
        if (spec_apply_text(&b->scratch, spec_find("name"), out->name, d->file, err)) return -1;
    }

    if (keys[K_SWEEP]) {
        if (vals[K_SWEEP]->type != YAML_MAPPING_NODE)
            return err_set(err, "%s: expected a mapping of key -> list of values for 'sweep'",
                           spec_where(d, vals[K_SWEEP]).s);
        if (spec_walk(d, vals[K_SWEEP], "", NULL, sweep_leaf, b, err)) return -1;
    }
    b->seeds = 1;
    if (keys[K_SEEDS] && spec_node_int(d, vals[K_SEEDS], "seeds", 1, SWEEP_MAX_SEEDS, &b->seeds, err))
        return -1;
    if (keys[K_SET]) {
        if (vals[K_SET]->type != YAML_MAPPING_NODE)
            return err_set(err, "%s: expected a mapping of keys for 'set'", spec_where(d, vals[K_SET]).s);
        b->target = &b->base;
        if (spec_walk(d, vals[K_SET], "", NULL, fixed_leaf, b, err)) return -1;
    }
    if (keys[K_PROFILES] && load_profiles(b, keys[K_PROFILES], vals[K_PROFILES], profile, out, err)) return -1;
    if (keys[K_REPORT] && load_report(b, vals[K_REPORT], out, err)) return -1;
    if (keys[K_TUNE] && load_tune(b, keys[K_TUNE], vals[K_TUNE], out, err)) return -1;
    if (keys[K_ARMS] && load_arms(d, vals[K_ARMS], out, err)) return -1;
    if (keys[K_RATIOS] && load_ratios(d, vals[K_RATIOS], out, err)) return -1;
    if (!keys[K_ARMS] != !keys[K_RATIOS])
        return err_set(err, "%s: 'arms' and 'ratios' go together", spec_where(d, keys[K_ARMS] ? keys[K_ARMS] : keys[K_RATIOS]).s);
    if (b->selected_tune_images) {
        if (!keys[K_TUNE])
            return err_set(err, "%s: profile '%s' sets tune.images but the ablation has no 'tune:' stage",
                           spec_where(d, b->tune_images_key).s, profile);
        b->tune_images = b->selected_tune_images; /* a profile's budget for its candidates */
    }
    if (expand(b, out, err)) return -1;
    return b->n_tune ? expand_tune(b, out, err) : 0;
}

int sweep_load(const char *path, const char *profile, Sweep *out, Err *err) {
    memset(out, 0, sizeof *out);
    if (!profile) profile = PROFILES[PROFILE_DEFAULT];
    if (names_find(profile_name, profile) < 0) return unknown_profile(err, "command line", profile);
    snprintf(out->path, sizeof out->path, "%s", path);
    char *text;
    size_t len;
    if (spec_read_file(path, &text, &len)) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    SpecDoc doc;
    int rc = spec_doc_parse(&doc, path, text, len, err);
    if (!rc) {
        Builder *b = callocCheck(1, sizeof *b);
        b->doc = &doc;
        rc = build(b, profile, out, err);
        free(b);
        spec_doc_free(&doc);
    }
    free(text);
    if (rc) sweep_free(out);
    return rc;
}

void sweep_free(Sweep *s) {
    free(s->runs);
    free(s->tune_runs);
    s->runs = s->tune_runs = NULL;
    s->n_runs = s->n_tune_runs = 0;
}

void sweep_print_dry_run(FILE *f, const Sweep *s) {
    fprintf(f, "# ablation: %s (%s)\n# question: %s\n# base: %s\n# profile: %s\n", s->name, s->path,
            s->question, s->base, s->profile[0] ? s->profile : "(none defined)");
    fprintf(f, "# grid:");
    for (int i = 0; i < s->n_axes; i++) fprintf(f, " %s (%d) x", s->axes[i], s->axis_len[i]);
    fprintf(f, " seeds (%d) = %d runs%s\n", s->seeds, s->n_runs,
            s->n_runs > SWEEP_CONFIRM_RUNS ? " (needs --force)" : "");
    for (int r = 0; r < s->n_runs; r++) fprintf(f, "#   %3d %s\n", r + 1, s->runs[r].id);
    if (s->n_tune_runs) {
        fprintf(f, "# tuning stage first: %d runs (validation sets, maximising %s), into tune/\n", s->n_tune_runs,
                s->tune_metric);
        for (int r = 0; r < s->n_tune_runs; r++) fprintf(f, "#   %3d %s\n", r + 1, s->tune_runs[r].id);
    }
    for (int r = 0; r < s->n_runs; r++) {
        char *yaml = config_to_yaml(&s->runs[r].config);
        fprintf(f, "--- # %s  [%s]\n%s", s->runs[r].id, s->runs[r].swept, yaml);
        free(yaml);
    }
}
