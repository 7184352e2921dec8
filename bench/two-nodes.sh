#!/bin/bash
# shellcheck disable=SC2086  # lists of process ids are split into words on purpose
# bench/two-nodes.sh (run on demand, not part of make bench): one chatterd node against two nodes
# sharing one PostgreSQL and one media directory, as behind a load balancer (docs/SCALING.md).
#
#   1. scripts/deps.sh, scripts/build.sh
#   2. a throwaway PostgreSQL (scripts/pg.sh) on NODES_PG_PORT, and two nginx instances of
#      nginx.conf.example (scripts/nginx-conf.pl: 2 workers, chatterd_pg_pool 4 each) on
#      NODES_PORT_A and NODES_PORT_B (HTTPS on NODES_TLS_PORT_A and _B), the same chatterd_pg (unix
#      socket), the same media root and the same absolute chatterd_media_url
#   3. BENCH_RUNS times, for getimages (1,000 rows, bench/seed.sql) and postchatt:
#        one node    wrk -t1 -cBENCH_CONNS against node A
#        two nodes   two wrk -t1 -c(BENCH_CONNS/2) at once, one against each node
#        pgbench     the same SQL straight on PostgreSQL (bench/pgbench-*.sql, -c 8 -j 2
#                    -M prepared): what the database alone does on this machine
#      each after a BENCH_WARMUP s warm-up, measured for BENCH_SECONDS s; the table is re-seeded
#      (getimages) or truncated (postchatt) before the warm-up and before the measured run
#   4. the medians, with the CPU that PostgreSQL, the nginx workers, the clients (wrk, pgbench)
#      and the whole machine (others' load included) spent during the measured seconds (% of one
#      core; the machine has nproc cores), and PostgreSQL's and nginx's per request: printed and
#      written to bench/out/two-nodes/summary.txt (raw runs: runs.tsv, logs: logs/)
# Both nodes run on this machine: they share its cores with each other, with PostgreSQL and
# with wrk, so two nodes here show what the database does with twice the clients, not what two
# machines would serve. Everything it starts (nginx, PostgreSQL) is stopped on exit.
#
# Knobs (environment): BENCH_RUNS (3), BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNS (64),
# NODES_PG_PORT (19800), NODES_PORT_A (19801), NODES_PORT_B (19802), NODES_TLS_PORT_A (19803),
# NODES_TLS_PORT_B (19804),
# NODES_PG_DIR (scripts/pg.sh dir bench-nodes NODES_PG_PORT).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$here/bench"
out="$bench/out/two-nodes"
logs="$out/logs"
RUNS="${BENCH_RUNS:-3}"
SECS="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONNS="${BENCH_CONNS:-64}"
PG_PORT="${NODES_PG_PORT:-19800}"
PORT_A="${NODES_PORT_A:-19801}"
PORT_B="${NODES_PORT_B:-19802}"
TLS_PORT_A="${NODES_TLS_PORT_A:-19803}"
TLS_PORT_B="${NODES_TLS_PORT_B:-19804}"
PG_DIR="${NODES_PG_DIR:-$("$here/scripts/pg.sh" dir bench-nodes "$PG_PORT")}"
LB_URL="https://chatter.example.test/media/"

# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
say() { printf '[two-nodes %4ds] %s\n' "$(($(date +%s) - started))" "$*" >&2; }

