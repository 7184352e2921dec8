#!/bin/bash
# shellcheck disable=SC2046,SC2086,SC2116  # lists of process ids are split into words on purpose
# make bench: chatterd beside its physical-limit baselines (and, optionally, a peer) at 8, 64 and
# 256 connections, in one run, then bench/REPORT.md, bench/ratios.png and bench/latency.png.
# The scenarios are listed just below; the helpers are in bench/lib.sh, the set-up at the end.
# Everything it starts (nginx, PostgreSQL, the peer) is stopped on exit.
#
# Knobs (environment):
#   BENCH_QUICK=1  a ~3-minute check: 1 run of 3 s per scenario at 8 and 256 connections; its
#                  report goes to bench/out/ (REPORT.md, *.png), leaving the project's record alone
#   BENCH_RUNS     repetitions of every scenario; medians are reported (default 3)
#   BENCH_SECONDS  measured seconds per run (default 5)
#   BENCH_WARMUP   warm-up seconds before every run, not measured (default 1; 0 = none)
#   BENCH_CONNS    the concurrencies of the matrix (default "8 64 256")
#   BENCH_ONLY     only these scenarios (e.g. "post-meta"), no memory run; the report goes to
#                  bench/out/ as for BENCH_QUICK
#   BENCH_NOTE     a sentence printed at the top of the report (e.g. what else loaded the machine)
#   PEER_URL       also measure this server (same API, at 8 connections), e.g.
#                  http://127.0.0.1:58001; it must use this run's database: start it with the TCP
#                  conninfo printed at start-up. PEER_MEDIA=DIR (optional) names its media directory.
#   PEER_RUN       a peer's run.sh (run.sh PGURL MEDIA_ROOT PORT), e.g.
#                  /work/shared/peers/python-starlette/run.sh: started and stopped by this script
#                  (PEER_URL defaults to http://127.0.0.1:58001); its Debian packages are installed
#   BENCH_PG_PORT, BENCH_PORT, BENCH_BASE_PORT, BENCH_TLS_PORT   ports (defaults 55440, 58080,
#                  58081, 58082: PostgreSQL, chatterd, the baselines, chatterd's HTTPS)
#   BENCH_NODEB_PORT, BENCH_NODEB_TLS_PORT   the second node of list-delay (58083, 58084)
set -euo pipefail

