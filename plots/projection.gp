# projection.gp — linear vs MLP projection head (ablations/projection.yaml): a final metric against
# batch size, one panel per image tap, a line per head x loss; bars span min..max over seeds.
# Input: `series` = folder of per-series tables <head>_<tap>_<loss>.tsv (plots/split_series.sh).
load "plots/common.gp"
if (!exists("metric")) metric = "zs.colour_shape_seen.top1"
if (!exists("ylabel")) ylabel = "zero-shot top-1, seen colour x shape pairs"
if (!exists("taps")) taps = "img.stage3 img.stage4"
set multiplot layout 1,words(taps) title sprintf("Linear vs MLP projection head: %s (mean over seeds, bars min..max)", ylabel)
set logscale x 2
set xrange [16:2048]  # fixed, so an empty panel (a profile without that tap) still renders
set yrange [0:1]
set xlabel "batch size (images per step, log scale)"
set ylabel ylabel
f(h, t, l) = series."/".h."_".t."_".l.".tsv"
heads = "linear mlp linear mlp"
losses = "infonce infonce siglip siglip"
titles = "linear,InfoNCE MLP,InfoNCE linear,SigLIP MLP,SigLIP"
do for [tap in taps] {
    set title "head on ".tap
    plot for [i=1:4] f(word(heads, i), tap, word(losses, i)) using "train.batch_size":(column(metric."_mean")):(column(metric."_min")):(column(metric."_max")) \
         with yerrorlines ls i title word(titles, i)
}
unset multiplot
