#!/bin/bash
# The leak check of make test-asan (run by scripts/test-asan.sh; alone:
# scripts/leak-check.sh build/asan/nginx-leaks after a make test-asan).
# One nginx (master and 2 workers) with the ASan module and detect_leaks=1 takes a mixed load of
# every endpoint, over HTTP/1.1 and HTTP/2, with failures (malformed bodies, bad Host, media too
# large or of no allowed type, clients that leave mid-upload) and a database outage (503s, then
# recovery); then `nginx -s quit`. LeakSanitizer reports at the exit of each process.
# nginx never frees some of its own memory at exit (its cycle pool, the memory of the signalling
# process), and LSan suppressions cannot tell those allocations from ours (a suppression matches
# a stack when any of its frames matches, and every stack has nginx frames below the module's).
# So each leak is judged by its allocation stack (full stacks: fast_unwind_on_malloc=0): a leak
# with a frame in the module (ngx_http_chatterd_module.so, chatterd::, our sources) fails the
# check; the others are nginx's own, counted and moved to ASAN_LOG_DIR/../nginx-own-leaks/.
# Any other sanitizer report stays in ASAN_LOG_DIR (test-asan.sh fails on it).
#   $1               the nginx wrapper with detect_leaks=1 (build/asan/nginx-leaks)
#   ASAN_LOG_DIR     where the wrapper writes its reports
#   LEAK_PORT        HTTP/1.1 port (default TEST_NGINX_PORT, else 1984); LEAK_PORT+1 is h2c
#   TEST_NGINX_PG_CONNINFO, TEST_NGINX_PG_DIR, TEST_NGINX_PG_PORT: the running test cluster
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nginx="${1:?usage: leak-check.sh NGINX_WRAPPER}"
logs="${ASAN_LOG_DIR:?}"
port="${LEAK_PORT:-${TEST_NGINX_PORT:-1984}}"
h2_port=$((port + 1))
prefix="$here/build/asan/leak"
allowed="$(dirname "$logs")/nginx-own-leaks"
rm -rf "$prefix" "$allowed"
mkdir -p "$allowed"
module="$here/build/asan/ngx_http_chatterd_module.so"

# nginx.conf.example with small limits, so that the load below reaches every failure path in a
# few hundred requests, and h2c (HTTP/2 without TLS) on the second port.
"$here/scripts/nginx-conf.pl" --prefix "$prefix" --conninfo "$TEST_NGINX_PG_CONNINFO" \
    --module "$module" --http-port "$port" --https-port "$h2_port" --replace listen ssl '' \
    --workers 2 --log-level info --append main $'daemon off;\nmaster_process on;' \
    --set chatterd_pg_pool 2 --set chatterd_pg_timeout 2s --set chatterd_pg_backoff_max 1s \
    --set client_max_body_size 1m --set client_body_buffer_size 16k \
    --set chatterd_media_max_size 64k --set chatterd_media_sweep 3s \
    --append server 'location /status { chatterd_status; }'

"$nginx" -p "$prefix/" -c nginx.conf &
master=$!
stop_nginx() {
    if kill -0 "$master" 2>/dev/null; then
        "$nginx" -p "$prefix/" -c nginx.conf -s quit || kill -QUIT "$master"
        for _ in $(seq 1 300); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$master" 2>/dev/null && { echo "leak-check: nginx did not quit; killed" >&2; kill -KILL "$master"; }
        wait "$master" || true
    fi
}
trap stop_nginx EXIT
up=0
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/status" && { up=1; break; }
    kill -0 "$master" 2>/dev/null || break
    sleep 0.1
done
[ "$up" = 1 ] || { echo "leak-check: nginx did not start:" >&2; tail -5 "$prefix/logs/error.log" >&2; exit 1; }

base="http://127.0.0.1:$port"
h2="http://127.0.0.1:$h2_port"
codes="$prefix/codes"
: >"$codes"
req() { curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "$@" >>"$codes" || echo "curl-$?" >>"$codes"; }
# Media: a PNG, an MP4 head, bytes of no allowed type, and a PNG over chatterd_media_max_size.
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00' >"$prefix/a.png"
printf '\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2avc1' >"$prefix/a.mp4"
head -c 300 /dev/zero >"$prefix/a.bin"
{ cat "$prefix/a.png"; head -c 70000 /dev/zero; } >"$prefix/big.png"
{ cat "$prefix/a.png"; head -c 900000 /dev/zero; } >"$prefix/slow.png"