# ================================================================ the scenarios
# matrix C: every scenario at C connections; chatterd, then the baselines of the same bytes:
#   post SCENARIO SYSTEM C PATH BODY   POST payload BODY (bench/gen.pl) after emptying the table
#                                      and the media directories (SYSTEM: chatterd, peer, or
#                                      nofsync: chatterd with chatterd_media_fsync off; keep:
#                                      chatterd with chatterd_media_metadata keep)
#   put SCENARIO C BODY                nginx DAV PUT of the same body into a fresh file
#   get SCENARIO SYSTEM C PREPARE URL  GET after PREPARE (seed_1k, seed_10k or :)
#   static SCENARIO C FILE             nginx static, the same bytes chatterd answered
#   upload SCENARIO SYSTEM C METHOD URL BODY   whole uploads of BODY, one after the other per
#                                      connection (bench/tus.pl): TUS (POST + 1 MiB PATCHes) or PUT
#   pgbench_run PREPARE SCENARIO C SQL [args]   the same SQL straight on PostgreSQL
matrix() {
    local c=$1
    post post-none chatterd "$c" /postimages form-none.body
    pgbench_run reset_inserts insert "$c" "$bench/pgbench-insert.sql" "${insert_vars[@]}"
    post postchatt chatterd "$c" /postchatt chatt.json
    put post-none "$c" form-none.body

    post post-img chatterd "$c" /postimages form-img.body
    post post-img nofsync "$c" /nofsync/postimages form-img.body
    put post-img "$c" form-img.body

    post post-meta chatterd "$c" /postimages form-meta.body
    post post-meta keep "$c" /keep/postimages form-meta.body

    get get-1k chatterd "$c" seed_1k "$CHATTERD/getimages"
    pgbench_run seed_1k get-1k "$c" "$bench/pgbench-select.sql"
    static get-1k "$c" getimages-1000.json

    get get-10k chatterd "$c" seed_10k "$CHATTERD/getimages"
    pgbench_run seed_10k get-10k "$c" "$bench/pgbench-select.sql"
    static get-10k "$c" getimages-10000.json

    get get-100k chatterd "$c" seed_100k_cached "$CHATTERD/getimages"
    static get-100k "$c" getimages-100000.json

    # The 304 of a client that holds the current listing (If-None-Match), against nginx static's
    # own 304 of the same bytes (its ETag).
    BENCH_HEADER="If-None-Match: ${etag[chatterd]}" wrk_run seed_100k_cached get-304 chatterd "$c" 0 "$CHATTERD/getimages"
    BENCH_HEADER="If-None-Match: ${etag[static]}" wrk_run : get-304 static "$c" 0 "$BASE/static/getimages-100000.json"

    get media chatterd "$c" : "$(upload_image "$CHATTERD")"
    static media "$c" image.jpeg
}
# once: what is measured at 8 connections only (the 9 MiB uploads, the peer).
once() {
    post post-vid chatterd 8 /postimages form-vid.body
    post post-vid nofsync 8 /nofsync/postimages form-vid.body
    put post-vid 8 form-vid.body
    upload post-tus chatterd 8 TUS "$BASE/tus/" video9.mp4
    upload post-tus nofsync 8 TUS "$BASE/tus-nofsync/" video9.mp4
    upload post-tus dav 8 PUT "$BASE/put/x" video9.mp4
    wanted list-delay && list_delay
    [ -n "$PEER_URL" ] || return 0
    post post-none peer 8 /postimages form-none.body
    post postchatt peer 8 /postchatt chatt.json
    post post-img peer 8 /postimages form-img.body
    post post-vid peer 8 /postimages form-vid.body
    get get-1k peer 8 seed_1k "$PEER_URL/getimages"
    get get-10k peer 8 seed_10k "$PEER_URL/getimages"
    get media peer 8 : "$(upload_image "$PEER_URL")"
}
# memory: 8 connections upload 1 MiB JPEG + 9 MiB MP4 for BENCH_SECONDS (bench/lib.sh memory_run),
# on fresh workers: those of the matrix keep the buffers of 256 connections resident, and no peak
# would show above that.
memory() {
    local media_bytes=$(($(size "$pay/image.jpeg") + $(size "$pay/video9.mp4")))
    nginx_stop nginx
    nginx_start nginx "$PORT" "$BASE_PORT" "$TLS_PORT"
    memory_run chatterd 8 "$CHATTERD/postimages" POST "$pay/form-10m.body" "$media_bytes" rows_stored $(nginx_workers nginx)
    memory_run dav 8 "$BASE/put/x" PUT "$pay/form-10m.body" "$(size "$pay/form-10m.body")" dav_stored $(nginx_workers nginx)
    if [ -n "$PEER_RUN" ]; then
        memory_run peer 8 "$PEER_URL/postimages" POST "$pay/form-10m.body" "$media_bytes" rows_stored $(peer_workers)
    fi
}
main() {
    for rep in $(seq 1 "$RUNS"); do
        say "---- run $rep of $RUNS"
        for c in $CONCURRENCY; do matrix "$c"; done
        once
    done
    say "---- memory and disk: 8 x (1 MiB JPEG + 9 MiB MP4) uploads"
    [ -n "$ONLY" ] || memory
    reset_inserts
    report
}

