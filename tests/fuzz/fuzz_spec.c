/* fuzz_spec.c — libFuzzer target: experiment files with `base:` includes (spec_load).
 *
 * Input: the experiment file, optionally followed by "\n%%base%%\n" and the text of a second file
 * experiments/b.yaml, which the first can include (`base: b.yaml`) or which can include the real
 * experiments copied next to it (`base: contrastive.yaml`) or the first file (a cycle).
 * Oracles: sanitizers; nothing printed; an error is one line naming a file of the scratch folder;
 * an accepted spec round-trips (fuzz_config.h).
 */
#include "fuzz_config.h"


int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init(true);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_with_base(data, size, "experiments/fuzz.yaml");

    Config c;
    Err err;
    fuzz_capture_begin();
    int rc = spec_load(path, &c, &err);
    fuzz_check_silent(fuzz_capture_end(), "spec_load");
    const char *const prefixes[] = {fuzz_dir, NULL};
    if (rc) fuzz_check_error(&err, prefixes);
    else fuzz_check_round_trip(&c, "the spec");
    return 0;
}
