#!/bin/bash
# make test: installs what is missing, checks the code style, builds, runs the unit tests and
# every suite of t/ against the real nginx with the built module and throwaway PostgreSQL
# clusters. It installs no package but what scripts/deps.sh names (nothing after make deps),
# touches neither the system's nginx nor /etc/nginx, and exits non-zero on any failure.
# make ci (scripts/ci.sh) runs this, then the sanitizers, the package and the fresh clone.
#
# The suites run in TEST_JOBS lanes side by side (they mostly wait: on timeouts, outages,
# slow clients). Each lane has its own cluster, Test::Nginx port and server roots, since a suite
# empties the table and pauses, kills or restarts its database; each takes the next suite from
# one queue, the longest first (LONG_SUITES, then the others in name order), until none is left.
#   TEST_PG_PORT (default 25439)   lane 0's database; its fault suites use the next 3 ports;
#                                  lane N uses TEST_PG_PORT + 4N .. + 4N + 3
#   TEST_NGINX_PORT (default 1984) lane 0's Test::Nginx port; lane N uses TEST_NGINX_PORT + N
#   TEST_PG_DIR                    lane 0's data directory (default: scripts/pg.sh dir test PORT)
#   TEST_JOBS (default 3)          lanes; 1: every suite one after the other
#   TEST_FILES                     only these suites, one after the other in lane 0, e.g.
#                                  TEST_FILES="t/getimages.t t/media.t"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export TEST_PG_PORT="${TEST_PG_PORT:-25439}"
export TEST_NGINX_PORT="${TEST_NGINX_PORT:-1984}"
jobs="${TEST_JOBS:-3}"

# The suites that take longest, longest first: the queue starts with them so that no lane is
# left with a long one at the end. Any suite not named here runs too, after them.
LONG_SUITES=(t/pg_outage.t t/postimages_limits.t t/postimages.t t/postimages_clients.t
             t/pg_failover.t t/abuse_clients.t t/pg_resilience.t t/postchatt.t t/media_sweep.t
             t/status.t)

scripts/deps.sh
# shellcheck source=scripts/test-env.sh
. scripts/test-env.sh
check_test_nginx
scripts/format.sh check
# The unit tests (compiled on one core) run beside the module's build and the suites; their
# output comes at the end (make unit runs them alone).
mkdir -p build
scripts/unit.sh >build/unit.log 2>&1 &
unit=$!
# unit_result: the unit tests' output, and their status.
unit_result() {
    local status=0
    wait "$unit" || status=$?
    echo "---- unit tests (scripts/unit.sh):"
    cat build/unit.log
    [ "$status" = 0 ] || echo "make test: the unit tests failed" >&2
    return "$status"
}
scripts/build.sh

scripts/pg.sh stop-old
export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"

# lane N COMMAND...: COMMAND with lane N's cluster (started, and stopped after), ports and
# server roots.
lane() {
    local n="$1"
    shift
    local pg_port=$((TEST_PG_PORT + 4 * n))
    local pg_dir="${TEST_PG_DIR:-$(scripts/pg.sh dir test "$TEST_PG_PORT")}"
    [ "$n" = 0 ] || pg_dir="$(scripts/pg.sh dir test "$pg_port")"
    (
        export TEST_PG_PORT="$pg_port" TEST_NGINX_PORT=$((TEST_NGINX_PORT + n))
        scripts/pg.sh start "$pg_dir" "$TEST_PG_PORT" >/dev/null
        trap 'scripts/pg.sh stop "$pg_dir" >/dev/null' EXIT
        test_env "$here/build/ngx_http_chatterd_module.so" t
        if [ "$n" != 0 ]; then
            # servroot-laneN/servroot: the roots' own names stay servroot, servroot_<script>...
            local base="${TEST_NGINX_SERVROOT:-$here/t/servroot}"
            TEST_NGINX_SERVROOT="$(dirname "$base")/servroot-lane$n/$(basename "$base")"
            export TEST_NGINX_SERVROOT
            mkdir -p "$(dirname "$TEST_NGINX_SERVROOT")"
        fi
        "$@"
    )
}

if [ -n "${TEST_FILES:-}" ] || [ "$jobs" = 1 ]; then
    files=(-r t/)
    [ -z "${TEST_FILES:-}" ] || read -ra files <<<"$TEST_FILES"
    status=0
    lane 0 prove "${files[@]}" || status=1
    unit_result || status=1
    exit $status
fi

work="$here/build/test-lanes"
rm -rf "$work"
mkdir -p "$work"
{
    printf '%s\n' "${LONG_SUITES[@]}"
    find t -name '*.t' | sort | grep -vxF -f <(printf '%s\n' "${LONG_SUITES[@]}")
} >"$work/queue"
: >"$work/failed"

# take_suite: the next suite of the queue (empty when none is left), removed from it.
take_suite() {
    (
        flock 9
        local suite
        suite="$(head -n 1 "$work/queue")"
        [ -z "$suite" ] || sed -i 1d "$work/queue"
        printf '%s' "$suite"
    ) 9>"$work/queue.lock"
}

# run_lane: the lane's suites, each through prove; each output is printed whole once its suite
# is done (under the lock, so that suites' outputs do not interleave).
run_lane() {
    local suite out
    while suite="$(take_suite)" && [ -n "$suite" ]; do
        out="$work/$(basename "$suite" .t).$RANDOM.log"
        if prove "$suite" >"$out" 2>&1; then
            (flock 9; cat "$out") 9>"$work/output.lock"
        else
            (flock 9; cat "$out"; echo "$suite" >>"$work/failed") 9>"$work/output.lock"
        fi
    done
}

started=$(date +%s)
pids=()
for ((n = 0; n < jobs; n++)); do
    lane "$n" run_lane &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
unit_result || status=1
total=$(find t -name '*.t' | wc -l)
failed=$(wc -l <"$work/failed")
[ -s "$work/queue" ] && { echo "make test: suites never run: $(cat "$work/queue")" >&2; status=1; }
echo "make test: $jobs lanes, $(( $(date +%s) - started )) s"
[ "$failed" = 0 ] || echo "make test: failed: $(tr '\n' ' ' <"$work/failed")" >&2
echo "suites: $((total - failed)) passed, $failed failed"
[ "$failed" = 0 ] && exit $status
exit 1
