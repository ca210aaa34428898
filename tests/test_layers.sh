#!/usr/bin/env bash
# test_layers.sh — the layering rule of docs/DESIGN.md, checked on every #include under core/:
# a module includes only its own headers and those of modules of lower rank. The ranks are read
# from the table between the layer-ranks markers of docs/DESIGN.md, so the document and the check
# cannot drift apart. Also: every core/ folder has a rank, and no file under core/ but the CLI
# includes the public header cliplab.h. Prints cmocka-style lines for tests/run_tests.sh.
set -u
cd "$(dirname "$0")/.." || exit 1
declare -A rank
while read -r r mods; do
  for m in $mods; do rank[$m]=$r; done
done < <(sed -n '/<!-- layer-ranks: begin -->/,/<!-- layer-ranks: end -->/p' docs/DESIGN.md |
         sed -n 's/^| *\([0-9][0-9]*\) *| *\([a-z ]*[a-z]\) *|$/\1 \2/p')
bad=()
[ ${#rank[@]} -gt 0 ] || bad+=("docs/DESIGN.md: no layer-ranks table")
for d in core/*/; do
  m=$(basename "$d")
  [ -n "${rank[$m]+x}" ] || bad+=("core/$m/ has no rank in docs/DESIGN.md")
done
while IFS=: read -r file line inc; do
  m=${file#core/}; m=${m%%/*}
  [ -n "${rank[$m]+x}" ] || continue
  target=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$inc")
  if [ "$target" = cliplab.h ]; then
    bad+=("$file:$line: includes the public header cliplab.h")
    continue
  fi
  [[ $target == */* ]] || continue           # a header of the same folder
  t=${target%%/*}
  [ "$t" = "$m" ] && continue
  if [ -z "${rank[$t]+x}" ]; then bad+=("$file:$line: includes $target of unknown module $t"); continue; fi
  if [ "${rank[$t]}" -ge "${rank[$m]}" ]; then
    bad+=("$file:$line: $m (rank ${rank[$m]}) includes $target of $t (rank ${rank[$t]})")
  fi
done < <(grep -rn --include='*.[ch]' -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' core/*/)
echo "[ RUN      ] test_layers_includes_point_down"
if [ ${#bad[@]} -eq 0 ]; then
  echo "[       OK ] test_layers_includes_point_down"
  echo "[  PASSED  ] 1 test(s)."
  exit 0
fi
printf '%s\n' "${bad[@]}"
echo "[  FAILED  ] test_layers_includes_point_down"
echo "[  FAILED  ] 1 test(s), listed below:"
exit 1
