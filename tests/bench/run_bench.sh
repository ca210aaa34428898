#!/usr/bin/env bash
# run_bench.sh — cliplab's training step against the same models in PyTorch, as ratios.
#
# `make bench` runs every build/bench/bench_* binary first (bench_train among them, which writes
# <build>/bench/train.tsv), then this script with CLIPLAB=<build>/cliplab. So this script only runs
# bench_train itself when that TSV is missing or older than the binary (the script run by hand),
# then tests/bench/torch_train_ref.py on the TSV's rows (Debian's /usr/bin/python3 with
# python3-torch, the thread count bench_train used), and prints one table: cliplab img/s with and
# without its data time, PyTorch img/s (random inputs, no data loading), their ratio, and each
# side's achieved fraction of a square-product peak measured next to the row in its own process
# (sgemm for cliplab, torch.mm for PyTorch; the same FLOP count for both), whose ratio is the
# comparison least distorted by other jobs on the machine.
# If /usr/bin/python3 cannot import torch, says so in one line and exits 0.
# Deliberately left out: running the C benchmarks (the Makefile's loop does that), plotting.
set -u -o pipefail

CLIPLAB=${CLIPLAB:-build/cliplab}
BENCH_DIR=$(dirname "$CLIPLAB")/bench
TSV=$BENCH_DIR/train.tsv
TORCH_TSV=$BENCH_DIR/torch_train.tsv
BIN=$BENCH_DIR/bench_train
PY=/usr/bin/python3
HERE=$(dirname "$0")

if [ ! -s "$TSV" ] || [ "$BIN" -nt "$TSV" ]; then
    if [ ! -x "$BIN" ]; then
        echo "run_bench: $BIN is not built (make bench builds it)" >&2
        exit 1
    fi
    echo "== $BIN"
    "$BIN" || exit 1
fi

echo "== PyTorch reference (tests/bench/torch_train_ref.py)"
if ! why=$("$PY" -c 'import torch' 2>&1); then
    echo "run_bench: PyTorch comparison skipped: $PY cannot import torch ($(printf '%s\n' "$why" | tail -n 1));" \
         "install Debian's python3-torch to get it"
    exit 0
fi
threads=$(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "threads") c = i } NR == 2 { print $c }' "$TSV")
echo "load before: $(uptime)"
"$PY" "$HERE/torch_train_ref.py" --tsv "$TSV" --threads "${threads:-2}" > "$TORCH_TSV" || {
    echo "run_bench: torch_train_ref.py failed" >&2
    exit 1
}
echo "load after:  $(uptime)"
grep '^#' "$TORCH_TSV"

# Join on (label, B) by column name, so either TSV may gain columns.
awk -F'\t' '
function col(name, file) { if (!((file, name) in idx)) { print "run_bench: no column " name " in " file > "/dev/stderr"; exit 1 } return idx[file, name] }
/^#/ { next }
!(FILENAME in seen) { seen[FILENAME] = 1; for (i = 1; i <= NF; i++) idx[FILENAME, $i] = i; next }
FILENAME == ARGV[1] {
    k = $col("label", FILENAME) SUBSEP $col("B", FILENAME)
    order[++n] = k
    c_img[k] = $col("img_s", FILENAME); c_nd[k] = $col("img_s_nodata", FILENAME)
    c_frac[k] = $col("peak_frac", FILENAME); gflop[k] = $col("step_gflop", FILENAME)
    c_peak[k] = $col("peak_gflops", FILENAME); c_hwm[k] = $col("hwm_mib", FILENAME)
    next
}
{
    k = $col("label", FILENAME) SUBSEP $col("B", FILENAME)
    t_img[k] = $col("img_s", FILENAME); t_peak[k] = $col("mm_peak_gflops", FILENAME); t_hwm[k] = $col("hwm_mib", FILENAME)
}
END {
    printf "\ncliplab vs PyTorch, training step of the same model (img/s: higher is better)\n"
    printf "ratio = cliplab img/s without data / PyTorch img/s; %%peak = GFLOP/s of the step (bench_train'"'"'s FLOP\n"
    printf "count) / the square-product peak measured next to the row in the same process; %%peak ratio =\n"
    printf "cliplab %%peak / PyTorch %%peak, the load-robust version of the ratio\n"
    printf "%-23s %5s %8s %8s %8s %6s %7s %7s %7s %6s %6s %6s\n", "config", "B", "cl img/s", "cl nd", "torch", \
           "ratio", "cl%pk", "pt%pk", "%pkrat", "clHWM", "ptHWM", "peaks"
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, kb, SUBSEP)
        if (!(k in t_img)) { printf "%-23s %5d   (no PyTorch row)\n", kb[1], kb[2]; continue }
        b = kb[2]; ratio = c_nd[k] / t_img[k]
        t_frac = gflop[k] * t_img[k] / b / t_peak[k]
        printf "%-23s %5d %8.0f %8.0f %8.0f %6.2f %6.1f%% %6.1f%% %7.2f %6.0f %6.0f %3.0f/%.0f\n", kb[1], b, c_img[k], \
               c_nd[k], t_img[k], ratio, 100 * c_frac[k], 100 * t_frac, c_frac[k] / t_frac, c_hwm[k], t_hwm[k], \
               c_peak[k], t_peak[k]
        lr += log(ratio); lp += log(c_frac[k] / t_frac); m++
    }
    if (m) printf "geometric mean over %d rows: ratio %.2f, %%peak ratio %.2f  (> 1: cliplab faster)\n", m, exp(lr / m), exp(lp / m)
}' "$TSV" "$TORCH_TSV"