"$here/scripts/deps.sh" >/dev/null
"$here/scripts/build.sh" >/dev/null
mkdir -p "$out" "$logs" "$out/media"
rm -f "$logs"/* "$out/runs.tsv" "$out/summary.txt"
chmod 755 "$out/media"
printf '{"username":"bench","message":"chatt: deterministic benchmark text of an ordinary length"}' \
    >"$out/chatt.json"

say "PostgreSQL on port $PG_PORT ($PG_DIR)"
pg_start "$PG_DIR" "$PG_PORT"

# Two nodes of nginx.conf.example (2 workers each, no baselines) with the shared media root and
# the load balancer's media URL.
say "nodes on ports $PORT_A and $PORT_B"
nginx_start node-a "$PORT_A" - "$TLS_PORT_A" --set chatterd_media_url "$LB_URL"
nginx_start node-b "$PORT_B" - "$TLS_PORT_B" --set chatterd_media_url "$LB_URL"
workers() { nginx_workers node-a; nginx_workers node-b; }

# The clients' CPU (wrk, pgbench): this shell's reaped children, as bash's `times` shows them.
# (`times` itself runs in this shell: in a $(...) it would show the subshell's.)
client_ticks() {
    tail -1 "$out/times" | perl -e 'my ($l, $t) = (scalar <STDIN>, 0);
        $t += $1 * 60 + $2 while $l =~ /(\d+)m([\d.]+)s/g; printf "%.0f", $t * $ARGV[0]' "$CLK_TCK"
}
busy_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

seed_1k() { seed 1000; }
truncate_chatts() { psql_chatter -qc 'TRUNCATE chatts' >/dev/null; }

# wrk_one PORT CONNS SECONDS LOG ENDPOINT: GET getimages or POST postchatt, in the background.
wrk_one() {
    local port=$1 conns=$2 secs=$3 log=$4 endpoint=$5
    if [ "$endpoint" = postchatt ]; then
        BENCH_METHOD=POST BENCH_BODY="$out/chatt.json" BENCH_CTYPE=application/json \
            wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$bench/wrk.lua" \
            "http://127.0.0.1:$port/postchatt" >"$log" 2>&1 &
    else
        wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$bench/wrk.lua" \
            "http://127.0.0.1:$port/$endpoint" >"$log" 2>&1 &
    fi
}
# load SETUP ENDPOINT SECONDS LOG: the clients of a setup (one, two, pgbench), waited for.
load() {
    local setup=$1 endpoint=$2 secs=$3 log=$4
    case $setup in
    one) wrk_one "$PORT_A" "$CONNS" "$secs" "$log.a" "$endpoint" ;;
    two) wrk_one "$PORT_A" $((CONNS / 2)) "$secs" "$log.a" "$endpoint"
         wrk_one "$PORT_B" $((CONNS / 2)) "$secs" "$log.b" "$endpoint" ;;
    pgbench)
        local script="$bench/pgbench-select.sql"
        local args=()
        if [ "$endpoint" = postchatt ]; then
            script="$bench/pgbench-insert.sql"
            args=(-D deadline=4102444800 -D username=bench -D "message=chatt: deterministic benchmark text")
        fi
        pgbench -h "$pg_host" -p "$PG_PORT" -U chatter -n -M prepared -c 8 -j 2 -T "$secs" \
            -f "$script" "${args[@]}" chatterdb >"$log.a" 2>&1 & ;;
    esac
    wait
}
# The BENCH line of a run: req/s and requests summed over the clients, the worst p99, the
# non-2xx and socket errors summed. pgbench's summary gives tps and its mean latency.
result() { # LOG
    perl -e '
        my ($rps, $p99, $n, $bad) = (0, 0, 0, 0);
        for my $f (@ARGV) {
            open my $fh, "<", $f or next;
            while (<$fh>) {
                if (/^BENCH (\S+) \S+ (\S+) (\d+) (\d+) (\d+)/) {
                    $rps += $1; $p99 = $2 if $2 > $p99; $n += $3; $bad += $4 + $5;
                }
                $rps += $1 if /^tps = ([\d.]+)/;
                $n += $1 if /^number of transactions actually processed: (\d+)/;
                $bad += $1 if /^number of failed transactions: (\d+)/;
            }
        }
        printf "%.0f\t%s\t%d\t%d\n", $rps, $p99 || "-", $n, $bad;' "$1".*
}

now_ns() { date +%s%N; }
pct() { # TICKS NANOSECONDS: % of one core
    perl -e 'printf "%.0f", $ARGV[0] * 100 / $ARGV[1] / ($ARGV[2] / 1e9)' "$1" "$CLK_TCK" "$2"
}

run() { # ENDPOINT SETUP PREPARE
    local endpoint=$1 setup=$2 prepare=$3 log="$logs/$1.$2.$rep" pids s0 d0 b0 c0 t0 s1 d1 b1 c1 t r
    $prepare
    [ "$WARMUP" = 0 ] || { load "$setup" "$endpoint" "$WARMUP" "$log.warmup"; $prepare; }
    pids="$(workers)"
    times >"$out/times"
    s0=$(ticks $pids) d0=$(pg_ticks) b0=$(busy_ticks) c0=$(client_ticks) t0=$(now_ns)
    load "$setup" "$endpoint" "$SECS" "$log"
    [ "$setup" != pgbench ] || sleep 0.2   # its backends exit: their CPU moves to the postmaster
    times >"$out/times"
    s1=$(ticks $pids) d1=$(pg_ticks) b1=$(busy_ticks) c1=$(client_ticks) t=$(($(now_ns) - t0))
    r="$(result "$log")"
    set -- $r
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$endpoint" "$setup" "$1" "$2" "$4" \
        "$(pct $((d1 - d0)) $t)" "$(pct $((s1 - s0)) $t)" "$(pct $((c1 - c0)) $t)" "$(pct $((b1 - b0)) $t)" \
        "$(per_req $((d1 - d0)) "$3")" "$(per_req $((s1 - s0)) "$3")" >>"$out/runs.tsv"
    say "$(printf '%-9s %-7s %7s req/s  p99 %6s ms  errors %s  CPU %%: PostgreSQL %s, nginx %s, clients %s, machine %s' \
        "$endpoint" "$setup" "$1" "$2" "$4" "$(pct $((d1 - d0)) $t)" "$(pct $((s1 - s0)) $t)" \
        "$(pct $((c1 - c0)) $t)" "$(pct $((b1 - b0)) $t)")"
}

for rep in $(seq 1 "$RUNS"); do
    say "---- run $rep of $RUNS"
    for setup in one two pgbench; do run getimages "$setup" seed_1k; done
    for setup in one two pgbench; do run postchatt "$setup" truncate_chatts; done
done

# The medians of every column, per endpoint and setup.
perl -e '
    my ($runs, $secs, $conns, $cores) = splice @ARGV, 0, 4;
    my (%v, @order);
    while (<STDIN>) {
        chomp;
        my ($rep, $endpoint, $setup, @cols) = split /\t/;
        my $key = "$endpoint\t$setup";
        push @order, $key unless $v{$key};
        push @{$v{$key}[$_]}, $cols[$_] for 0 .. $#cols;
    }
    sub median { my @s = sort { $a <=> $b } grep { $_ ne "-" } @_; @s ? $s[$#s / 2] : "-" }
    my %what = (one => "one node, wrk -c$conns", two => "two nodes, wrk -c" . ($conns / 2) . " each",
                pgbench => "pgbench -c 8, same SQL");
    print "medians of $runs runs of $secs s; CPU in % of one core ($cores cores = ${\($cores * 100)} %)\n\n";
    print "| endpoint | setup | req/s | p99 ms | errors | PostgreSQL CPU % | nginx CPU % | clients CPU % "
        . "| machine busy % | PostgreSQL CPU ms/req | nginx CPU ms/req |\n"
        . "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for my $key (@order) {
        my ($endpoint, $setup) = split /\t/, $key;
        my @m = map { median(@{$v{$key}[$_]}) } 0 .. $#{$v{$key}};
        $m[$_] = "-" for $setup eq "pgbench" ? (1, 4, 8) : ();
        print "| ", join(" | ", $endpoint, $what{$setup}, @m), " |\n";
    }' "$RUNS" "$SECS" "$CONNS" "$(nproc)" <"$out/runs.tsv" | tee "$out/summary.txt"
say "done: $out/summary.txt"
