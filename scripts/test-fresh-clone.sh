#!/bin/bash
# `make run` and `make test` from a fresh clone of HEAD in a folder only its owner can enter
# (mktemp -d: mode 0700, like /root or a Debian home directory), where PostgreSQL's postgres user
# and nginx's workers cannot go.
#   1. git clone HEAD into $(mktemp -d)/chatterd
#   2. make run there in the background (HTTP_PORT, HTTPS_PORT, PG_PORT; not the default ports),
#      until /getimages answers 200; a post with an image (written by the workers into the
#      clone's media folder), the image served by /media/; then SIGINT to nginx, which stops
#      PostgreSQL (run.sh's trap)
#   3. make test there with TEST_FILES (default t/getimages.t): the unit tests and that suite
#   4. make clean-pg there, and the folder removed
# Uncommitted changes are not in the clone. Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HTTP_PORT="${HTTP_PORT:-18080}" HTTPS_PORT="${HTTPS_PORT:-18443}" PG_PORT="${PG_PORT:-55441}"
FRESH_TEST_FILES="${FRESH_TEST_FILES:-t/getimages.t}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"   # seconds for make run to answer (it may install and build)

say() { printf '[fresh clone %3ds] %s\n' "$SECONDS" "$*"; }
# The clone must not inherit this checkout's settings (a data directory, a server root...).
unset TEST_PG_DIR PG_DIR RUN_DIR MEDIA_DIR TEST_FILES TEST_NGINX_SERVROOT TEST_NGINX_MEDIA_ROOT \
      MAKEFLAGS MAKELEVEL MFLAGS

if ! git -C "$here" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    say "skipped: $here is not a git checkout"
    exit 0
fi

tmp="$(mktemp -d)"
clone="$tmp/chatterd"
run_pid=""
nginx_pid=""

# Stops make run: SIGINT to nginx (run.sh then stops PostgreSQL), and after 30 s the whole
# process group make run was started in (setsid). Returns make run's exit status.
stop_run() {
    local status=0
    [ -n "$run_pid" ] || return 0
    if [ -z "$nginx_pid" ] && [ -f "$clone/run/logs/nginx.pid" ]; then
        nginx_pid="$(cat "$clone/run/logs/nginx.pid")"
    fi
    if [ -n "$nginx_pid" ] && grep -qs nginx "/proc/$nginx_pid/cmdline"; then kill -INT "$nginx_pid"; fi
    for _ in $(seq 300); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$run_pid" 2>/dev/null; then
        say "make run did not stop on SIGINT: SIGTERM to its process group $run_pid"
        kill -TERM -- "-$run_pid" 2>/dev/null || true
    fi
    wait "$run_pid" || status=$?
    run_pid=""
    return $status
}
cleanup() {
    local status=$?
    set +e
    stop_run
    if [ -x "$clone/scripts/pg.sh" ]; then "$clone/scripts/pg.sh" clean >/dev/null; fi
    rm -rf "$tmp"
    [ $status = 0 ] && say "passed" || say "FAILED (status $status)"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "cloning HEAD ($(git -C "$here" rev-parse --short HEAD)) into $clone (folder mode $(stat -c %a "$tmp"))"
git clone -q --no-checkout "$here" "$clone"
git -C "$clone" fetch -q "$here" HEAD
git -C "$clone" checkout -q --detach FETCH_HEAD

say "make run HTTP_PORT=$HTTP_PORT HTTPS_PORT=$HTTPS_PORT PG_PORT=$PG_PORT"
HTTP_PORT="$HTTP_PORT" HTTPS_PORT="$HTTPS_PORT" PG_PORT="$PG_PORT" \
    setsid make -C "$clone" run </dev/null >"$tmp/run.log" 2>&1 &
run_pid=$!
url="http://127.0.0.1:$HTTP_PORT"
deadline=$((SECONDS + RUN_TIMEOUT))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/getimages")" = 200 ]; do
    if ! kill -0 "$run_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
        say "make run never answered 200 on $url/getimages; its output:"
        cat "$tmp/run.log"
        exit 1
    fi
    sleep 0.2
done
nginx_pid="$(cat "$clone/run/logs/nginx.pid")"
say "GET /getimages: 200 (nginx pid $nginx_pid)"

# A 1x1 GIF, posted, listed, and served: the workers write and read the clone's media folder.
printf 'GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;' \
    >"$tmp/pixel.gif"
answer="$(curl -s -w ' %{http_code}' -F username=fresh -F message=clone -F "image=@$tmp/pixel.gif" "$url/postimages")"
[ "$answer" = '{} 200' ] || { say "POST /postimages answered: $answer"; cat "$clone/run/logs/error.log"; exit 1; }
media_url="$(curl -s "$url/getimages" | grep -o 'http://[^"]*/media/fresh-[0-9a-f]*\.gif' | head -1)"
[ -n "$media_url" ] || { say "the post is not listed by /getimages"; exit 1; }
code="$(curl -s -o "$tmp/served.gif" -w '%{http_code}' "$media_url")"
[ "$code" = 200 ] && cmp -s "$tmp/pixel.gif" "$tmp/served.gif" \
    || { say "GET $media_url: $code, or not the bytes posted"; exit 1; }
say "POST /postimages: 200, listed, its image served by /media/"

say "SIGINT to nginx"
stop_run || { say "make run exited with status $?"; cat "$tmp/run.log"; exit 1; }
pg_dir="$("$clone/scripts/pg.sh" dir run "$PG_PORT")"
if [ -e "$pg_dir/postmaster.pid" ] || [ -S "$pg_dir.socket/.s.PGSQL.$PG_PORT" ]; then
    say "PostgreSQL of make run is still running ($pg_dir)"; exit 1
fi
say "make run stopped, and its PostgreSQL with it"

say "make test TEST_FILES=\"$FRESH_TEST_FILES\""
TEST_FILES="$FRESH_TEST_FILES" make -s -C "$clone" test
say "make test passed"
