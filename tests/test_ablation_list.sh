#!/usr/bin/env bash
# test_ablation_list.sh — ablations/LIST is the one list of ablations: every ablation file is in
# it once, every file it names exists, and the Makefile, run_ablation.sh and render.sh follow it
# (an unknown name is one line naming the listed ones, exit 1). Prints cmocka-style lines for
# tests/run_tests.sh.
set -u
cd "$(dirname "$0")/.." || exit 1
list=ablations/LIST bad=()
listed=$(awk '!/^#/ && NF { for (i = 3; i <= NF; i++) print $i }' "$list")
for f in ablations/*.yaml; do
  n=$(grep -cx "$(basename "$f")" <<<"$listed")
  [ "$n" = 1 ] || bad+=("$f is listed $n times in $list")
done
for f in $listed; do [ -f "ablations/$f" ] || bad+=("$list names ablations/$f, which does not exist"); done
names=$(awk '!/^#/ && NF { printf "%s%s", s, $1; s = ", " }' "$list")
targets=$(make -s -n -p 2>/dev/null | sed -n 's/^ABLATIONS := //p' | head -1)
want=$(awk '!/^#/ && NF { printf "%sablation-%s", s, $1; s = " " }' "$list")
[ "$targets" = "$want" ] || bad+=("Makefile targets '$targets' are not those of $list ('$want')")
err=$(ablations/run_ablation.sh no-such smoke /bin/false 2>&1 >/dev/null); rc=$?
{ [ $rc = 1 ] && [ "$(wc -l <<<"$err")" = 1 ] && [[ $err == *"($names)"* ]]; } ||
  bad+=("run_ablation.sh with an unknown name: status $rc, stderr: $err")
err=$(plots/render.sh /bin/true no-such /nonexistent 2>&1 >/dev/null); rc=$?
{ [ $rc = 1 ] && [ "$(wc -l <<<"$err")" = 1 ]; } || bad+=("render.sh with an unknown folder: status $rc, stderr: $err")
echo "[ RUN      ] test_ablation_list_is_the_one_list"
if [ ${#bad[@]} -eq 0 ]; then
  echo "[       OK ] test_ablation_list_is_the_one_list"
  echo "[  PASSED  ] 1 test(s)."
  exit 0
fi
printf '%s\n' "${bad[@]}"
echo "[  FAILED  ] test_ablation_list_is_the_one_list"
echo "[  FAILED  ] 1 test(s), listed below:"
exit 1
