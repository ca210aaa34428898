# efficiency.gp — CLIP Fig. 2 on shapes: zero-shot top-1 against images processed (log x) for the
# caption LM, bag-of-words prediction and contrastive (CBOW / transformer text), mean line and
# min..max band over seeds, one panel per caption_noise. The ratios with their intervals, against
# the target, are efficiency-ratio.gp.
# Inputs: `dir` (the export folder), `noises` (space-separated caption_noise values as they appear
# in the file names), `metric` (default zs.colour_shape_seen.top1).
load "plots/common.gp"
if (!exists("metric")) metric = "zs.colour_shape_seen.top1"
n = words(noises)
set multiplot layout 1,n title "CLIP Fig. 2 on shapes: zero-shot top-1 (".metric.") vs images processed; mean, min..max band over seeds"
set logscale x 10
set xlabel "images processed (log scale)"
set ylabel "zero-shot top-1"
# headroom above 1 for the key, which spans a narrow panel and would hide curves that near 1
set yrange [0:1.3]
set ytics 0, 0.2, 1
set style fill transparent solid 0.15 noborder
arm_file(arm, noise) = dir."/".arm."data.caption_noise=".noise.".eval.agg.tsv"
arms = "objective.kind=caption_ objective.kind=bow_ objective.kind=contrastive_ objective.kind=contrastive_model.text.kind=transformer_"
titles = "caption-LM bag-of-words contrastive-(CBOW) contrastive-(transformer)"
do for [i=1:n] {
    noise = word(noises, i)
    set title "caption_noise = ".noise
    plot for [a=1:4] arm_file(word(arms, a), noise) using "images":(column(metric."_min")):(column(metric."_max")) with filledcurves ls a notitle, \
         for [a=1:4] arm_file(word(arms, a), noise) using "images":(column(metric."_mean")) with linespoints ls a title word(titles, a)
}
unset multiplot
