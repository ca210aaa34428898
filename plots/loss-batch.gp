# loss-batch.gp — final metric against batch size, one line per loss (ablations/loss-batch.yaml).
# Input: `data` = summary.tsv.
load "plots/common.gp"
set multiplot layout 1,2 title "Contrastive losses across batch sizes at an equal budget of images (mean over seeds, bars min..max)"
set logscale x 2
set xlabel "batch size (images per step, log scale)"
set yrange [0:1]
set xrange [16:16384]
sel(l, v) = strcol("loss.kind") eq l ? v : NaN
do for [m in "zs.colour_shape_seen.top1 retrieval.i2t_r1"] {
    set title m
    set ylabel (m eq "retrieval.i2t_r1" ? "image-to-text retrieval R@1" : "zero-shot top-1, seen colour x shape pairs")
    plot for [i=1:4] data using (sel(word("infonce siglip dcl align_uniform", i), column("train.batch_size"))):(column(m."_mean")):(column(m."_min")):(column(m."_max")) \
         with yerrorbars ls i notitle, \
         for [i=1:4] data using (sel(word("infonce siglip dcl align_uniform", i), column("train.batch_size"))):(column(m."_mean")) smooth unique with lines ls i title word("InfoNCE SigLIP DCL align+uniform", i)
}
unset multiplot
