# loss-batch.gp — final metrics against batch size, one line per loss (ablations/loss-batch.yaml).
# Input: `series` = folder of per-loss tables <loss>.tsv (plots/split_series.sh).
load "plots/common.gp"
set multiplot layout 1,2 title "Contrastive losses across batch sizes at an equal budget of images (mean over seeds, bars min..max)"
set logscale x 2
set xrange [16:16384]
set yrange [0:1]
set xlabel "batch size (images per step, log scale)"
losses = "infonce siglip dcl align_uniform"
titles = "InfoNCE SigLIP DCL align+uniform"
do for [m in "zs.colour_shape_seen.top1 retrieval.i2t_r1"] {
    set title m
    set ylabel (m eq "retrieval.i2t_r1" ? "image-to-text retrieval R@1" : "zero-shot top-1, seen colour x shape pairs")
    plot for [i=1:4] series."/".word(losses, i).".tsv" using "train.batch_size":(column(m."_mean")):(column(m."_min")):(column(m."_max")) \
         with yerrorlines ls i title word(titles, i)
}
unset multiplot
