# shellcheck shell=bash disable=SC2086,SC2154,SC2034  # lists of process ids are split into words on purpose
# The helpers of bench/run.sh (and bench/accept.sh): processes by pid, runners that write TSV rows,
# resets and seeds, CPU/memory/disk accounting, clean-up. Sourced; the caller sets beforehand:
#   here bench out logs   the clone, bench/, the output directory, its logs/
#   SECS WARMUP           measured and warm-up seconds of every run
# and calls pg_start, nginx_start... Everything started is stopped by the EXIT trap set here.

started=$(date +%s)
say() { printf '[bench %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }
size() { stat -c %s "$1"; }
NGINX=/usr/sbin/nginx
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- clean-up
# Functions to call on exit, last registered first.
on_exit_list=()
on_exit() { on_exit_list=("$1" "${on_exit_list[@]}"); }
run_on_exit() {
    set +e
    for f in "${on_exit_list[@]}"; do $f; done
}
trap run_on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- PostgreSQL
# pg_start DIR PORT: a throwaway cluster (scripts/pg.sh) with room for 256 pgbench clients beside
# chatterd's pools; sets PG_DIR, PG_PORT, CONNINFO (unix socket), TCP_CONNINFO, pg_host.
pg_start() {
    PG_DIR=$1 PG_PORT=$2
    "$here/scripts/pg.sh" start "$PG_DIR" "$PG_PORT" >/dev/null
    on_exit pg_stop
    if [ "$(psql_chatter -At -c 'SHOW max_connections')" -lt 400 ]; then
        runuser -u "$(stat -c %U "$PG_DIR")" -- \
            sh -c "echo 'max_connections = 400' >>'$PG_DIR/postgresql.auto.conf'"
        "$here/scripts/pg.sh" stop "$PG_DIR"
        "$here/scripts/pg.sh" start "$PG_DIR" "$PG_PORT" >/dev/null
    fi
    CONNINFO="$("$here/scripts/pg.sh" conninfo "$PG_DIR" "$PG_PORT")"
    TCP_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=chatterdb user=chatter password=chattchatt"
    pg_host="$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$CONNINFO")"
}
pg_stop() { "$here/scripts/pg.sh" stop "$PG_DIR" >/dev/null 2>&1; }
psql_chatter() { "$here/scripts/pg.sh" psql "$PG_DIR" "$PG_PORT" "$@"; }
seed() { psql_chatter -v rows="$1" -f - <"$bench/seed.sql" >/dev/null; }

