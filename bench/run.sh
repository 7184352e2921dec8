#!/bin/bash
# shellcheck disable=SC2086,SC2116  # lists of process ids are split into words on purpose
# make bench: chatterd against the physical-limit baselines (and, optionally, a peer), side by
# side in one run, then bench/REPORT.md and bench/ratios.png.
#
#   1. scripts/deps.sh, scripts/build.sh; deterministic payloads (bench/gen.pl)
#   2. a throwaway PostgreSQL under bench/out/pg (scripts/pg.sh) on BENCH_PG_PORT
#   3. one nginx (2 workers) from bench/nginx.conf.in: chatterd on BENCH_PORT, baselines (DAV PUT,
#      static files) on BENCH_BASE_PORT
#   4. every scenario BENCH_RUNS times (wrk -t1 -c8 --latency, or pgbench -c 8 -j 2), chatterd,
#      its baselines and the peer one after the other, so that they share the machine's mood
#   5. memory and disk: 8 concurrent 10 MiB uploads, worker peak RSS and bytes written
#   6. bench/report.pl -> bench/REPORT.md, gnuplot bench/ratios.gnuplot -> bench/ratios.png
# Everything it starts (nginx, PostgreSQL, the peer) is stopped on exit.
#
# Knobs (environment):
#   BENCH_RUNS     repetitions of every scenario; medians are reported (default 3)
#   BENCH_SECONDS  measured seconds per run (default 10)
#   BENCH_WARMUP   warm-up seconds before every run, not measured (default 2; 0 = none)
#   PEER_URL       also measure this server (same API), e.g. http://127.0.0.1:58001; it must use
#                  this run's database: start it with the TCP conninfo printed at start-up.
#                  PEER_MEDIA=DIR (optional) names its media directory, emptied like ours.
#   PEER_RUN       a peer's run.sh (run.sh PGURL MEDIA_ROOT PORT), e.g.
#                  /work/shared/peers/python-starlette/run.sh: started and stopped by this script
#                  (PEER_URL defaults to http://127.0.0.1:58001); its Debian packages are installed
#   BENCH_PG_PORT, BENCH_PORT, BENCH_BASE_PORT   ports (defaults 55440, 58080, 58081)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$here/bench"
out="$bench/out"
pay="$out/payload"
logs="$out/logs"

RUNS="${BENCH_RUNS:-3}"
SECS="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
PG_PORT="${BENCH_PG_PORT:-55440}"
PORT="${BENCH_PORT:-58080}"
BASE_PORT="${BENCH_BASE_PORT:-58081}"
PEER_RUN="${PEER_RUN:-}"
PEER_URL="${PEER_URL:-}"
PEER_MEDIA="${PEER_MEDIA:-}"
NGINX=/usr/sbin/nginx
CONNS=8

if [ -n "$PEER_RUN" ]; then
    PEER_URL="${PEER_URL:-http://127.0.0.1:58001}"
    PEER_MEDIA="$out/peer-media"
fi
PEER_URL="${PEER_URL%/}"

