# projection-probe.gp — linear-probe accuracy before the head (h, the tapped stage) and after it
# (z, the joint embedding), linear vs MLP head, InfoNCE, one panel per tap (SimCLR's h vs z).
# Input: `series` = folder of per-series tables <head>_<tap>_<loss>.tsv (plots/split_series.sh).
load "plots/common.gp"
if (!exists("taps")) taps = "img.stage3 img.stage4"
set multiplot layout 1,words(taps) title "Linear probe on the probe task before (h) and after (z) the projection head, InfoNCE (bars min..max over seeds)"
set logscale x 2
set xrange [16:2048]
set yrange [0:1]
set xlabel "batch size (images per step, log scale)"
set ylabel "linear-probe test accuracy"
f(h, t) = series."/".h."_".t."_infonce.tsv"
do for [tap in taps] {
    set title "head on ".tap
    plot for [h in "linear mlp"] f(h, tap) using "train.batch_size":"probe.pre_head_mean":"probe.pre_head_min":"probe.pre_head_max" \
             with yerrorlines ls (h eq "mlp" ? 2 : 1) title h." head: h (pre-head)", \
         for [h in "linear mlp"] f(h, tap) using "train.batch_size":"probe.post_head_mean":"probe.post_head_min":"probe.post_head_max" \
             with yerrorlines ls (h eq "mlp" ? 2 : 1) dt 2 title h." head: z (post-head)"
}
unset multiplot
