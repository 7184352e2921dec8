#!/bin/bash
# make ci (and .ci/run): everything, 15 to 20 minutes on 2 cores. make test (deps, code style,
# build, unit tests, every suite), then the suites again under AddressSanitizer and UBSan with a
# leak check (scripts/test-asan.sh), the Debian package built, installed into this machine's
# nginx, used once and purged (scripts/test-deb.sh: needs root or sudo), and make run + a short
# make test from a fresh clone (scripts/test-fresh-clone.sh). Exits non-zero on any failure.
#   TEST_ASAN=0, TEST_DEB=0, TEST_FRESH_CLONE=0   skip that step
#   TEST_PG_PORT, TEST_NGINX_PORT, TEST_PG_DIR    as for make test (the steps run one after the
#                                                 other on the same ports)
#   HTTP_PORT HTTPS_PORT PG_PORT                  the fresh clone's make run (18080 18443 55441)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
started=$(date +%s)
step() { echo "make ci: $1 ($(( $(date +%s) - started )) s so far)"; }

unset TEST_FILES
scripts/test.sh
step "make test passed"
if [ "${TEST_ASAN:-1}" != 0 ]; then
    scripts/test-asan.sh
    step "the sanitizers found nothing"
fi
if [ "${TEST_DEB:-1}" != 0 ]; then
    scripts/test-deb.sh
    step "the package test passed"
fi
# The fresh clone's make test reuses TEST_PG_PORT (every cluster above is stopped) and
# TEST_NGINX_PORT.
if [ "${TEST_FRESH_CLONE:-1}" != 0 ]; then
    scripts/test-fresh-clone.sh
    step "the fresh clone passed"
fi
step "everything passed"
