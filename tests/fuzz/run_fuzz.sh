#!/usr/bin/env bash
# Runs each libFuzzer target for a fixed time on its seed corpus (tests/fuzz/<target>/) with its
# dictionary, and reports like a cmocka binary ("[  PASSED  ] N test(s)." / "[  FAILED  ] ..."), so
# tests/run_tests.sh counts one test per target. Exits non-zero if any target found something.
#   tests/fuzz/run_fuzz.sh [SECONDS [TARGET...]]       (default: $FUZZ_SECONDS or 3 s, all targets)
# Environment: FUZZ_BIN_DIR (default build/fuzz); FUZZ_CORPUS_DIR keeps the corpus grown by the
# run in FUZZ_CORPUS_DIR/<target> (default: a temporary folder, removed); FUZZ_SEED fixes
# libFuzzer's random seed (`make test` uses 1, so CI replays the same mutations every time);
# FUZZ_KEEP_GOING=1 keeps fuzzing after a finding (libFuzzer's fork mode) and counts them.
# A finding is saved as $FUZZ_BIN_DIR/artifacts/<target>-crash-<sha1> (or -leak-, -timeout-,
# -oom-); replay it with  $FUZZ_BIN_DIR/fuzz_<target> <that file>
set -u
cd "$(dirname "$0")/../.."
seconds=${1:-${FUZZ_SECONDS:-3}}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(spec override ablation idx runfile)
bin_dir=${FUZZ_BIN_DIR:-build/fuzz}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$bin_dir/artifacts"
passed=0; failed=()
for t in "${targets[@]}"; do
  bin=$bin_dir/fuzz_$t
  dict=tests/fuzz/$t.dict
  case $t in spec|override|ablation) dict=$bin_dir/spec.dict ;; esac
  corpus=${FUZZ_CORPUS_DIR:-$tmp}/$t
  mkdir -p "$corpus"
  log=$tmp/$t.log
  # -timeout: one input taking longer is a finding (quadratic parsing); -rss_limit_mb also caps
  # single allocations (malloc_limit_mb defaults to it), so sizes taken from a file are checked.
  opts=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1
        -artifact_prefix="$bin_dir/artifacts/$t-")
  [ -n "${FUZZ_SEED:-}" ] && opts+=(-seed="$FUZZ_SEED")
  [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && opts+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  before=$(ls "$bin_dir/artifacts" | grep -c "^$t-")
  "$bin" "${opts[@]}" "$corpus" "tests/fuzz/$t" >"$log" 2>&1
  rc=$?
  found=$(( $(ls "$bin_dir/artifacts" | grep -c "^$t-") - before ))
  [ "$found" -gt 0 ] && [ $rc -eq 0 ] && rc=1
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -z "$execs" ] && execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' "$log" | tail -1)  # fork mode
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  [ -n "${FUZZ_LOG_DIR:-}" ] && mkdir -p "$FUZZ_LOG_DIR" && cp "$log" "$FUZZ_LOG_DIR/$t.log"
  if [ $rc -eq 0 ]; then
    echo "[       OK ] fuzz_$t: ${seconds}s, ${execs:-?} executions, ${cov:-cov: ?}, no findings"
    passed=$((passed + 1))
  else
    echo "[  ERROR   ] fuzz_$t (exit $rc) after ${execs:-?} executions, $found new finding(s) in $bin_dir/artifacts:"
    grep -E 'ERROR|fuzz oracle|check failed|SUMMARY|Test unit written|^    #[0-9]' "$log" | head -30
    failed+=("fuzz_$t")
  fi
done
echo "[  PASSED  ] $passed test(s)."
if [ ${#failed[@]} -gt 0 ]; then
  echo "[  FAILED  ] ${#failed[@]} test(s), listed below:"
  for f in "${failed[@]}"; do echo "[  FAILED  ] $f"; done
  exit 1
fi
