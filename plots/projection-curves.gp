# projection-curves.gp — training efficiency: zero-shot top-1 against images processed for the
# linear and the MLP head (InfoNCE, head on the last stage), one panel per batch size; mean line
# and min..max band over seeds. Input: `dir` = the export folder (per-configuration *.eval.agg.tsv),
# `tap` and `batches` (the swept values to show).
load "plots/common.gp"
if (!exists("tap")) tap = "img.stage4"
if (!exists("batches")) batches = "32 128 256 1024"
set multiplot layout 1,words(batches) title "Zero-shot top-1 (seen colour x shape pairs) vs images processed, InfoNCE, head on ".tap."; band = min..max over seeds"
set xlabel "images processed"
set format x "%.0s%c"
set xtics 10000
set ylabel "zero-shot top-1"
set yrange [0:1]
set key top left
set style fill transparent solid 0.15 noborder
f(h, bs) = dir."/model.head.kind=".h."_model.image.tap=".tap."_train.batch_size=".bs."_loss.kind=infonce.eval.agg.tsv"
m = "zs.colour_shape_seen.top1"
do for [bs in batches] {
    set title "batch ".bs
    plot for [h in "linear mlp"] f(h, bs) using "images":(column(m."_min")):(column(m."_max")) with filledcurves ls (h eq "mlp" ? 2 : 1) notitle, \
         for [h in "linear mlp"] f(h, bs) using "images":(column(m."_mean")) with linespoints ls (h eq "mlp" ? 2 : 1) title h
}
unset multiplot