# ================================================================ the scenarios' helpers
post() { # SCENARIO SYSTEM C PATH BODY
    local url=$CHATTERD ctype=$CTYPE
    [ "$2" = peer ] && url=$PEER_URL
    [ "$2" = nofsync ] && url=$BASE
    [ "$2" = keep ] && url=$BASE
    [[ "$5" = *.json ]] && ctype=application/json
    wrk_run reset_inserts "$1" "$2" "$3" "$(size "$pay/$5")" "$url$4" POST "$pay/$5" "$ctype"
}
put() { wrk_run reset_inserts "$1" dav "$2" "$(size "$pay/$3")" "$BASE/put/x" PUT "$pay/$3" "$CTYPE"; }
get() { wrk_run "$4" "$1" "$2" "$3" "${bytes[$2.$1]}" "$5"; }
static() { wrk_run : "$1" static "$2" "$(size "$static_dir/$3")" "$BASE/static/$3"; }
upload() { # SCENARIO SYSTEM C METHOD URL BODY
    local BENCH_LOAD="perl $bench/tus.pl"
    wrk_run reset_inserts "$1" "$2" "$3" "$(size "$pay/$6")" "$5" "$4" "$pay/$6" video/mp4
}

reset_inserts() { # no rows, no media files (bench/lib.sh retire_dir)
    psql_chatter -c 'TRUNCATE chatts' >/dev/null
    retire_dir "$media"
    retire_dir "$out/nginx/dav"   # its put/ moves whole: nginx makes it again (create_full_put_path)
    if [ -n "$PEER_MEDIA" ]; then retire_dir "$PEER_MEDIA"; fi
    sync
}
# A 2400x1800 photo (~1.5 MB) tagged as a phone tags it: Exif with GPS, device and a thumbnail,
# XMP, IPTC.
phone_photo() {
    [ -s "$1" ] && return 0
    mkdir -p "$(dirname "$1")"
    convert -seed 7 -size 2400x1800 plasma:fractal -quality 92 "$1.tmp.jpg"
    convert "$1.tmp.jpg" -resize 160x120 "$1.thumb.jpg"
    exiftool -q -overwrite_original -GPSLatitude=48.8566 -GPSLatitudeRef=N -GPSLongitude=2.3522 \
        -GPSLongitudeRef=E -GPSAltitude=35 -Make=Apple "-Model=iPhone 15" -SerialNumber=F17XJ3ABC123 \
        -LensSerialNumber=LS998 -Software=17.1 "-DateTimeOriginal=2024:05:01 10:00:00" \
        -Orientation#=6 "-ThumbnailImage<=$1.thumb.jpg" -XMP:City=Paris -XMP:GPSLatitude=48.8566 \
        -IPTC:City=Paris "$1.tmp.jpg"
    mv "$1.tmp.jpg" "$1"
    rm -f "$1.thumb.jpg"
}
seed_1k() { seed 1000; }
seed_10k() { seed 10000; }
seed_100k() { seed 100000; }
# As the static baseline's file is in the page cache: chatterd's cached listing built once (by
# one request) before the run, as it is between two changes of the table.
seed_100k_cached() {
    seed_100k
    curl -sf -o /dev/null "$CHATTERD/getimages"
}
# list-delay: what one refresh of getimages costs a phone at 100,000 rows, unchanged (a 304) and
# after one new post (the whole listing again), and how soon a post through a second node (nodeb,
# the same database) is listed by the first (bench/list-delay.pl), at 1,000 rows, then 100,000.
list_delay() {
    local tag
    seed_100k
    tag=$(curl -s -o /dev/null -w '%header{etag}' "$CHATTERD/getimages")
    refresh() { curl -s -o /dev/null -w '%{http_code} %{size_header} %{size_download}' -H "If-None-Match: $tag" "$CHATTERD/getimages"; }
    # A paging client, caught up: it followed the pages until one came back empty ([]).
    local cursor="" n
    for ((n = 0; n < 200; n++)); do
        read -r cursor size < <(curl -s -o /dev/null -w '%header{chatter-cursor} %{size_download}\n' "$CHATTERD/getimages?after=$cursor&limit=1000")
        [ "$size" = 2 ] && break
    done
    page() { curl -s -o /dev/null -w '%{http_code} %{size_header} %{size_download}' "$CHATTERD/getimages?after=$cursor&limit=1000"; }
    local lines="$out/list-cache.$RANDOM.txt"
    {
        echo "getimages, 100,000 rows, refresh unchanged (code, header bytes, body bytes): $(refresh)"
        echo "getimages, 100,000 rows, next page when unchanged (code, header bytes, body bytes): $(page)"
        curl -sf -o /dev/null -H "Content-Type: application/json" --data-binary "@$pay/chatt.json" "$CHATTERD/postchatt"
        echo "getimages, 100,000 rows, refresh after one new post (code, header bytes, body bytes): $(refresh)"
        echo "getimages, 100,000 rows, next page after one new post (code, header bytes, body bytes): $(page)"
    } >"$lines"
    nginx_start nodeb "$NODEB_PORT" - "$NODEB_TLS_PORT"
    for rows in 1000 100000; do
        seed "$rows"
        echo "cross-node visibility, $rows rows (ms: median p90 max, runs): $(perl "$bench/list-delay.pl" "$PORT" "$NODEB_PORT" 50)" >>"$lines"
    done
    nginx_stop nodeb
    cat "$lines" >>"$out/list-cache.txt"
    say "list cache: $(tr '\n' ';' <"$lines")"
    rm -f "$lines"
}
# Posts one 1 MiB image to BASE_URL/postimages and prints the URL of the stored file.
upload_image() {
    reset_inserts
    curl -sf -o /dev/null -H "Content-Type: $CTYPE" --data-binary "@$pay/form-img.body" "$1/postimages"
    psql_chatter -At -c 'SELECT imageurl FROM chatts'
}
rows_stored() { psql_chatter -At -c 'SELECT count(*) FROM chatts WHERE videourl IS NOT NULL'; }
dav_stored() { find "$out/nginx/dav" -type f | wc -l; }
# The processes whose CPU a run counts: nginx's workers for chatterd and the nginx baselines, the
# peer's processes when this script started it, none for pgbench (PostgreSQL is counted apart).
server_pids() {
    case $1 in
    chatterd|nofsync|keep|dav|static) nginx_workers nginx ;;
    peer) [ -n "$peer_pid" ] && peer_processes ;;
    esac
    return 0
}

