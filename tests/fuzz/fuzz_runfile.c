/* fuzz_runfile.c — libFuzzer target: the run-file reader behind `cliplab report` and `export`.
 *
 * Input: the bytes of one file, written as runs/fuzz.h5 next to a real finished run (runs/good.h5,
 * the seed tests/fuzz/runfile/smoke-completed.h5). Then what `report` and `export` do: scan, the
 * run table with aggregates over seeds, the axis comparison and the efficiency ratios, the TSV
 * export and the summary TSV.
 * libhdf5 itself is not instrumented: a crash inside it shows as a plain SEGV without a sanitizer
 * report (see tests/fuzz/README.md).
 * Oracles: sanitizers; libFuzzer's malloc limit (an allocation sized by what a file claims);
 * a bad file costs at most one "warning: skipping '<file>': ..." line per scan and never hides the
 * good run; the scan and the export succeed.
 */
#include "analysis/analysis.h"
#include "analysis/efficiency.h"
#include "fuzz_util.h"
#include "log/h5io.h"
#include "log/report.h"

/* Leaks whose allocation is inside libhdf5 are libhdf5's own: on some corrupt files it loses
 * metadata-cache blocks (H5FL) while cliplab's calls have all returned and closed their ids, which
 * the open-object check below verifies. Everything cliplab allocates is still checked. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5_serial.so\n"; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init(false);
    fuzz_mkdir("runs");
    size_t n;
    char *good = fuzz_read(FUZZ_TREE "/tests/fuzz/runfile/smoke-completed.h5", &n);
    fuzz_write(fuzz_path("runs/good.h5"), good, n);
    free(good);
    return 0;
}

/* At most `max_lines` lines, each a warning naming the fuzzed file. */
static void check_warnings(const char *captured, int max_lines, const char *what) {
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "warning: skipping '%s': ", fuzz_path("runs/fuzz.h5"));
    int lines = 0;
    for (const char *p = captured; *p; lines++) {
        const char *nl = strchr(p, '\n');
        if (!nl) fuzz_fail("%s: stderr does not end with a newline: %s", what, captured);
        if (strncmp(p, prefix, strlen(prefix))) fuzz_fail("%s printed something other than one warning: %s", what, captured);
        p = nl + 1;
    }
    if (lines > max_lines) fuzz_fail("%s printed %d lines for one bad file: %s", what, lines, captured);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(fuzz_path("runs/fuzz.h5"), data, size);
    const char *dir = fuzz_path("runs");
    RunInfo *runs;
    int n;
    Err err;
    fuzz_capture_begin();
    if (report_scan(dir, &runs, &n, &err)) fuzz_fail("report_scan failed on a readable folder: %s", err.msg);
    check_warnings(fuzz_capture_end(), 1, "report_scan");
    bool good = false;
    for (int i = 0; i < n; i++) good |= !strcmp(runs[i].run_id, "good");
    if (!good) fuzz_fail("the bad file hid the good run");

    FILE *devnull = fopen("/dev/null", "w");
    fuzz_capture_begin();
    report_print(devnull, runs, n, NULL, 0);
    analysis_compare_axis(devnull, runs, n, "model.head.kind", NULL, NULL, 0, NULL);
    static EfficiencySpec spec; /* the Fig. 2 arms of ablations/efficiency.yaml */
    if (!spec.n_ratios) {
        Err e;
        const char *arms[] = {"caption objective.kind=caption", "bow objective.kind=bow",
                              "contrastive objective.kind=contrastive,model.text.kind!=transformer"};
        for (int i = 0; i < 3; i++) efficiency_add_arm(&spec, arms[i], &e);
        efficiency_add_ratio(&spec, "bow/caption", &e);
        efficiency_add_ratio(&spec, "contrastive/bow", &e);
    }
    analysis_efficiency(devnull, devnull, runs, n, "zs.colour_shape_seen.top1", &spec);
    check_warnings(fuzz_capture_end(), 0, "report_print / analysis");
    fclose(devnull);

    fuzz_capture_begin();
    if (analysis_write_summary_tsv(fuzz_path("summary.tsv"), runs, n)) fuzz_fail("cannot write the summary TSV");
    if (report_export(dir, fuzz_path("export"), &err)) fuzz_fail("report_export failed: %s", err.msg);
    check_warnings(fuzz_capture_end(), 1, "report_export");
    report_free(runs, n);
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids) fuzz_fail("%zd HDF5 objects left open after report and export", open_ids);
    return 0;
}
