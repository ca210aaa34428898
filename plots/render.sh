#!/usr/bin/env bash
# plots/render.sh CLI ABLATION RESULTS_DIR — exports an ablation's results to TSV (under
# build/plots-data/) and renders its figures as PNG and SVG with gnuplot into $PLOTS_OUT
# (default plots/). A profile's own results folder (results/efficiency-long, as run_ablation.sh
# names it) gets figures of its own (efficiency-long.png), so it never overwrites the quick ones.
set -euo pipefail
cli=$1 name=$2 results=$3
if ! awk -v d="$name" '!/^#/ && $2 == d { found = 1 } END { exit !found }' "$(dirname "$0")/../ablations/LIST"; then
  echo "render.sh: '$name' is not a results folder of ablations/LIST" >&2
  exit 1
fi
out_dir=${PLOTS_OUT:-plots}
base=$(basename "$results") tag=
case $base in "$name"-smoke|"$name"-long|"$name"-full) tag=${base#"$name"} ;; esac
mkdir -p "$out_dir"
data=${PLOTS_DATA:-build/plots-data}/$(basename "$results")
rm -rf "$data" && mkdir -p "$data"
"$cli" export "$results" --out "$data"
sum=$data/summary.tsv
# distinct values of a summary column, in numeric-then-text order, space-separated
values_of() {
  awk -F'\t' -v c="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } k { print $k }' "$sum" | sort -gu | tr '\n' ' '
}
render() { # render SCRIPT OUTNAME [extra gnuplot assignments]
  local script=$1 out=$2$tag; shift 2
  for fmt in png svg; do
    gnuplot -e "fmt='$fmt'; out='$out_dir/$out'; dir='$data'; series='$data/series'; $*" "plots/$script" \
      2> >(grep -v -e "no valid points" -e "Cannot find or open file" >&2)
  done
  echo "$out_dir/$out.png $out_dir/$out.svg"
}
case $name in
  projection)
    plots/split_series.sh "$sum" train.batch_size "model.head.kind model.image.tap loss.kind" "$data/series"
    # panels for the taps and batch sizes this profile swept (smoke has fewer than quick)
    taps=$(values_of model.image.tap) batches=$(values_of train.batch_size)
    last_tap=$(echo $taps | awk '{ print $NF }')
    render projection.gp projection-zeroshot "taps='$taps'"
    render projection.gp projection-retrieval "taps='$taps'; metric='retrieval.i2t_r1'; ylabel='image-to-text retrieval R@1'"
    render projection-probe.gp projection-probe "taps='$taps'"
    render projection-curves.gp projection-curves "tap='$last_tap'; batches='$batches'" ;;
  efficiency)
    noises=$(ls "$data" | sed -n 's/^objective.kind=bow_data.caption_noise=\(.*\).eval.agg.tsv$/\1/p' | sort -g | tr '\n' ' ')
    # the ratios' metric: the ablation's first reported zero-shot metric, as `cliplab report` uses
    metric=$(sed -n 's/^report: //p' "$results/ablation.txt" | tr ',' '\n' | grep -m1 '^zs\.' || echo zs.colour_shape_seen.top1)
    render efficiency.gp efficiency "noises='$noises'; metric='$metric'"
    # the ratio-vs-target figure, one panel per ratio (fast/slow), one line per group
    eff=$data/efficiency.tsv
    if [ -f "$eff" ]; then
      ratios=$(awk -F'\t' 'NR > 1 { print $2 }' "$eff" | awk '!seen[$0]++' | tr '\n' ' ')
      groups=$(awk -F'\t' 'NR > 1 { print $1 }' "$eff" | awk '!seen[$0]++' | tr '\n' ' ')
      render efficiency-ratio.gp efficiency-ratio "ratios='$ratios'; groups='$groups'"
    fi ;;
  loss-batch)
    plots/split_series.sh "$sum" train.batch_size "loss.kind" "$data/series"
    render loss-batch.gp loss-batch ;;
  loss-group)
    plots/split_series.sh "$sum" loss.group_size "loss.kind" "$data/series"
    render loss-group.gp loss-group ;;
  tap)
    # pivot: one row per (trained tap, probed layer)
    awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; print "tap\tdepth\tmean\tmin\tmax"; next }
      { for (k = 1; k <= 5; k++) { m = (k < 5) ? "probe.img.stage" k : "probe.post_head";
          if ((m "_mean") in col) print $col["model.image.tap"] "\t" k "\t" $col[m "_mean"] "\t" $col[m "_min"] "\t" $col[m "_max"] } }' \
      "$sum" > "$data/tap-by-layer.tsv"
    plots/split_series.sh "$data/tap-by-layer.tsv" depth "tap" "$data/series"
    render tap.gp tap ;;
  *) echo "render.sh: no figures for ablation '$name'" >&2 ;;
esac