started=$(date +%s)
say() { printf '[bench %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }

# ---------------------------------------------------------------- build, payloads
"$here/scripts/deps.sh"
if [ -n "$PEER_RUN" ]; then
    # The reference peer runs on Debian's Python packages; installed only for a run with PEER_RUN.
    peer_pkgs=(python3 python3-starlette python3-uvicorn python3-psycopg python3-psycopg-pool
               python3-multipart python3-werkzeug)
    missing=()
    for p in "${peer_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing the peer's packages: ${missing[*]}"
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi
"$here/scripts/build.sh"
# What was built: the commit, and whether src/ differed from it (others may be editing it).
built_from="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$here" diff --quiet HEAD -- src config 2>/dev/null || built_from="$built_from (src modified)"

mkdir -p "$out" "$logs"
rm -f "$logs"/* "$out/results.tsv" "$out/memory.tsv" "$out/info.txt"
say "payloads"
perl "$bench/gen.pl" "$pay"
CTYPE="$(cat "$pay/content-type")"
size() { stat -c %s "$1"; }

# ---------------------------------------------------------------- PostgreSQL, nginx, peer
pg_dir="$out/pg"
trash="$out/trash"
nginx_dir="$out/nginx"
media="$out/media"
peer_pid=""

cleanup() {
    set +e
    if [ -n "$peer_pid" ] && kill -0 "$peer_pid" 2>/dev/null; then
        kill -TERM "$peer_pid"
        wait "$peer_pid" 2>/dev/null
    fi
    stop_nginx
    "$here/scripts/pg.sh" stop "$pg_dir" >/dev/null 2>&1
    delete_uploads
}
# The upload directories (see retire_dir) hold hundreds of thousands of files, mostly small DAV
# ones; deleting them takes minutes on this disk (each freed block is discarded), so it is done in
# the background at the lowest I/O priority once everything is measured. The next run waits for it.
delete_uploads() {
    declare -F retire_dir >/dev/null || return 0   # failed before the scenarios were set up
    retire_dir "$media" keep
    retire_dir "$nginx_dir/dav/put" keep
    if [ -n "$PEER_RUN" ]; then retire_dir "$PEER_MEDIA" keep; fi
    [ -d "$trash" ] || return 0
    local doomed
    doomed="$out/deleting.$(date +%s%N)"
    mv "$trash" "$doomed"
    ( ionice -c2 -n7 nice rm -rf "$doomed"; touch "$out/uploads.deleted" ) </dev/null >/dev/null 2>&1 &
    echo $! >"$out/deleting.pid"
    say "deleting the uploaded files in the background (pid $!)"
}
stop_nginx() {
    local pidfile="$nginx_dir/logs/nginx.pid" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null && grep -q nginx "/proc/$pid/cmdline" 2>/dev/null; then
        kill -QUIT "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The previous run's uploads: wait until their deletion is over (it competes for the disk), and
# warn when it ended minutes ago (see retire_dir: creating files is then slower for a while).
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

say "PostgreSQL on port $PG_PORT"
"$here/scripts/pg.sh" start "$pg_dir" "$PG_PORT" >/dev/null
CONNINFO="$("$here/scripts/pg.sh" conninfo "$pg_dir" "$PG_PORT")"   # unix socket: chatterd, pgbench
TCP_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=chatterdb user=chatter password=chattchatt"
psql_chatter() { "$here/scripts/pg.sh" psql "$pg_dir" "$PG_PORT" "$@"; }
pg_host="$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$CONNINFO")"   # pg.sh decides where the socket is
pgbench_cmd=(pgbench -h "$pg_host" -p "$PG_PORT" -U chatter -n -M prepared -c "$CONNS" -j 2)

say "nginx: chatterd on $PORT, baselines on $BASE_PORT"
stop_nginx   # a leftover from an interrupted run
mkdir -p "$nginx_dir/logs" "$nginx_dir/tmp" "$nginx_dir/dav" "$nginx_dir/static" "$media"
chmod 755 "$media"
sed -e "s|@MODULE@|$here/build/ngx_http_chatterd_module.so|" -e "s|@OUT@|$out|g" \
    -e "s|@CONNINFO@|$CONNINFO|" -e "s|@PORT@|$PORT|" -e "s|@BASE_PORT@|$BASE_PORT|" \
    "$bench/nginx.conf.in" >"$nginx_dir/nginx.conf"
nginx_args=(-p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e "$nginx_dir/logs/error.log")
"$NGINX" -q -t "${nginx_args[@]}"
"$NGINX" "${nginx_args[@]}"
CHATTERD="http://127.0.0.1:$PORT"
BASE="http://127.0.0.1:$BASE_PORT"

# The worker processes of our nginx (children of the master in our pid file).
nginx_workers() {
    local master
    master="$(cat "$nginx_dir/logs/nginx.pid")"
    for pid in $(pgrep -P "$master"); do
        grep -q "worker process" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
    done
    return 0
}
# The peer's processes: everything below the process PEER_RUN started (supervisor and workers).
peer_processes() {
    local pids="$peer_pid" next
    local all=""
    while [ -n "$pids" ]; do
        all="$all $pids"
        next=""
        for p in $pids; do next="$next $(pgrep -P "$p" || true)"; done
        pids="$(echo $next)"
    done
    echo $all
}
# The peer's workers (the memory run compares with chatterd's 2 workers): its processes started by
# multiprocessing's spawn_main, not the supervisor nor multiprocessing's resource tracker.
peer_workers() {
    for pid in $(peer_processes); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q spawn_main && echo "$pid"
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
wait_http "$CHATTERD/getimages" 10 || { tail -20 "$nginx_dir/logs/error.log"; exit 1; }

if [ -n "$PEER_RUN" ]; then
    say "peer: $PEER_RUN on $PEER_URL"
    mkdir -p "$PEER_MEDIA"
    peer_port="${PEER_URL##*:}"; peer_port="${peer_port%%/*}"
    "$PEER_RUN" "$TCP_CONNINFO" "$PEER_MEDIA" "$peer_port" >"$logs/peer.log" 2>&1 &
    peer_pid=$!
    wait_http "$PEER_URL/getimages" 60 || { echo "the peer did not start:"; tail -20 "$logs/peer.log"; exit 1; }
elif [ -n "$PEER_URL" ]; then
    echo "PEER_URL=$PEER_URL: start the peer on this run's database, e.g."
    echo "  run.sh '$TCP_CONNINFO' MEDIA_DIR PORT"
    echo "waiting up to 5 minutes for $PEER_URL/getimages to answer 200..."
    wait_http "$PEER_URL/getimages" 300 || { echo "no peer at $PEER_URL"; exit 1; }
fi

# ---------------------------------------------------------------- scenario helpers
# Before every insert run: no rows, no media files (1 MiB uploads at ~300/s fill GBs).
# Files are never deleted while measuring. This file system may be ext4 without a journal, where
# creating a file skips every inode freed in the last 1 to 6 minutes, one block lookup each: after
# deleting the previous run's thousands of files, every new file (chatterd's and DAV's alike)
# would cost O(thousands), an artifact of the clean-up, not of the server. So the files are
# truncated to 0 (the space is freed, the inode stays; small files are left as they are: freeing
# their blocks costs as much as deleting them) and their directory is moved to bench/out/trash,
# deleted when the benchmark ends.
retire_dir() { # DIR [keep]: with keep, DIR is not created again
    local dir=$1
    [ -d "$dir" ] || return 0
    [ "${2:-}" = keep ] || find "$dir" -type f -size +64k -exec truncate -s 0 {} +
    mkdir -p "$trash"
    mv "$dir" "$trash/$(basename "$dir").$(date +%s%N)"
    [ "${2:-}" = keep ] && return 0
    mkdir -p "$dir"
    chmod 755 "$dir"
}
reset_inserts() {
    psql_chatter -c 'TRUNCATE chatts' >/dev/null
    retire_dir "$media"
    retire_dir "$nginx_dir/dav/put"
    if [ -n "$PEER_MEDIA" ]; then retire_dir "$PEER_MEDIA"; fi
    sync
}
seed() { psql_chatter -v rows="$1" -f - <"$bench/seed.sql" >/dev/null; }
seed_1k() { seed 1000; }
seed_10k() { seed 10000; }

# ---- CPU accounting: the machine is shared and noisy, so besides req/s every run records the CPU
# time its server processes and PostgreSQL spent per request, which other load hardly changes.
CLK_TCK=$(getconf CLK_TCK)
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
    master=$(head -1 "$pg_dir/postmaster.pid")
    read -ra f < <(sed 's/^.*) //' "/proc/$master/stat")
    echo $((f[11] + f[12] + f[13] + f[14] + $(ticks $(pgrep -P "$master"))))
}
# The processes serving SYSTEM: nginx workers for chatterd and the nginx baselines, the peer's
# processes when this script started it, none for pgbench (PostgreSQL is counted apart).
server_pids() {
    case $1 in
    chatterd|dav|static) nginx_workers ;;
    peer) [ -n "$peer_pid" ] && peer_processes ;;
    esac
    return 0
}

# per_req TICKS REQUESTS: milliseconds of CPU per request (nothing when not measured)
per_req() {
    [ -n "$1" ] && [ "$2" -gt 0 ] && perl -e 'printf "%.3f", $ARGV[0] * 1000 / $ARGV[1] / $ARGV[2]' "$1" "$CLK_TCK" "$2"
    return 0
}

# record SCENARIO SYSTEM BYTES_PER_REQUEST "BENCH ..." SERVER_TICKS DB_TICKS
#   -> a line of out/results.tsv:
#   rep scenario system req/s p50 p99 requests non2xx errors bytes server_cpu_ms db_cpu_ms
record() {
    local scenario=$1 system=$2 bytes=$3 line=$4 server=$5 db=$6
    if [[ "$line" != BENCH* ]]; then
        say "$scenario $system: NO RESULT (see bench/out/logs/)"
        echo "$scenario / $system, run $rep: no result (see bench/out/logs/)" >>"$out/info.txt"
        return 0
    fi
    # shellcheck disable=SC2086
    set -- ${line#BENCH }
    local server_ms db_ms
    server_ms=$(per_req "$server" "$4")
    db_ms=$(per_req "$db" "$4")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$scenario" "$system" "$1" "$2" \
        "$3" "$4" "$5" "$6" "$bytes" "$server_ms" "$db_ms" >>"$out/results.tsv"
    say "$(printf '%-9s %-8s %9s req/s  p50 %8s  p99 %8s ms  cpu/req %6s + %6s ms  non-2xx %s  errors %s' \
        "$scenario" "$system" "$1" "$2" "$3" "${server_ms:--}" "${db_ms:--}" "$5" "$6")"
}

# wrk_run PREPARE SCENARIO SYSTEM BYTES URL [METHOD BODY_FILE CONTENT_TYPE]
# PREPARE (a function, or :) runs before the warm-up and again before the measured run.
wrk_run() {
    local prepare=$1 scenario=$2 system=$3 bytes=$4 url=$5
    local -x BENCH_METHOD="${6:-GET}" BENCH_BODY="${7:-}" BENCH_CTYPE="${8:-}"
    local log="$logs/$scenario.$system.$rep.txt" pids s0 d0 s1 d1
    $prepare
    if [ "$WARMUP" != 0 ]; then
        wrk -t1 -c"$CONNS" -d"${WARMUP}s" --timeout 10s -s "$bench/wrk.lua" "$url" >"$log.warmup" 2>&1 || true
        $prepare
    fi
    pids=$(server_pids "$system")
    s0=$(ticks $pids) d0=$(pg_ticks)
    wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency -s "$bench/wrk.lua" "$url" >"$log" 2>&1 || true
    s1=$(ticks $pids) d1=$(pg_ticks)
    [ -n "$pids" ] || s0=""
    record "$scenario" "$system" "$bytes" "$(grep '^BENCH ' "$log" || true)" "${s0:+$((s1 - s0))}" "$((d1 - d0))"
}

# pgbench_run PREPARE SCENARIO SCRIPT [pgbench args]
pgbench_run() {
    local prepare=$1 scenario=$2 script=$3
    shift 3
    local log="$logs/$scenario.pgbench.$rep" d0 d1
    $prepare
    if [ "$WARMUP" != 0 ]; then
        "${pgbench_cmd[@]}" -T "$WARMUP" -f "$script" "$@" chatterdb >"$log.warmup" 2>&1 || true
        $prepare
    fi
    rm -f "$log".log*
    d0=$(pg_ticks)
    "${pgbench_cmd[@]}" -T "$SECS" -f "$script" -l --log-prefix="$log.log" "$@" chatterdb >"$log.txt" 2>&1 || true
    sleep 0.2   # the backends exit and are reaped: their CPU time moves to the postmaster's cutime
    d1=$(pg_ticks)
    record "$scenario" pgbench 0 "$(perl "$bench/pgbench-stats.pl" "$log.txt" "$log".log* || true)" "" "$((d1 - d0))"
    rm -f "$log".log*   # hundreds of thousands of lines; the summary is in results.tsv
}

# Posts one 1 MiB image to BASE_URL/postimages and prints the URL of the stored file.
upload_image() {
    reset_inserts
    curl -sf -o /dev/null -H "Content-Type: $CTYPE" --data-binary "@$pay/form-img.body" "$1/postimages"
    psql_chatter -At -c 'SELECT imageurl FROM chatts'
}

# ---------------------------------------------------------------- sanity checks and static copies
say "checking every endpoint once"
check() { # EXPECTED_STATUS DESCRIPTION curl-args...
    local want=$1 what=$2 got
    shift 2
    got="$(curl -s -o "$logs/check.body" -w '%{http_code}' "$@")"
    if [ "$got" != "$want" ]; then
        echo "FAILED: $what answered $got, not $want: $(head -c 300 "$logs/check.body")"
        tail -5 "$nginx_dir/logs/error.log"
        exit 1
    fi
}
targets=("$CHATTERD")
[ -n "$PEER_URL" ] && targets+=("$PEER_URL")
for t in "${targets[@]}"; do
    reset_inserts
    for form in form-none form-img form-vid form-10m; do
        check 200 "$t/postimages ($form)" -H "Content-Type: $CTYPE" --data-binary "@$pay/$form.body" "$t/postimages"
    done
    check 200 "$t/postchatt" -H "Content-Type: application/json" --data-binary "@$pay/chatt.json" "$t/postchatt"
done
check 201 "DAV PUT" -X PUT -H "Content-Type: $CTYPE" --data-binary "@$pay/form-img.body" "$BASE/put/x"

# The getimages answers of chatterd, saved as the static baseline's files; the peer's sizes.
declare -A get_bytes
for rows in 1000 10000; do
    seed "$rows"
    curl -sf -o "$nginx_dir/static/getimages-$rows.json" "$CHATTERD/getimages"
    get_bytes[chatterd.$rows]=$(size "$nginx_dir/static/getimages-$rows.json")
    if [ -n "$PEER_URL" ]; then
        curl -sf -o "$logs/peer-getimages-$rows.json" "$PEER_URL/getimages"
        get_bytes[peer.$rows]=$(size "$logs/peer-getimages-$rows.json")
        cmp -s "$logs/peer-getimages-$rows.json" "$nginx_dir/static/getimages-$rows.json" \
            && echo "getimages, $rows rows: chatterd's and the peer's JSON are byte-identical" >>"$out/info.txt" \
            || echo "getimages, $rows rows: chatterd's and the peer's JSON differ (bench/out/logs/peer-getimages-$rows.json)" >>"$out/info.txt"
    fi
done
cp "$pay/image.jpeg" "$nginx_dir/static/image.jpeg"

# ---------------------------------------------------------------- the scenarios
img_bytes=$(size "$pay/image.jpeg")
for rep in $(seq 1 "$RUNS"); do
    say "---- run $rep of $RUNS"

    # The inserts without media, side by side: postimages without media, the INSERT alone
    # (pgbench: the baseline of both), postchatt; then DAV PUT of the same form, the peer.
    form="$pay/form-none.body" json="$pay/chatt.json"
    wrk_run reset_inserts post-none chatterd "$(size "$form")" "$CHATTERD/postimages" POST "$form" "$CTYPE"
    pgbench_run reset_inserts insert "$bench/pgbench-insert.sql" -D deadline=4102444800 \
        -D username=bench -D "message=$(perl -ne 'print $1 if /"message":"([^"]*)"/' "$json")"
    wrk_run reset_inserts postchatt chatterd "$(size "$json")" "$CHATTERD/postchatt" POST "$json" application/json
    wrk_run reset_inserts post-none dav "$(size "$form")" "$BASE/put/x" PUT "$form" "$CTYPE"
    if [ -n "$PEER_URL" ]; then
        wrk_run reset_inserts post-none peer "$(size "$form")" "$PEER_URL/postimages" POST "$form" "$CTYPE"
        wrk_run reset_inserts postchatt peer "$(size "$json")" "$PEER_URL/postchatt" POST "$json" application/json
    fi

    # Uploads: chatterd, DAV PUT of the same body, the peer
    for s in img vid; do
        body="$pay/form-$s.body"
        wrk_run reset_inserts "post-$s" chatterd "$(size "$body")" "$CHATTERD/postimages" POST "$body" "$CTYPE"
        wrk_run reset_inserts "post-$s" dav "$(size "$body")" "$BASE/put/x" PUT "$body" "$CTYPE"
        if [ -n "$PEER_URL" ]; then
            wrk_run reset_inserts "post-$s" peer "$(size "$body")" "$PEER_URL/postimages" POST "$body" "$CTYPE"
        fi
    done

    # getimages: chatterd, the SELECT alone, the same JSON as a static file, the peer
    for rows in 1000 10000; do
        s=get-$((rows / 1000))k
        wrk_run "seed_$((rows / 1000))k" "$s" chatterd "${get_bytes[chatterd.$rows]}" "$CHATTERD/getimages"
        pgbench_run "seed_$((rows / 1000))k" "$s" "$bench/pgbench-select.sql"
        wrk_run : "$s" static "${get_bytes[chatterd.$rows]}" "$BASE/static/getimages-$rows.json"
        if [ -n "$PEER_URL" ]; then
            wrk_run "seed_$((rows / 1000))k" "$s" peer "${get_bytes[peer.$rows]}" "$PEER_URL/getimages"
        fi
    done

    # GET of a 1 MiB media file uploaded through the server itself; static: the same bytes
    wrk_run : media chatterd "$img_bytes" "$(upload_image "$CHATTERD")"
    wrk_run : media static "$img_bytes" "$BASE/static/image.jpeg"
    if [ -n "$PEER_URL" ]; then
        wrk_run : media peer "$img_bytes" "$(upload_image "$PEER_URL")"
    fi
done

# ---------------------------------------------------------------- memory and disk
# 8 connections uploading 1 MiB JPEG + 9 MiB MP4 for BENCH_SECONDS. Peak RSS: VmHWM reset with
# clear_refs 5, summed over the processes, against their VmRSS at idle just before. Disk:
# /proc/PID/io write_bytes (bytes the processes caused to be written, counted when they dirty the
# page cache) per stored media byte.
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
# memory_run SYSTEM URL METHOD STORED_BYTES_PER_REQUEST COUNT_FUNCTION PID...
memory_run() {
    local system=$1 url=$2 method=$3 per_request=$4 count=$5
    shift 5
    local -x BENCH_METHOD="$method" BENCH_BODY="$pay/form-10m.body" BENCH_CTYPE="$CTYPE"
    local log="$logs/memory.$system.txt" idle written_before hwm written stored
    reset_inserts
    sleep 1
    idle=$(sum_status VmRSS "$@")
    for p in "$@"; do echo 5 >"/proc/$p/clear_refs"; done
    written_before=$(sum_written "$@")
    wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency -s "$bench/wrk.lua" "$url" >"$log" 2>&1 || true
    hwm=$(sum_status VmHWM "$@")
    sleep 1   # requests the server was finishing when wrk stopped
    written=$(($(sum_written "$@") - written_before))
    stored=$($count)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$#" "$idle" "$hwm" "$written" "$stored" \
        "$per_request" "$(grep '^BENCH ' "$log" | cut -d' ' -f2)" >>"$out/memory.tsv"
    say "memory $system: idle $((idle / 1024)) MiB, peak $((hwm / 1024)) MiB, $stored uploads stored, $((written / 1048576)) MiB written"
}
rows_stored() { psql_chatter -At -c 'SELECT count(*) FROM chatts WHERE videourl IS NOT NULL'; }
dav_stored() { find "$nginx_dir/dav" -type f | wc -l; }

say "---- memory and disk: 8 x (1 MiB JPEG + 9 MiB MP4) uploads"
media_bytes=$((img_bytes + $(size "$pay/video9.mp4")))
# shellcheck disable=SC2046
memory_run chatterd "$CHATTERD/postimages" POST "$media_bytes" rows_stored $(nginx_workers)
# shellcheck disable=SC2046
memory_run dav "$BASE/put/x" PUT "$(size "$pay/form-10m.body")" dav_stored $(nginx_workers)
if [ -n "$PEER_RUN" ]; then
    # shellcheck disable=SC2046
    peer_pids=$(peer_workers)
    # shellcheck disable=SC2086
    memory_run peer "$PEER_URL/postimages" POST "$media_bytes" rows_stored ${peer_pids:-$(peer_processes)}
fi
reset_inserts

# ---------------------------------------------------------------- report
{
    echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc	$(nproc)"
    echo "cpu	$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory	$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel	$(uname -srm)"
    echo "nginx	$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    echo "postgresql	$("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/postgres" --version)"
    echo "wrk	$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
    echo "commit	$built_from"
    echo "runs	$RUNS"
    echo "seconds	$SECS"
    echo "warmup	$WARMUP"
    echo "connections	$CONNS"
    echo "peer	${PEER_RUN:-${PEER_URL:-none}}"
    if [ -n "$PEER_RUN" ]; then echo "peer_name	$(basename "$(dirname "$PEER_RUN")")"; elif [ -n "$PEER_URL" ]; then echo "peer_name	$PEER_URL"; fi
    echo "elapsed	$(($(date +%s) - started))"
} >>"$out/info.txt"
perl "$bench/report.pl" "$out" "$bench/REPORT.md" "$out/ratios.dat"
haspeer=$(awk '$NF != "NaN" { n++ } END { print (n > 0) ? 1 : 0 }' "$out/ratios.dat")
gnuplot -e "datafile='$out/ratios.dat'; outfile='$bench/ratios.png'; haspeer=$haspeer" "$bench/ratios.gnuplot"
say "done: bench/REPORT.md, bench/ratios.png"
