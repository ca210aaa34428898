#!/usr/bin/env bash
# ablations/run_ablation.sh NAME PROFILE CLI [JOBS] — what `make ablation-NAME [PROFILE=...]` runs:
# the sweep(s) of the ablation (resuming, so an interrupted job continues where it stopped; JOBS
# runs at once, default one per core), the report with the ablation's answer, and the figures.
set -euo pipefail
name=$1 profile=$2 cli=$3 jobs=${4:-$(nproc)}
# name -> results folder and ablation files, from the one list of ablations
list=$(dirname "$0")/LIST
entry=$(awk -v n="$name" '!/^#/ && $1 == n { $1 = ""; print }' "$list")
if [ -z "$entry" ]; then
  echo "run_ablation.sh: unknown ablation '$name' ($(awk '!/^#/ && NF { printf "%s%s", s, $1; s = ", " }' "$list"))" >&2
  exit 1
fi
read -r dir rest <<<"$entry"
files=()
for f in $rest; do files+=("ablations/$f"); done
case $profile in smoke|quick|long|full) ;; *) echo "run_ablation.sh: PROFILE must be smoke, quick, long or full, not '$profile'" >&2; exit 1 ;; esac
results=results/$dir
[ "$profile" = quick ] || results=results/$dir-$profile
start=$(date +%s)
for f in "${files[@]}"; do
  "$cli" sweep "$f" --profile "$profile" --resume --out "$results" --jobs "$jobs"
done
"$cli" report "$results" | tee "$results/report.txt"
plots/render.sh "$cli" "$dir" "$results"
echo "ablation $name ($profile): $(( $(date +%s) - start )) s; results in $results/, report in $results/report.txt"
