#!/bin/bash
# make test: installs what is missing, builds, runs the unit tests, starts a throwaway
# PostgreSQL, runs every Test::Nginx suite in t/ against the real nginx with the built module,
# stops the database, then (full runs only) the same under AddressSanitizer and UBSan with a leak
# check (scripts/test-asan.sh, about 10 minutes), the Debian package test (scripts/test-deb.sh, about
# 30 s: it installs and purges the package on this machine) and a check that `make run` and a
# short `make test` work from a fresh clone in a folder only its owner can enter
# (scripts/test-fresh-clone.sh, about a minute). Exits non-zero on any failure.
#   TEST_PG_PORT (default 25439)  the database's port
#   TEST_PG_DIR                   its data directory (default: scripts/pg.sh dir test PORT)
#   TEST_FILES                    the suites to run (default: every one, prove -r t/), e.g.
#                                 TEST_FILES="t/getimages.t t/media.t"; nothing else then
#   TEST_FRESH_CLONE=0            skip the fresh-clone check
#   TEST_ASAN=0                   skip make test-asan
#   HTTP_PORT HTTPS_PORT PG_PORT  the fresh clone's make run (default 18080 18443 55441)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export TEST_PG_PORT="${TEST_PG_PORT:-25439}"
pg_dir="${TEST_PG_DIR:-$(scripts/pg.sh dir test "$TEST_PG_PORT")}"

scripts/deps.sh
scripts/format.sh check
scripts/build.sh
scripts/unit.sh

scripts/pg.sh stop-old
scripts/pg.sh start "$pg_dir" "$TEST_PG_PORT" >/dev/null
trap 'scripts/pg.sh stop "$pg_dir"' EXIT

# shellcheck source=scripts/test-env.sh
. scripts/test-env.sh
test_env "$here/build/ngx_http_chatterd_module.so" t
export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"

# t/lib is a fallback: an installed Test::Nginx (or one on PERL5LIB) wins, as in every suite.
perl -e 'push @INC, "t/lib"; require Test::Nginx::Socket;
         print "Test::Nginx::Socket: $INC{q{Test/Nginx/Socket.pm}}\n"'
if [ -n "${TEST_FILES:-}" ]; then
    read -ra files <<<"$TEST_FILES"
    prove "${files[@]}"
else
    prove -r t/
fi
scripts/pg.sh stop "$pg_dir"
trap - EXIT
[ -n "${TEST_FILES:-}" ] && exit 0

# The suites again under ASan and UBSan, and the leak check (about 10 minutes; same cluster and ports).
if [ "${TEST_ASAN:-1}" != 0 ]; then
    scripts/test-asan.sh
fi
# The Debian package: built, installed into this machine's nginx, one request, purged.
scripts/test-deb.sh
# The fresh clone's make test reuses TEST_PG_PORT (this cluster is stopped) and TEST_NGINX_PORT.
if [ "${TEST_FRESH_CLONE:-1}" != 0 ]; then
    scripts/test-fresh-clone.sh
fi
