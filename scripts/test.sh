#!/bin/bash
# make test: installs what is missing, checks the code style, builds, runs the unit tests and
# every suite of t/ against the real nginx with the built module and throwaway PostgreSQL
# clusters. It installs no package but what scripts/deps.sh names (nothing after make deps),
# touches neither the system's nginx nor /etc/nginx, and exits non-zero on any failure.
# make ci (scripts/ci.sh) runs this, then the sanitizers, the package and the fresh clone.
#
# The suites run as two groups side by side, each with its own cluster, nginx port and server
# roots (a suite truncates the table and pauses or kills its database, so two suites must not
# share one): group 1 is the long fault and load suites of FAULT_SUITES below, group 0 every
# other suite. With TEST_FILES, or TEST_JOBS=1, they run one after the other in group 0.
#   TEST_PG_PORT (default 25439)  group 0's database; its fault suites use the next 3 ports,
#                                 group 1 the 4 ports after them (TEST_PG_PORT+4 .. +7)
#   TEST_NGINX_PORT (default 1984) group 0's Test::Nginx port; group 1 uses the next one
#   TEST_PG_DIR                   group 0's data directory (default: scripts/pg.sh dir test PORT)
#   TEST_FILES                    only these suites, e.g. TEST_FILES="t/getimages.t t/media.t"
#   TEST_JOBS=1                   every suite in one group
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export TEST_PG_PORT="${TEST_PG_PORT:-25439}"
export TEST_NGINX_PORT="${TEST_NGINX_PORT:-1984}"

# The long scenarios that start, kill or pause databases of their own, or put load on nginx.
FAULT_SUITES=(t/pg_outage.t t/pg_failover.t t/abuse_clients.t t/abuse_http2.t t/abuse_media.t
              t/abuse_reload.t t/postimages_clients.t t/pg_batch.t t/two_nodes.t)

scripts/deps.sh
# shellcheck source=scripts/test-env.sh
. scripts/test-env.sh
check_test_nginx
scripts/format.sh check
# The module and the unit tests compile side by side, each on one core.
mkdir -p build
scripts/unit.sh >build/unit.log 2>&1 &
unit=$!
scripts/build.sh
unit_status=0
wait "$unit" || unit_status=$?
cat build/unit.log
[ "$unit_status" = 0 ] || { echo "make test: the unit tests failed" >&2; exit 1; }

scripts/pg.sh stop-old
export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"

# run_group N FILES...: the suites on group N's cluster, nginx port and server roots.
run_group() {
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
            export TEST_NGINX_SERVROOT="${TEST_NGINX_SERVROOT:-$here/t/servroot}-g$n"
        fi
        prove "$@"
    )
}

if [ -n "${TEST_FILES:-}" ]; then
    read -ra files <<<"$TEST_FILES"
    run_group 0 "${files[@]}"
    exit 0
fi
if [ "${TEST_JOBS:-2}" = 1 ]; then
    run_group 0 -r t/
    exit 0
fi
mapfile -t others < <(find t -name '*.t' | sort | grep -vxF -f <(printf '%s\n' "${FAULT_SUITES[@]}"))
log="$here/build/test-group1.log"
started=$(date +%s)
run_group 1 "${FAULT_SUITES[@]}" >"$log" 2>&1 &
group1=$!
status=0
run_group 0 "${others[@]}" || status=1
wait "$group1" || status=1
echo "---- group 1 (fault and load suites), from $log:"
cat "$log"
echo "make test: the suites took $(( $(date +%s) - started )) s"
exit $status