# ================================================================ set-up
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$here/bench"
out="$bench/out"
logs="$out/logs"
pay="$out/payload"
media="$out/media"
static_dir="$out/nginx/static"
QUICK="${BENCH_QUICK:-}"
RUNS="${BENCH_RUNS:-${QUICK:+1}}" RUNS="${RUNS:-3}"
SECS="${BENCH_SECONDS:-${QUICK:+3}}" SECS="${SECS:-5}"
WARMUP="${BENCH_WARMUP:-1}"
ONLY="${BENCH_ONLY:-}"
CONCURRENCY="${BENCH_CONNS:-${QUICK:+8 256}}" CONCURRENCY="${CONCURRENCY:-8 64 256}"
PORT="${BENCH_PORT:-58080}"
BASE_PORT="${BENCH_BASE_PORT:-58081}"
TLS_PORT="${BENCH_TLS_PORT:-58082}"
NODEB_PORT="${BENCH_NODEB_PORT:-58083}"
NODEB_TLS_PORT="${BENCH_NODEB_TLS_PORT:-58084}"
PEER_RUN="${PEER_RUN:-}" PEER_URL="${PEER_URL:-}" PEER_MEDIA="${PEER_MEDIA:-}"
if [ -n "$PEER_RUN" ]; then
    PEER_URL="${PEER_URL:-http://127.0.0.1:58001}"
    PEER_MEDIA="$out/peer-media"
