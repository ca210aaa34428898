# efficiency-ratio.gp — CLIP Fig. 2's efficiency ratios against the target accuracy (a fraction of
# the slow arm's best): geometric mean over seeds with its 95% bootstrap interval, one panel per
# ratio, one line per group (caption_noise). Reads `cliplab export`'s efficiency.tsv (long format:
# group, ratio, target_frac, target, ratio_geomean, lo, hi, seeds_defined, seeds, ...).
# Inputs: `dir` (the export folder), `ratios` and `groups` (|-separated names as in the file).
load "plots/common.gp"
eff = dir."/efficiency.tsv"
nr = words(ratios)
ng = words(groups)
set multiplot layout 1,nr title "CLIP Fig. 2 efficiency ratios vs target (fraction of the slow arm's best): geometric mean over seeds, 95% bootstrap interval"
set xlabel "target (% of the slow arm's best accuracy)"
set ylabel "ratio (images slow / images fast)"
set logscale y 2
set xrange [45:105]
set key top left
do for [r=1:nr] {
    rname = word(ratios, r)
    set title rname
    plot for [g=1:ng] eff using (strcol("ratio") eq rname && strcol("group") eq word(groups, g) ? 100 * column("target_frac") + 1.5 * (g - 1) : NaN):"ratio_geomean":"lo":"hi" \
         with yerrorlines ls g title word(groups, g), \
         1 with lines lc rgb "#888888" dt 2 notitle
}
unset multiplot
