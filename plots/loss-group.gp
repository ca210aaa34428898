# loss-group.gp — final metrics against the loss's group size at a fixed batch, one line per loss
# (ablations/loss-group.yaml): more negatives at the same images and steps.
# Input: `series` = folder of per-loss tables <loss>.tsv (plots/split_series.sh).
load "plots/common.gp"
set multiplot layout 1,2 title "Negatives only within groups of g rows, fixed batch and steps (mean over seeds, bars min..max)"
set logscale x 2
set xrange [1:2048]
set yrange [0:1]
set xlabel "group size g (negatives per row + 1, log scale)"
losses = "infonce siglip dcl"
titles = "InfoNCE SigLIP DCL"
do for [m in "zs.colour_shape_seen.top1 retrieval.i2t_r1"] {
    set title m
    set ylabel (m eq "retrieval.i2t_r1" ? "image-to-text retrieval R@1" : "zero-shot top-1, seen colour x shape pairs")
    plot for [i=1:3] series."/".word(losses, i).".tsv" using "loss.group_size":(column(m."_mean")):(column(m."_min")):(column(m."_max")) \
         with yerrorlines ls i title word(titles, i)
}
unset multiplot