fi
PEER_URL="${PEER_URL%/}"
CHATTERD="http://127.0.0.1:$PORT"
BASE="http://127.0.0.1:$BASE_PORT"
peer_pid=""
# The project's record, or bench/out/ for a quick check.
report_dir="$bench"
[ -n "$QUICK$ONLY" ] && report_dir="$out"

mkdir -p "$out" "$logs"
rm -f "$logs"/* "$out/results.tsv" "$out/memory.tsv" "$out/info.txt" "$out/list-cache.txt"
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"

# The reference peer's Python packages are installed only for a run with PEER_RUN.
"$here/scripts/deps.sh" ${PEER_RUN:+--reference}
"$here/scripts/build.sh"
# What was built: the commit, and whether src/ differed from it (others may be editing it).
built_from="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$here" diff --quiet HEAD -- src config 2>/dev/null || built_from="$built_from (src modified)"

say "payloads (a phone photo: ImageMagick, then exiftool's tags)"
phone_photo "$pay/photo.jpeg"
perl "$bench/gen.pl" "$pay"
CTYPE="$(cat "$pay/content-type")"
insert_vars=(-D deadline=4102444800 -D username=bench
             -D "message=$(perl -ne 'print $1 if /"message":"([^"]*)"/' "$pay/chatt.json")")

wait_previous_trash
on_exit delete_uploads
delete_uploads() {
    retire_dir "$media" keep
    retire_dir "$out/nginx/dav" keep
    if [ -n "$PEER_MEDIA" ]; then retire_dir "$PEER_MEDIA" keep; fi
    delete_trash
}
say "PostgreSQL on port ${BENCH_PG_PORT:-55440}"
pg_start "$out/pg" "${BENCH_PG_PORT:-55440}"
say "nginx: chatterd on $PORT, baselines on $BASE_PORT"
nginx_start nginx "$PORT" "$BASE_PORT" "$TLS_PORT"

# The peer's processes: everything below the process PEER_RUN started (supervisor and workers).
peer_processes() {
    local pids="$peer_pid" next all=""
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
    local w=""
    for pid in $(peer_processes); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q spawn_main && w="$w $pid"
    done
    echo ${w:-$(peer_processes)}
}
stop_peer() {
    if [ -n "$peer_pid" ] && kill -0 "$peer_pid" 2>/dev/null; then kill -TERM "$peer_pid"; wait "$peer_pid"; fi
}
if [ -n "$PEER_RUN" ]; then
    say "peer: $PEER_RUN on $PEER_URL"
    mkdir -p "$PEER_MEDIA"
    peer_port="${PEER_URL##*:}"; peer_port="${peer_port%%/*}"
    "$PEER_RUN" "$TCP_CONNINFO" "$PEER_MEDIA" "$peer_port" >"$logs/peer.log" 2>&1 &
    peer_pid=$!
    on_exit stop_peer
    wait_http "$PEER_URL/getimages" 60 || { echo "the peer did not start:"; tail -20 "$logs/peer.log"; exit 1; }
elif [ -n "$PEER_URL" ]; then
    echo "PEER_URL=$PEER_URL: start the peer on this run's database, e.g."
    echo "  run.sh '$TCP_CONNINFO' MEDIA_DIR PORT"
    echo "waiting up to 5 minutes for $PEER_URL/getimages to answer 200..."
    wait_http "$PEER_URL/getimages" 300 || { echo "no peer at $PEER_URL"; exit 1; }
fi

say "checking every endpoint once"
check() { # EXPECTED_STATUS DESCRIPTION curl-args...
    local want=$1 what=$2 got
    shift 2
    got="$(curl -s -o "$logs/check.body" -w '%{http_code}' "$@")"
    if [ "$got" != "$want" ]; then
        echo "FAILED: $what answered $got, not $want: $(head -c 300 "$logs/check.body")"
        tail -5 "$out/nginx/logs/error.log"
        exit 1
    fi
}
for t in "$CHATTERD" ${PEER_URL:+"$PEER_URL"}; do
    reset_inserts
    for form in form-none form-img form-vid form-10m; do
        check 200 "$t/postimages ($form)" -H "Content-Type: $CTYPE" --data-binary "@$pay/$form.body" "$t/postimages"
    done
    check 200 "$t/postchatt" -H "Content-Type: application/json" --data-binary "@$pay/chatt.json" "$t/postchatt"
done
check 200 "postimages, chatterd_media_fsync off" -H "Content-Type: $CTYPE" --data-binary "@$pay/form-img.body" "$BASE/nofsync/postimages"
check 200 "postimages, chatterd_media_metadata keep" -H "Content-Type: $CTYPE" --data-binary "@$pay/form-meta.body" "$BASE/keep/postimages"
check 201 "DAV PUT" -X PUT -H "Content-Type: $CTYPE" --data-binary "@$pay/form-img.body" "$BASE/put/x"
check 201 "tus POST" -X POST -H "Tus-Resumable: 1.0.0" -H "Upload-Length: 1" "$BASE/tus/"

# chatterd's getimages answers, saved as the static baseline's files; the bytes of every answer.
declare -A bytes etag
for rows in 1000 10000 100000; do
    s=get-$((rows / 1000))k
    seed "$rows"
    curl -sf -o "$static_dir/getimages-$rows.json" "$CHATTERD/getimages"
    bytes[chatterd.$s]=$(size "$static_dir/getimages-$rows.json")
    if [ -n "$PEER_URL" ]; then
        curl -sf -o "$logs/peer-getimages-$rows.json" "$PEER_URL/getimages"
        bytes[peer.$s]=$(size "$logs/peer-getimages-$rows.json")
        cmp -s "$logs/peer-getimages-$rows.json" "$static_dir/getimages-$rows.json" \
            && echo "getimages, $rows rows: chatterd's and the peer's JSON are byte-identical" >>"$out/info.txt" \
            || echo "getimages, $rows rows: chatterd's and the peer's JSON differ (bench/out/logs/peer-getimages-$rows.json)" >>"$out/info.txt"
    fi
done
etag[chatterd]=$(curl -s -o /dev/null -w '%header{etag}' "$CHATTERD/getimages")
etag[static]=$(curl -s -o /dev/null -w '%header{etag}' "$BASE/static/getimages-100000.json")
cp "$pay/image.jpeg" "$static_dir/image.jpeg"
bytes[chatterd.media]=$(size "$pay/image.jpeg") bytes[peer.media]=${bytes[chatterd.media]}

report() {
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
        echo "connections	$CONCURRENCY"
        echo "quick	${QUICK:-0}"
        [ -z "${BENCH_NOTE:-}" ] || echo "note	$BENCH_NOTE"
        echo "load	$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "peer	${PEER_RUN:-${PEER_URL:-none}}"
        if [ -n "$PEER_RUN" ]; then echo "peer_name	$(basename "$(dirname "$PEER_RUN")")"; elif [ -n "$PEER_URL" ]; then echo "peer_name	$PEER_URL"; fi
        echo "elapsed	$(($(date +%s) - started))"
    } >>"$out/info.txt"
    perl "$bench/report.pl" "$out" "$report_dir/REPORT.md" "$out/ratios.dat" "$out/latency.dat"
    haspeer=$(awk '$NF != "NaN" { n++ } END { print (n > 0) ? 1 : 0 }' "$out/ratios.dat")
    gnuplot -e "datafile='$out/ratios.dat'; outfile='$report_dir/ratios.png'; haspeer=$haspeer" "$bench/ratios.gnuplot"
    gnuplot -e "datafile='$out/latency.dat'; outfile='$report_dir/latency.png'" "$bench/latency.gnuplot"
    say "done: $report_dir/REPORT.md, ratios.png, latency.png"
}

main
