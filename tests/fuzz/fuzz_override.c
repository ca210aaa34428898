/* fuzz_override.c — libFuzzer target: command-line `key=value` overrides (spec_override).
 *
 * Input: assignments, one per line (a NUL also ends one, as argv would), applied in order to the
 * defaults, or, when the first line is "@NAME", to the real experiments/NAME.yaml.
 * Oracles: sanitizers; nothing printed; an error is one line starting "command line: " and leaves
 * the config unchanged; an accepted assignment applied again changes nothing; the final config
 * round-trips (fuzz_config.h).
 */
#include "fuzz_config.h"

#define MAX_ASSIGNMENTS 64

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init(true);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    Config c;
    config_defaults(&c);
    Err err;
    const char *const prefixes[] = {"command line: ", NULL};
    char *line = text, *end = text + size;
    if (size > 1 && text[0] == '@') {
        size_t n = strcspn(text, "\n");
        line[n] = 0;
        char rel[300];
        snprintf(rel, sizeof rel, "experiments/%.200s.yaml", text + 1);
        if (!strchr(text + 1, '/') && !access(fuzz_path(rel), R_OK) && spec_load(fuzz_path(rel), &c, &err))
            fuzz_fail("a real experiment does not load: %s", err.msg);
        line += n + (line + n < end);
    }
    for (int i = 0; i < MAX_ASSIGNMENTS && line < end; i++) {
        size_t n = strcspn(line, "\n");
        line[n] = 0;
        Config before = c;
        fuzz_capture_begin();
        int rc = spec_override(&c, line, &err);
        fuzz_check_silent(fuzz_capture_end(), "spec_override");
        if (rc) {
            fuzz_check_error(&err, prefixes);
            if (!config_equal(&before, &c)) fuzz_fail("failed override '%s' changed the config", line);
        } else {
            Config once = c;
            if (spec_override(&c, line, &err)) fuzz_fail("override '%s' accepted once, refused again: %s", line, err.msg);
            if (!config_equal(&once, &c)) fuzz_fail("override '%s' is not idempotent", line);
        }
        line += n + 1;
    }
    fuzz_check_round_trip(&c, "the overridden config");
    free(text);
    return 0;
}