load() {   # one round of every endpoint, right and wrong, over $1
    local url="$1"; shift
    req "$@" "$url/getchatts"
    req "$@" "$url/getimages"
    req "$@" "$url/status"
    req "$@" -H 'Content-Type: application/json' --data-binary '{"username":"leak","message":"hello 😀"}' "$url/postchatt"
    req "$@" -H 'Content-Type: application/json' --data-binary '{"username":"leak","message":"\ud83d\ude00"}' "$url/postchatt"
    req "$@" -H 'Content-Type: application/json' --data-binary '{"username":"leak",' "$url/postchatt"
    req "$@" -H 'Content-Type: application/json' --data-binary '["not an object"]' "$url/postchatt"
    req "$@" -H 'Content-Type: application/json' --data-binary '{"username":"\u0000","message":"m"}' "$url/postchatt"
    req "$@" -H 'Content-Type: application/json' --data-binary "{\"username\":\"leak\",\"message\":\"$(printf 'x%.0s' $(seq 1 300))\"}" "$url/postchatt"
    req "$@" -F username=leak -F message=image -F "image=@$prefix/a.png" "$url/postimages"
    req "$@" -F username=leak -F message=both -F "image=@$prefix/a.png" -F "video=@$prefix/a.mp4" "$url/postimages"
    req "$@" -F username=leak -F message=text-only "$url/postimages"
    req "$@" -F username=leak -F message=unknown -F "image=@$prefix/a.bin" "$url/postimages"
    req "$@" -F username=leak -F message=too-big -F "image=@$prefix/big.png" "$url/postimages"
    req "$@" -F username=leak -F message=bad-host -F "image=@$prefix/a.png" -H 'Host: a@evil.example' "$url/postimages"
    req "$@" -H 'Content-Type: multipart/form-data; boundary=XyZ' --data-binary $'--XyZ\r\nContent-Disposition: form-data; name="username"\r\n\r\nx\r\n--Xy' "$url/postimages"
    req "$@" -H 'Content-Type: text/plain' --data-binary 'username=x' "$url/postimages"
    # A client that leaves in the middle of its upload.
    req "$@" --limit-rate 100k --max-time 1 -F username=leak -F message=gone -F "image=@$prefix/slow.png" "$url/postimages"
}
for _ in 1 2 3; do
    load "$base"
    load "$h2" --http2-prior-knowledge
    # Concurrent requests, more than the pool holds: some wait in the queue.
    clients=()
    for _ in $(seq 1 8); do req "$base/getimages" & clients+=($!); done
    for _ in $(seq 1 8); do
        req -H 'Content-Type: application/json' --data-binary '{"username":"c","message":"q"}' "$base/postchatt" &
        clients+=($!)
    done
    wait "${clients[@]}"   # not nginx, also a child of this shell
done
# The database goes away: 503s (timeouts, refused connections, back-off), then it comes back.
"$here/scripts/pg.sh" stop "$TEST_NGINX_PG_DIR"
load "$base"
load "$h2" --http2-prior-knowledge
sleep 1.5
load "$base"
"$here/scripts/pg.sh" start "$TEST_NGINX_PG_DIR" "$TEST_NGINX_PG_PORT" >/dev/null
for _ in $(seq 1 60); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/getchatts")" = 200 ] && break
    sleep 0.5
done
load "$base"
load "$h2" --http2-prior-knowledge
sleep 3.5   # a media sweep round (chatterd_media_sweep 3s)
echo "leak-check: $(wc -l <"$codes") requests: $(sort "$codes" | uniq -c | tr -s ' ' | tr '\n' ',' | sed 's/,$//')"
stop_nginx
trap - EXIT
grep -q '^200$' "$codes" && grep -q '^503$' "$codes" \
    || { echo "leak-check: the load did not get both 200s and 503s; see $prefix/logs/error.log" >&2; exit 1; }

# Judge every LeakSanitizer report: a leak block ("Direct leak ..." or "Indirect leak ..." and its
# stack) is ours when a frame of its stack is in the module.
ours=0
nginx_own=0
for f in "$logs"/asan.*; do
    [ -e "$f" ] || continue
    grep -q 'ERROR: LeakSanitizer' "$f" || continue         # other reports stay, and fail the run
    grep -q 'ERROR: AddressSanitizer' "$f" && continue
    mine=$(awk '/^(Direct|Indirect) leak/ { block = $0; next }
               block != "" && /^$/ { if (block ~ /ngx_http_chatterd_module\.so|chatterd::|\/src\/(core|ngx|handlers)\//) print block; block = ""; next }
               block != "" { block = block "\n" $0 }
               END { if (block ~ /ngx_http_chatterd_module\.so|chatterd::|\/src\/(core|ngx|handlers)\//) print block }' "$f")
    if [ -n "$mine" ]; then
        ours=$((ours + 1))
        echo "leak-check: a leak of the module in $f:" >&2
        echo "$mine" | head -60 >&2
    else
        nginx_own=$((nginx_own + $(grep -c '^\(Direct\|Indirect\) leak' "$f")))
        mv "$f" "$allowed/"
    fi
done
echo "leak-check: $nginx_own leak(s) of nginx's own (no frame of the module) in $(ls "$allowed" | wc -l) process(es), moved to $allowed; $ours report(s) with leaks of the module"
[ "$ours" = 0 ]
