# projection-probe.gp — linear-probe accuracy before the head (h, the tapped stage) and after it
# (z, the joint embedding), linear vs MLP head, InfoNCE, one panel per tap (SimCLR's h vs z).
# Input: `data` = summary.tsv.
load "plots/common.gp"
set multiplot layout 1,2 title "Linear probe on the probe task before (h) and after (z) the projection head, InfoNCE (bars min..max over seeds)"
set logscale x 2
set xlabel "batch size (images per step, log scale)"
set ylabel "linear-probe test accuracy"
set yrange [0:1]
set xrange [16:2048]  # fixed, so an empty panel (a profile without that tap) still renders
sel(h, t, v) = (strcol("model.head.kind") eq h && strcol("model.image.tap") eq t && strcol("loss.kind") eq "infonce") ? v : NaN
do for [tap in "img.stage3 img.stage4"] {
    set title "head on ".tap
    plot data using (sel("linear", tap, column("train.batch_size"))):"probe.pre_head_mean":"probe.pre_head_min":"probe.pre_head_max" with yerrorlines ls 1 title "linear head: h (pre-head)", \
         data using (sel("linear", tap, column("train.batch_size"))):"probe.post_head_mean":"probe.post_head_min":"probe.post_head_max" with yerrorlines ls 1 dt 2 title "linear head: z (post-head)", \
         data using (sel("mlp", tap, column("train.batch_size"))):"probe.pre_head_mean":"probe.pre_head_min":"probe.pre_head_max" with yerrorlines ls 2 title "MLP head: h (pre-head)", \
         data using (sel("mlp", tap, column("train.batch_size"))):"probe.post_head_mean":"probe.post_head_min":"probe.post_head_max" with yerrorlines ls 2 dt 2 title "MLP head: z (post-head)"
}
unset multiplot
