#!/usr/bin/env bash
# Runs each cmocka test binary given as an argument, prints its output, and closes with one
# summary line "N passed, N failed" over all test cases; exits non-zero if any binary failed.
set -u
passed=0; failed=0; bad_bins=()
for bin in "$@"; do
  echo "== $bin"
  out=$("$bin" 2>&1); rc=$?
  echo "$out"
  p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' | awk '{s+=$1} END {print s+0}')
  f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ $rc -ne 0 ]; then
    bad_bins+=("$bin")
    [ "$f" -eq 0 ] && failed=$((failed + 1))
  fi
done
echo
[ ${#bad_bins[@]} -gt 0 ] && echo "failing binaries: ${bad_bins[*]}"
echo "$passed passed, $failed failed"
[ ${#bad_bins[@]} -eq 0 ]
