# bench/ratios.png from the data report.pl writes. Called by run.sh as
#   gnuplot -e "datafile='...'; outfile='...'; haspeer=0|1" ratios.gnuplot
# datafile columns: index, "scenario", chatterd/target-baseline at 8, 64 and 256 connections,
# target, chatterd/peer at 8 (NaN where not measured). datafile.gp sets the x tic labels.
set terminal pngcairo size 1200,(haspeer ? 900 : 520) font "DejaVu Sans,10"
set output outfile
set encoding utf8
load datafile.'.gp'

set style fill solid 0.9 border -1
set boxwidth 0.26
set grid ytics lc rgb "#dddddd"
set key outside top center horizontal
set xrange [-0.6:9.6]
set bmargin 4
set ylabel "ratio of req/s (medians)"

if (haspeer) { set multiplot layout 2,1 }

set title "chatterd ÷ the baseline its target is set against (same run, same connections)"
set yrange [0:*]
set offsets 0, 0, 0.15, 0
plot datafile using ($1-0.27):3 with boxes lc rgb "#9dc3e6" title "8 connections", \
     '' using 1:4 with boxes lc rgb "#2e75b6" title "64", \
     '' using ($1+0.27):5 with boxes lc rgb "#1f3864" title "256", \
     '' using ($1-0.42):6:(0.84):(0) with vectors nohead lw 3 lc rgb "#c00000" title "target", \
     '' using ($1-0.27):3:(sprintf("%.2f", $3)) with labels offset 0,0.6 font ",7" notitle, \
     '' using 1:4:(sprintf("%.2f", $4)) with labels offset 0,0.6 font ",7" notitle, \
     '' using ($1+0.27):5:(sprintf("%.2f", $5)) with labels offset 0,0.6 font ",7" notitle

if (haspeer) {
    set title "chatterd ÷ peer at 8 connections (log scale; above 1: chatterd is faster)"
    set logscale y
    set yrange [*:*]
    set offsets 0, 0, 0, 0
    set boxwidth 0.32
    plot datafile using 1:7 with boxes lc rgb "#548235" title "÷ peer", \
         1 with lines dt 2 lw 2 lc rgb "#c00000" title "parity", \
         '' using 1:7:(sprintf("%.1f", $7)) with labels offset 0,0.6 font ",8" notitle
    unset multiplot
}
