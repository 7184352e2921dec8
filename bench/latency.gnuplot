# bench/latency.png from the data report.pl writes. Called by run.sh as
#   gnuplot -e "datafile='...'; outfile='...'" latency.gnuplot
# datafile: one block per scenario, a row per (connections, server): "label" p50 p90 p99 max (ms);
# datafile.gp draws one panel per block.
set terminal pngcairo size 1400,1500 font "DejaVu Sans,9"
set output outfile
set encoding utf8
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set logscale y
set yrange [0.05:*]
set grid ytics lc rgb "#dddddd"
set ylabel "ms (log scale)"
set xtics rotate by -35 font ",8"
set key outside top center horizontal font ",8"
set linetype 1 lc rgb "#c5e0b4"
set linetype 2 lc rgb "#70ad47"
set linetype 3 lc rgb "#2e75b6"
set linetype 4 lc rgb "#c00000"
load datafile.'.gp'