# ---------------------------------------------------------------- nginx
# nginx_start NAME PORT BASE_PORT TLS_PORT [scripts/nginx-conf.pl options...]: nginx.conf.example
# under $out/NAME (2 workers, the media in $out/media), chatterd on PORT and TLS_PORT (HTTPS), the
# baselines of bench/baselines.conf on BASE_PORT (none when it is -); the options vary the
# configuration.
nginx_start() {
    local name=$1 port=$2 base_port=$3 tls_port=$4 dir="$out/$1" baselines=()
    shift 4
    nginx_stop "$name"   # a leftover from an interrupted run
    mkdir -p "$dir/dav" "$dir/static"
    if [ "$base_port" != - ]; then
        sed "s|@BASE_PORT@|$base_port|; s|@MEDIA@|$out/media|" "$bench/baselines.conf" >"$dir/baselines.conf"
        baselines=(--append-file http "$dir/baselines.conf")
    fi
    "$here/scripts/nginx-conf.pl" --prefix "$dir" --conninfo "$CONNINFO" --media "$out/media" \
        --http-port "$port" --https-port "$tls_port" --workers 2 --log-level warn \
        "${baselines[@]}" "$@"
    "$NGINX" -q -t -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
    eval "stop_$name() { nginx_stop $name; }"
    on_exit "stop_$name"
    wait_http "http://127.0.0.1:$port/getimages" 10 || { tail -20 "$dir/logs/error.log"; exit 1; }
}
nginx_stop() {
    local pidfile="$out/$1/logs/nginx.pid" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null && grep -q nginx "/proc/$pid/cmdline" 2>/dev/null; then
        kill -QUIT "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}
# The worker processes of nginx NAME (children of the master in its pid file).
nginx_workers() {
    local master
    master="$(cat "$out/$1/logs/nginx.pid")"
    for pid in $(pgrep -P "$master"); do
        grep -q "worker process" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
    done
    return 0
}
wait_http() { # URL SECONDS: until it answers 200
    for _ in $(seq $(($2 * 10))); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- CPU accounting
# The machine is shared and noisy: besides req/s every run records the CPU time the server's
# processes and PostgreSQL spent per request, which other load hardly changes.
# ticks PID...: user + system CPU ticks of these processes (fields 14, 15 of /proc/PID/stat)
ticks() {
    local total=0 f
    for p in "$@"; do
        # the fields after "(comm) ", whose own spaces would shift the count
        read -ra f < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
# PostgreSQL: the postmaster with its exited children (cutime, cstime) plus the live ones.
pg_ticks() {
    local master f
    master=$(head -1 "$PG_DIR/postmaster.pid")
    read -ra f < <(sed 's/^.*) //' "/proc/$master/stat")
    echo $((f[11] + f[12] + f[13] + f[14] + $(ticks $(pgrep -P "$master"))))
}
# per_req TICKS REQUESTS: milliseconds of CPU per request (nothing when not measured)
per_req() {
    [ -n "$1" ] && [ "$2" -gt 0 ] && perl -e 'printf "%.3f", $ARGV[0] * 1000 / $ARGV[1] / $ARGV[2]' "$1" "$CLK_TCK" "$2"
    return 0
}
# busiest BEFORE AFTER: the busiest worker's share of the workers' CPU (%), from two lists of
# per-worker ticks in the same order; this is how evenly the connections spread over workers.
busiest() {
    perl -e 'my @a = split " ", $ARGV[0]; my @b = split " ", $ARGV[1]; my ($t, $m) = (0, 0);
             for (0 .. $#a) { my $d = $b[$_] - $a[$_]; $t += $d; $m = $d if $d > $m }
             printf "%.0f", $t ? 100 * $m / $t : 0' "$1" "$2"
}
worker_ticks() { for p in "$@"; do ticks "$p"; done | tr '\n' ' '; }

# ---------------------------------------------------------------- runners
# Every measured run is a row of $out/results.tsv:
#   rep scenario system conns req/s p50 p90 p99 max requests non2xx errors bytes
#   server_cpu_ms db_cpu_ms busiest_worker_%
# (latencies in ms; CPU per request; empty where not measured). $rep is the caller's.
RESULTS="$out/results.tsv"
record() { # SCENARIO SYSTEM CONNS BYTES "BENCH ..." SERVER_TICKS DB_TICKS BUSIEST
    local scenario=$1 system=$2 conns=$3 bytes=$4 line=$5 server=$6 db=$7 busy=$8
    if [[ "$line" != BENCH* ]]; then
        say "$scenario $system c$conns: NO RESULT (see bench/out/logs/)"
        echo "$scenario / $system / $conns connections, run $rep: no result (see bench/out/logs/)" >>"$out/info.txt"
        return 0
    fi
    set -- ${line#BENCH }   # req/s p50 p99 requests non2xx errors response_bytes p90 max
    local server_ms db_ms
    server_ms=$(per_req "$server" "$4")
    db_ms=$(per_req "$db" "$4")
    printf '%s\t' "$rep" "$scenario" "$system" "$conns" "$1" "$2" "$8" "$3" "$9" "$4" "$5" "$6" \
        "$bytes" "$server_ms" "$db_ms" >>"$RESULTS"
    printf '%s\n' "$busy" >>"$RESULTS"
    say "$(printf '%-9s %-8s c%-3s %9s req/s  p50 %7s p99 %7s max %7s ms  cpu/req %6s + %6s ms%s%s' \
        "$scenario" "$system" "$conns" "$1" "$2" "$3" "$9" "${server_ms:--}" "${db_ms:--}" \
        "${busy:+  busiest worker $busy%}" "$( [ "$5$6" = 00 ] || echo "  non-2xx $5 errors $6")")"
}

# Whether SCENARIO is measured in this run (BENCH_ONLY).
wanted() { [ -z "${ONLY:-}" ] || [[ " $ONLY " = *" $1 "* ]]; }

# wrk_run PREPARE SCENARIO SYSTEM CONNS BYTES URL [METHOD BODY_FILE CONTENT_TYPE]
# PREPARE (a function, or :) runs before the warm-up and again before the measured run.
# SERVER_PIDS (the caller's function SYSTEM -> pids) names the processes whose CPU is counted.
# BENCH_LOAD (a command taking wrk's arguments and printing its BENCH line) replaces wrk.
wrk_run() {
    wanted "$2" || return 0
    local prepare=$1 scenario=$2 system=$3 conns=$4 bytes=$5 url=$6
    local -x BENCH_METHOD="${7:-GET}" BENCH_BODY="${8:-}" BENCH_CTYPE="${9:-}"
    local log="$logs/$scenario.$system.c$conns.$rep.txt" pids s0 d0 w0 w1 busy=""
    local wrk=(${BENCH_LOAD:-wrk} -t1 -c"$conns" --timeout 10s -s "$bench/wrk.lua" "$url")
    $prepare
    if [ "$WARMUP" != 0 ]; then
        "${wrk[@]}" -d"${WARMUP}s" >"$log.warmup" 2>&1 || true
        $prepare
    fi
    pids=$(server_pids "$system")
    s0=$(ticks $pids) d0=$(pg_ticks) w0=$(worker_ticks $pids)
    "${wrk[@]}" -d"${SECS}s" --latency >"$log" 2>&1 || true
    w1=$(worker_ticks $pids)
    if [ -n "$pids" ]; then s0=$(($(ticks $pids) - s0)); else s0=""; fi
    [ "$(wc -w <<<"$pids")" -gt 1 ] && busy=$(busiest "$w0" "$w1")
    record "$scenario" "$system" "$conns" "$bytes" "$(grep '^BENCH ' "$log" || true)" "$s0" \
        "$(($(pg_ticks) - d0))" "$busy"
}

# pgbench_run PREPARE SCENARIO CONNS SCRIPT [pgbench args]: the same SQL straight on PostgreSQL
# (unix socket, -M prepared), latencies from its per-transaction log.
pgbench_run() {
    wanted "$2" || return 0
    local prepare=$1 scenario=$2 conns=$3 script=$4
    shift 4
    local log="$logs/$scenario.pgbench.c$conns.$rep" d0
    local pgb=(pgbench -h "$pg_host" -p "$PG_PORT" -U chatter -n -M prepared -c "$conns" -j 2 -f "$script" "$@")
    $prepare
    if [ "$WARMUP" != 0 ]; then
        "${pgb[@]}" -T "$WARMUP" chatterdb >"$log.warmup" 2>&1 || true
        $prepare
    fi
    rm -f "$log".log*
    d0=$(pg_ticks)
    "${pgb[@]}" -T "$SECS" -l --log-prefix="$log.log" chatterdb >"$log.txt" 2>&1 || true
    sleep 0.2   # the backends exit and are reaped: their CPU time moves to the postmaster's cutime
    record "$scenario" pgbench "$conns" 0 "$(perl "$bench/pgbench-stats.pl" "$log.txt" "$log".log* || true)" \
        "" "$(($(pg_ticks) - d0))" ""
    rm -f "$log".log*   # hundreds of thousands of lines; the summary is in results.tsv
}

# ---------------------------------------------------------------- resets
# Before every insert run: no rows, no media files (1 MiB uploads at ~1,000/s fill GBs).
# Files are never deleted while measuring. This file system may be ext4 without a journal, where
# creating a file skips every inode freed in the last 1 to 6 minutes, one block lookup each: after
# deleting the previous run's thousands of files, every new file (chatterd's and DAV's alike)
# would cost O(thousands), an artifact of the clean-up, not of the server. So the files are
# truncated to 0 (the space is freed, the inode stays; small files are left as they are: freeing
# their blocks costs as much as deleting them) and moved into a directory of $out/trash, deleted
# in the background when the benchmark ends (delete_trash). The directory itself stays: chatterd
# keeps its media root open and creates files through that descriptor (src/ngx/media_root.cpp),
# so a media root moved away would go on receiving the uploads, and its URLs would answer 404.
trash="$out/trash"
retire_dir() { # DIR [keep]: with keep (the end of the run), large files are not truncated
    local dir=$1 dest
    [ -d "$dir" ] || return 0
    [ "${2:-}" = keep ] || find "$dir" -type f -size +64k -exec truncate -s 0 {} +
    dest="$trash/$(basename "$dir").$(date +%s%N)"
    mkdir -p "$dest"
    find "$dir" -mindepth 1 -maxdepth 1 -exec mv -t "$dest" {} +
}
# Deleting hundreds of thousands of small files takes minutes on this disk (each freed block is
# discarded): done at the lowest I/O priority once everything is measured; the next run waits.
delete_trash() {
    [ -d "$trash" ] || return 0
    local doomed="$out/deleting.$(date +%s%N)"
    mv "$trash" "$doomed"
    ( ionice -c2 -n7 nice rm -rf "$doomed"; touch "$out/uploads.deleted" ) </dev/null >/dev/null 2>&1 &
    echo $! >"$out/deleting.pid"
    say "deleting the uploaded files in the background (pid $!)"
}
# Waits for the previous run's deletion (it competes for the disk), and warns when it ended
# minutes ago (creating files is then slower for a while, see above).
wait_previous_trash() {
    if [ -f "$out/deleting.pid" ] && kill -0 "$(cat "$out/deleting.pid")" 2>/dev/null; then
        say "waiting for the previous run's uploads to be deleted (pid $(cat "$out/deleting.pid"))"
        while kill -0 "$(cat "$out/deleting.pid")" 2>/dev/null; do sleep 1; done
    fi
    if compgen -G "$out/deleting.[0-9]*" >/dev/null; then   # an interrupted deletion
        rm -rf "$out"/deleting.[0-9]*
        touch "$out/uploads.deleted"
    fi
    if [ -f "$out/uploads.deleted" ] && [ $(($(date +%s) - $(stat -c %Y "$out/uploads.deleted"))) -lt 360 ]; then
        say "warning: the previous run's uploads were deleted less than 6 minutes ago; on ext4 without a"
        say "         journal, creating files stays slower until then (upload numbers may be low)"
    fi
}

# ---------------------------------------------------------------- memory and disk
# memory_run SYSTEM CONNS URL METHOD BODY STORED_BYTES_PER_REQUEST COUNT_FUNCTION PID...
# CONNS connections send BODY for SECS seconds (after WARMUP seconds of the same). Peak RSS:
# VmHWM reset with clear_refs 5, summed over the processes, against their VmRSS at idle just
# before. Disk: /proc/PID/io write_bytes (bytes the processes caused to be written, counted when
# they dirty the page cache) per stored byte. A row of $out/memory.tsv:
#   system processes idle_kB peak_kB written_bytes stored per_request req/s
sum_status() { # FIELD PID...: sum of a /proc/PID/status field, kB
    local field=$1 total=0 v
    shift
    for p in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status")
        total=$((total + v))
    done
    echo "$total"
}
sum_written() {
    local total=0 v
    for p in "$@"; do
        v=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$p/io")
        total=$((total + v))
    done
    echo "$total"
}
memory_run() {
    local system=$1 conns=$2 url=$3 method=$4 body=$5 per_request=$6 count=$7
    shift 7
    local -x BENCH_METHOD="$method" BENCH_BODY="$body" BENCH_CTYPE="$CTYPE"
    local log="$logs/memory.$system.txt" idle written_before hwm written stored
    local wrk=(wrk -t1 -c"$conns" --timeout 10s -s "$bench/wrk.lua" "$url")
    # A warm-up of the same uploads first: what a worker allocates once (its code paths, the pool's
    # buffers) is not what an upload costs.
    [ "$WARMUP" = 0 ] || "${wrk[@]}" -d"${WARMUP}s" >"$log.warmup" 2>&1 || true
    reset_inserts
    sleep 1
    idle=$(sum_status VmRSS "$@")
    for p in "$@"; do echo 5 >"/proc/$p/clear_refs"; done
    written_before=$(sum_written "$@")
    "${wrk[@]}" -d"${SECS}s" --latency >"$log" 2>&1 || true
    hwm=$(sum_status VmHWM "$@")
    sleep 1   # requests the server was finishing when wrk stopped
    written=$(($(sum_written "$@") - written_before))
    stored=$($count)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$#" "$idle" "$hwm" "$written" "$stored" \
        "$per_request" "$(grep '^BENCH ' "$log" | cut -d' ' -f2)" >>"$out/memory.tsv"
    say "memory $system: idle $((idle / 1024)) MiB, peak $((hwm / 1024)) MiB, $stored uploads stored, $((written / 1048576)) MiB written"
}
