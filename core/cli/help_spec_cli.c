/* help_spec_cli.c — `cliplab help-spec [SECTION]`: every spec key with its type, default, range
 * and help (printed by spec/spec.c from the schema table). */
#include <stdio.h>

#include "cli/cli.h"
#include "spec/spec.h"

static const char HELP_SPEC_USAGE[] =
    "usage: cliplab help-spec [SECTION]\n"
    "Lists every experiment spec key (or those of SECTION, e.g. train) with type, default, range\n"
    "and help.\n";

int help_spec_main(int argc, char **argv) {
    const char *pos[1];
    int n_pos;
    const CliSpec spec = {"help-spec", HELP_SPEC_USAGE, NULL, 0, 0, 1};
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    Err err;
    if (spec_help_print(stdout, n_pos ? pos[0] : NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    return 0;
}
