/* fuzz_config.h — the round-trip oracle of the spec targets: an accepted Config dumps to YAML,
 * reloads without error, compares equal, and dumps to the same text again.
 * Deliberately left out: comparing against an independent parser (the dump is the spec of record).
 */
#ifndef CLIPLAB_FUZZ_CONFIG_H
#define CLIPLAB_FUZZ_CONFIG_H

#include "fuzz_util.h"
#include "spec/spec.h"

static inline void fuzz_check_round_trip(const Config *c, const char *what) {
    char *yaml = config_to_yaml(c);
    Config back;
    Err err;
    fuzz_capture_begin();
    int rc = spec_load_string("round-trip.yaml", yaml, strlen(yaml), &back, &err);
    fuzz_check_silent(fuzz_capture_end(), "reloading a dump");
    if (rc) fuzz_fail("%s was accepted but its dump does not reload: %s\n--- dump:\n%s", what, err.msg, yaml);
    if (!config_equal(c, &back)) fuzz_fail("%s: dump reloads to a different config\n--- dump:\n%s", what, yaml);
    char *again = config_to_yaml(&back);
    if (strcmp(yaml, again)) fuzz_fail("%s: dump of the reloaded config differs\n--- first:\n%s--- second:\n%s", what, yaml, again);
    free(again);
    free(yaml);
}

#endif
