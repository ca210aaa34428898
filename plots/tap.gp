# tap.gp — linear-probe accuracy by layer depth, one line per head position (ablations/tap.yaml).
# Input: `series` = folder of per-tap tables <tap>.tsv (depth, mean, min, max; depth 5 is the
# post-head embedding) that plots/render.sh pivots out of the summary.
load "plots/common.gp"
set title "Linear-probe accuracy by layer (mean over seeds, bars min..max), one line per head position"
set xlabel "representation (image tower stage, then the joint embedding after the head)"
set ylabel "linear-probe test accuracy"
set xrange [0.5:5.5]
set xtics ("stage1" 1, "stage2" 2, "stage3" 3, "stage4" 4, "post-head" 5)
set yrange [0:1]
plot for [i=1:4] series."/img.stage".i.".tsv" using "depth":"mean":"min":"max" with yerrorlines ls i title "head on img.stage".i
