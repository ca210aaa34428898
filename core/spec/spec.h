/* spec.h — strict YAML experiment specs: the schema, loading, overrides, dumping, help.
 *
 * One schema table in spec.c (SpecKey rows) defines every key of a Config: its dotted name, type,
 * field, default, range or valid values and one line of help. Defaults, YAML parsing, range checks,
 * `key=value` overrides, `cliplab help-spec` and config_to_yaml() all derive from it, so a key is
 * added in exactly one place (a field in config.h plus a row in the table).
 *
 * Errors are one line in an Err: "file:line:col: message" for files (1-based, from libyaml marks),
 * "command line: message" for overrides. On error the output Config is left unchanged.
 * Deliberately left out: YAML features a config does not need (tags are ignored, multi-document
 * files are refused) and cross-key checks that need a built model.
 */
#ifndef CLIPLAB_SPEC_H
#define CLIPLAB_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/check.h"
#include "spec/config.h"

typedef enum {
    SPEC_INT,         /* int */
    SPEC_INT64,       /* int64_t */
    SPEC_FLOAT,       /* double */
    SPEC_BOOL,        /* bool: true | false */
    SPEC_STRING,      /* char[size] */
    SPEC_ENUM,        /* char[size], one of names() */
    SPEC_INT_LIST,    /* int[size / elem_size] + int count */
    SPEC_STRING_LIST, /* char[size / elem_size][elem_size] + int count */
} SpecType;

/* Range bounds are inclusive unless flagged open. */
#define SPEC_MIN_OPEN 1u
#define SPEC_MAX_OPEN 2u

typedef struct {
    const char *name; /* dotted, e.g. "train.lr" */
    SpecType type;
    size_t offset;       /* of the field (lists: of the array) in Config */
    size_t size;         /* sizeof the field (lists: of the whole array) */
    size_t elem_size;    /* lists: sizeof one entry */
    size_t count_offset; /* lists: offset of the int entry count */
    const char *def;     /* default, in override syntax ("a,b" for lists); none for an enum, whose
                          * default is its registry's first name */
    double min, max;     /* numbers and list entries */
    unsigned bounds;     /* SPEC_MIN_OPEN | SPEC_MAX_OPEN */
    NameFn names; /* SPEC_ENUM: the registry that lists the valid values */
    const char *help;
    const char *id; /* short name in sweep run ids; NULL = last component (its parent if "kind") */
    bool (*valid)(const char *text); /* strings: format check, NULL = any */
    const char *format;              /* what valid() accepts, for the error message */
} SpecKey;

/* The schema, in section order. */
const SpecKey *spec_keys(int *n);
/* The row of a dotted leaf name, or NULL. */
const SpecKey *spec_find(const char *name);

void config_defaults(Config *c);
/* Loads an experiment file over the defaults (following `base:` includes). 0 or -1 + err. */
int spec_load(const char *path, Config *out, Err *err);
/* The same from text in memory; `name` stands for the file in messages and `base:` paths. */
int spec_load_string(const char *name, const char *text, size_t len, Config *out, Err *err);
/* Applies one "a.b=value" assignment (lists as "[x,y]" or "x,y"). 0 or -1 + err. */
int spec_override(Config *c, const char *assignment, Err *err);
/* Cross-key checks of a complete config (after every override), before anything is built: the
 * objective's own (for contrastive, the loss's constraints at train.batch_size, e.g. dcl needs 2
 * rows, siglip has no one-sided variant). 0, or -1 with one line in err. */
int spec_check(const Config *c, Err *err);
/* The resolved config as YAML text (malloc'd, caller frees); spec_load_string() of it gives an
 * identical Config. */
char *config_to_yaml(const Config *c);
/* Equality over every schema key (not memcmp: padding and bytes after string NULs differ). */
bool config_equal(const Config *a, const Config *b);
/* The schema keys whose values differ between a and b, except those named in ignore (a NULL-
 * terminated list, or NULL): their number, and their names joined by ", " into out [cap] (cut to
 * fit; out may be NULL when cap is 0). */
int config_diff(const Config *a, const Config *b, const char *const *ignore, char *out, size_t cap);

/* Every key (of SECTION, or all when NULL) with type, default, range or valid values, and help,
 * by section. 0, or -1 + err for an unknown section. */
int spec_help_print(FILE *out, const char *section, Err *err);

#endif
