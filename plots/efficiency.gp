# efficiency.gp — CLIP Fig. 2 on shapes: zero-shot top-1 against images processed (log x) for the
# caption LM, bag-of-words prediction and contrastive (CBOW / transformer text), mean line and
# min..max band over seeds, one panel per caption_noise; arrows mark the two ratios (images the
# slower arm needed for its best accuracy -> images the faster arm needed for the same accuracy).
# Inputs: `dir` (the export folder), `noises` (space-separated caption_noise values as they appear
# in the file names), `metric` (default zs.colour_shape_seen.top1).
load "plots/common.gp"
if (!exists("metric")) metric = "zs.colour_shape_seen.top1"
n = words(noises)
set multiplot layout 1,n title "CLIP Fig. 2 on shapes: zero-shot top-1 (".metric.") vs images processed; mean, min..max band over seeds; arrows: efficiency ratios"
set logscale x 10
set xlabel "images processed (log scale)"
set ylabel "zero-shot top-1"
set yrange [0:1]
set style fill transparent solid 0.15 noborder
arm_file(arm, noise) = dir."/".arm."data.caption_noise=".noise.".eval.agg.tsv"
arms = "objective.kind=caption_ objective.kind=bow_ objective.kind=contrastive_ objective.kind=contrastive_model.text.kind=transformer_"
titles = "caption-LM bag-of-words contrastive-(CBOW) contrastive-(transformer)"
eff = dir."/efficiency.tsv"
do for [i=1:n] {
    noise = word(noises, i)
    set title "caption_noise = ".noise
    unset arrow
    unset label
    plot for [a=1:4] arm_file(word(arms, a), noise) using "images":(column(metric."_min")):(column(metric."_max")) with filledcurves ls a notitle, \
         for [a=1:4] arm_file(word(arms, a), noise) using "images":(column(metric."_mean")) with linespoints ls a title word(titles, a), \
         eff using (strcol("caption_noise") eq noise ? column("bow_vs_caption_images_slow") : NaN):"bow_vs_caption_best":(column("bow_vs_caption_images_fast") - column("bow_vs_caption_images_slow")):(0) with vectors head filled lw 2 lc rgb "black" notitle, \
         eff using (strcol("caption_noise") eq noise ? column("bow_vs_caption_images_fast") : NaN):"bow_vs_caption_best":(sprintf("%.1fx", column("bow_vs_caption_mean"))) with labels offset 0,1 notitle, \
         eff using (strcol("caption_noise") eq noise ? column("con_cbow_vs_bow_images_slow") : NaN):"con_cbow_vs_bow_best":(column("con_cbow_vs_bow_images_fast") - column("con_cbow_vs_bow_images_slow")):(0) with vectors head filled lw 2 lc rgb "#444444" notitle, \
         eff using (strcol("caption_noise") eq noise ? column("con_cbow_vs_bow_images_fast") : NaN):"con_cbow_vs_bow_best":(sprintf("%.1fx", column("con_cbow_vs_bow_mean"))) with labels offset 0,1 notitle
}
unset multiplot
