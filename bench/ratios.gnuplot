# bench/ratios.png from the data report.pl writes. Called by run.sh as
#   gnuplot -e "datafile='...'; outfile='...'; haspeer=0|1" ratios.gnuplot
# datafile columns: index, "label", chatterd/target-baseline, target, chatterd/other-baseline,
# chatterd/peer (NaN where not measured). datafile.gp sets the x tic labels.
set terminal pngcairo size 1100,(haspeer ? 900 : 500) font "DejaVu Sans,10"
set output outfile
set encoding utf8
load datafile.'.gp'

set style fill solid 0.9 border -1
set boxwidth 0.32
set grid ytics lc rgb "#dddddd"
set key outside top center horizontal
set xrange [-0.6:6.6]
set bmargin 4
set ylabel "ratio of req/s (medians)"

if (haspeer) { set multiplot layout 2,1 }

set title "chatterd ÷ physical-limit baseline (same run, same 8 connections)"
set yrange [0:*]
set offsets 0, 0, 0.15, 0
plot datafile using ($1-0.17):3 with boxes lc rgb "#1f4e79" title "÷ baseline the target is set against", \
     '' using ($1+0.17):5 with boxes lc rgb "#9dc3e6" title "÷ other baseline (informative)", \
     '' using ($1-0.45):4:(0.9):(0) with vectors nohead lw 3 lc rgb "#c00000" title "target", \
     '' using ($1-0.17):3:(sprintf("%.2f", $3)) with labels offset 0,0.6 font ",8" notitle, \
     '' using ($1+0.17):5:(sprintf("%.2f", $5)) with labels offset 0,0.6 font ",8" notitle

if (haspeer) {
    set title "chatterd ÷ peer (log scale; above 1: chatterd is faster)"
    set logscale y
    set yrange [*:*]
    set offsets 0, 0, 0, 0
    plot datafile using 1:6 with boxes lc rgb "#548235" title "÷ peer", \
         1 with lines dt 2 lw 2 lc rgb "#c00000" title "parity", \
         '' using 1:6:(sprintf("%.1f", $6)) with labels offset 0,0.6 font ",8" notitle
    unset multiplot
}
