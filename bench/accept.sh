#!/bin/bash
# bench/accept.sh (run on demand, about 7 minutes): how nginx's 2 workers share the connections.
# Three nginx instances of nginx.conf.example (bench/lib.sh nginx_start) run side by side on one
# PostgreSQL:
#   default     the example without reuseport: nginx 1.22's default, accept_mutex off,
#               EPOLLEXCLUSIVE on the listen socket
#   mutex       the same with accept_mutex on (workers take turns holding the listen socket)
#   reuseport   the example as it is: listen ... reuseport (one listen socket per worker, the
#               kernel hashes connections)
# and, BENCH_RUNS times, for postchatt and getimages of 1,000 rows at 8, 64 and 256 connections,
# each mode in turn (alternated, so that they share the machine's mood). Per run: req/s and
# latencies (bench/out/accept/results.tsv, as run.sh's), the busiest worker's share of the
# workers' CPU, and how `ss -tnp` found the connections spread over the workers half-way through.
# The medians are printed and written to bench/out/accept/summary.txt.
# Knobs: BENCH_RUNS (3), BENCH_SECONDS (5), BENCH_WARMUP (1), ACCEPT_PG_PORT (19789),
# ACCEPT_PORT (19780: modes on 19780, 19783, 19786; their baselines and HTTPS on the next two).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$here/bench"
out="$bench/out/accept"
logs="$out/logs"
RUNS="${BENCH_RUNS:-3}" SECS="${BENCH_SECONDS:-5}" WARMUP="${BENCH_WARMUP:-1}"
PORT="${ACCEPT_PORT:-19780}"
mkdir -p "$out" "$logs"
rm -f "$logs"/* "$out/results.tsv" "$out/spread.tsv" "$out/info.txt"
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"

"$here/scripts/deps.sh" >/dev/null
"$here/scripts/build.sh" >/dev/null
pg_start "$out/pg" "${ACCEPT_PG_PORT:-19789}"
modes=(default mutex reuseport)
declare -A port=([default]=$PORT [mutex]=$((PORT + 3)) [reuseport]=$((PORT + 6)))
for m in "${modes[@]}"; do
    case $m in
    default) options=(--replace listen reuseport '') ;;
    mutex) options=(--replace listen reuseport '' --append events 'accept_mutex on;') ;;
    reuseport) options=() ;;
    esac
    nginx_start "$m" "${port[$m]}" $((port[$m] + 1)) $((port[$m] + 2)) "${options[@]}"
done
server_pids() { nginx_workers "$1"; }
truncate_chatts() { psql_chatter -c 'TRUNCATE chatts' >/dev/null; }
seed_1k() { seed 1000; }
json="$out/chatt.json"
printf '{"username":"bench","message":"chatt: deterministic benchmark text of an ordinary length"}' >"$json"

# The established connections of MODE's chatterd port per worker, busiest first: "8/0".
spread() {
    ss -tnpH state established "( sport = :${port[$1]} )" | grep -o 'pid=[0-9]*' | sort | uniq -c \
        | awk '{ print $1 }' | sort -rn | paste -sd/
}
for rep in $(seq "$RUNS"); do
    say "---- run $rep of $RUNS"
    for c in 8 64 256; do
        for m in "${modes[@]}"; do
            url="http://127.0.0.1:${port[$m]}"
            for s in postchatt get-1k; do
                ( sleep $((WARMUP + 1 + SECS / 2)); echo "$rep	$s	$m	$c	$(spread "$m")" >>"$out/spread.tsv" ) &
                if [ $s = postchatt ]; then
                    wrk_run truncate_chatts postchatt "$m" "$c" 0 "$url/postchatt" POST "$json" application/json
                else
                    wrk_run seed_1k get-1k "$m" "$c" 0 "$url/getimages"
                fi
                wait
            done
        done
    done
done

perl -e '
    sub med { my @v = sort { $a <=> $b } @_; my $n = @v; $n % 2 ? $v[$n / 2] : ($v[$n / 2 - 1] + $v[$n / 2]) / 2 }
    my (%r, %s);
    open my $f, "<", "$ARGV[0]/results.tsv" or die; while (<$f>) { chomp; my @x = split /\t/, $_, -1;
        push @{ $r{"$x[1] $x[3] $x[2]"} }, [@x] }
    open $f, "<", "$ARGV[0]/spread.tsv" or die; while (<$f>) { chomp; my @x = split /\t/;
        push @{ $s{"$x[1] $x[3] $x[2]"} }, $x[4] // "?" }
    printf "%-9s %5s %-10s %9s %8s %8s %9s %8s  %s\n", qw(scenario conns mode req/s p50_ms p99_ms max_ms busiest%), "connections per worker (ss, each run)";
    for my $sc (qw(postchatt get-1k)) { for my $c (8, 64, 256) { for my $m (qw(default mutex reuseport)) {
        my $runs = $r{"$sc $c $m"} or next;
        printf "%-9s %5d %-10s %9.0f %8.2f %8.2f %9.1f %8.0f  %s\n", $sc, $c, $m,
            med(map { $_->[4] } @$runs), med(map { $_->[5] } @$runs), med(map { $_->[7] } @$runs),
            med(map { $_->[8] } @$runs), med(map { $_->[15] } @$runs), join(" ", @{ $s{"$sc $c $m"} || [] });
    } } }' "$out" | tee "$out/summary.txt"
say "done: bench/out/accept/summary.txt (req/s and latencies are medians of $RUNS runs of $SECS s)"
