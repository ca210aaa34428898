# tap.gp — linear-probe accuracy by layer depth, one line per head position (ablations/tap.yaml).
# Input: `data` = a long table (tap, depth, mean, min, max) that plots/render.sh pivots out of
# summary.tsv; depth 5 is the post-head embedding.
load "plots/common.gp"
set title "Linear-probe accuracy by layer (mean over seeds, bars min..max), one line per head position"
set xlabel "representation (image tower stage, then the joint embedding after the head)"
set ylabel "linear-probe test accuracy"
set xrange [0.5:5.5]
set xtics ("stage1" 1, "stage2" 2, "stage3" 3, "stage4" 4, "post-head" 5)
set yrange [0:1]
sel(t, v) = strcol("tap") eq t ? v : NaN
plot for [i=1:4] data using (sel("img.stage".i, column("depth"))):"mean":"min":"max" with yerrorbars ls i notitle, \
     for [i=1:4] data using (sel("img.stage".i, column("depth"))):"mean" smooth unique with lines ls i title "head on img.stage".i
