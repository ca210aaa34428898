# projection.gp — linear vs MLP projection head (ablations/projection.yaml): final metrics against
# batch size, one panel per image tap, a line per head x loss; bars span min..max over seeds.
# Lines are drawn with `smooth unique` so that rows of other series (filtered to NaN) do not
# break them.
# Input: `data` = summary.tsv written by `cliplab export`.
load "plots/common.gp"
if (!exists("metric")) metric = "zs.colour_shape_seen.top1"
if (!exists("ylabel")) ylabel = "zero-shot top-1, seen colour x shape pairs"
set multiplot layout 1,2 title sprintf("Linear vs MLP projection head: %s (mean over seeds, bars min..max)", ylabel)
set logscale x 2
set xlabel "batch size (images per step, log scale)"
set ylabel ylabel
set yrange [0:1]
set xrange [16:2048]  # fixed, so an empty panel (a profile without that tap) still renders
sel(h, t, l, v) = (strcol("model.head.kind") eq h && strcol("model.image.tap") eq t && strcol("loss.kind") eq l) ? v : NaN
do for [tap in "img.stage3 img.stage4"] {
    set title "head on ".tap
    plot data using (sel("linear", tap, "infonce", column("train.batch_size"))):(column(metric."_mean")):(column(metric."_min")):(column(metric."_max")) with yerrorlines ls 1 title "linear, InfoNCE", \
         data using (sel("mlp", tap, "infonce", column("train.batch_size"))):(column(metric."_mean")):(column(metric."_min")):(column(metric."_max")) with yerrorlines ls 2 title "MLP, InfoNCE", \
         data using (sel("linear", tap, "siglip", column("train.batch_size"))):(column(metric."_mean")):(column(metric."_min")):(column(metric."_max")) with yerrorlines ls 3 dt 2 title "linear, SigLIP", \
         data using (sel("mlp", tap, "siglip", column("train.batch_size"))):(column(metric."_mean")):(column(metric."_min")):(column(metric."_max")) with yerrorlines ls 4 dt 2 title "MLP, SigLIP"
}
unset multiplot
