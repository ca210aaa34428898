/* spec_internal.h — the pieces of spec.c that sweep.c reuses, so ablation files get the same
 * YAML reading, key walking, value checks and error texts as experiment files.
 * Not part of the public API. Deliberately left out: anything only one of the two files needs.
 */
#ifndef CLIPLAB_SPEC_INTERNAL_H
#define CLIPLAB_SPEC_INTERNAL_H

#include <limits.h>
#include <yaml.h>

#include "spec/spec.h"

/* A parsed YAML file: its document and the name used in messages. */
typedef struct {
    yaml_document_t doc;
    char file[1024];
} SpecDoc;

/* Where-text of a node: "file:line:col" (1-based). */
typedef struct {
    char s[1100];
} SpecWhere;

/* Deepest YAML nesting (sequences and mappings) a spec or ablation file may have. */
#define SPEC_NESTING_MAX 64

/* The chain of files being included through `base:`, to refuse cycles. */
#define SPEC_BASE_DEPTH 8
typedef struct {
    int n;
    char paths[SPEC_BASE_DEPTH][PATH_MAX];
} SpecChain;

SpecWhere spec_where(const SpecDoc *d, const yaml_node_t *n);
/* User text made safe for a one-line message: control bytes escaped, long text cut. */
typedef struct {
    char s[256];
} SpecShow;
SpecShow spec_show(const char *text);

/* Reads and parses `path` (already opened as `file` text), requiring one document whose root is a
 * mapping (an empty file is an empty mapping). On error the document is not initialized. */
int spec_doc_parse(SpecDoc *d, const char *file, const char *text, size_t len, Err *err);
/* Reads a whole file; on failure returns -1 with errno set. */
int spec_read_file(const char *path, char **text, size_t *len);
void spec_doc_free(SpecDoc *d);
yaml_node_t *spec_node(SpecDoc *d, int index);
const char *spec_scalar(const yaml_node_t *n); /* NULL unless a scalar */

/* An integer in [min, max] outside the Config (e.g. an ablation's `seeds:`), same messages. */
int spec_node_int(SpecDoc *d, yaml_node_t *val, const char *name, int min, int max, int *out, Err *err);
/* Applies a YAML value node to one key of c, with the schema's checks; errors at the node. */
int spec_apply_node(Config *c, const SpecKey *k, SpecDoc *d, yaml_node_t *val, Err *err);
/* Applies override-syntax text to one key; errors prefixed with `where`. */
int spec_apply_text(Config *c, const SpecKey *k, const char *text, const char *where, Err *err);

/* Whether key k has the same value in a and b (lists entry by entry; not memcmp). */
bool spec_key_equal(const SpecKey *k, const Config *a, const Config *b);

/* Called for each leaf of a mapping walk: `k` is the schema row, or NULL when `name` is one of
 * the walk's extra top-level names. */
typedef int (*SpecLeafFn)(void *ctx, SpecDoc *d, const char *name, const SpecKey *k,
                          yaml_node_t *key, yaml_node_t *val, Err *err);
/* Walks a mapping of (nested or dotted) keys below `prefix` ("" at top level), calling fn on every
 * schema leaf; unknown keys, duplicates within a mapping and non-mapping sections are errors. */
int spec_walk(SpecDoc *d, yaml_node_t *map, const char *prefix, const char *const *extra,
              SpecLeafFn fn, void *ctx, Err *err);

/* "unknown key 'x'; did you mean 'y'?" against the schema plus `extra` (NULL-terminated, may be
 * NULL); with only_extra, against `extra` alone. Returns -1. */
int spec_unknown_key(Err *err, const char *where, const char *key, const char *const *extra,
                     bool only_extra);

/* Loads the experiment named by a `base:` value node (relative to d's file) into c, which should
 * hold the defaults. Open failures are reported at the key node. */
int spec_load_base(SpecDoc *d, yaml_node_t *key, yaml_node_t *val, SpecChain *chain, Config *c,
                   char *resolved, size_t resolved_cap, Err *err);

#endif
