# common.gp — terminal and style shared by every figure. Callers set `out` (path without
# extension) and `fmt` ("png" or "svg") with gnuplot -e before loading a figure script.
if (!exists("fmt")) fmt = "png"
if (fmt eq "svg") {
    set terminal svg size 1200,800 dynamic noenhanced font "Sans,12" background "white"
} else {
    set terminal pngcairo size 1200,800 noenhanced font "Sans,11" background "white"
}
set output out.".".fmt
set datafile separator "\t"
set datafile columnheaders
set datafile missing "NaN"
set grid lc rgb "#dddddd"
set key top left box opaque
set style line 1 lc rgb "#1f77b4" lw 2 pt 7 ps 1.1
set style line 2 lc rgb "#d62728" lw 2 pt 5 ps 1.1
set style line 3 lc rgb "#2ca02c" lw 2 pt 9 ps 1.2
set style line 4 lc rgb "#9467bd" lw 2 pt 11 ps 1.2
set style line 5 lc rgb "#ff7f0e" lw 2 pt 13 ps 1.2
set style line 6 lc rgb "#8c564b" lw 2 pt 3 ps 1.2
