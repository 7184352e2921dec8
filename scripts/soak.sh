#!/bin/bash
# make soak: a bounded soak of chatterd on loopback (scripts/soak.pl): a mixed load of every
# endpoint and /media/ from SOAK_CLIENTS (64) connections for SOAK_SECONDS (600), a fault every
# SOAK_FAULT_EVERY (60) seconds in turn (PostgreSQL killed and restarted, nginx -s reload, a
# worker killed -9, PostgreSQL paused and resumed, connection limit 0 then lifted). Prints a
# summary and exits non-zero when a check fails. Builds the module first.
#   SOAK_PORT              nginx's port on 127.0.0.1 (default: one t/lib's Chatterd::Ports hands out)
#   SOAK_PG_PORT (25405)   the soak's own PostgreSQL cluster (scripts/pg.sh dir soak PORT),
#                          stopped at the end
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
pg_port="${SOAK_PG_PORT:-25405}"
pg_dir="${SOAK_PG_DIR:-$(scripts/pg.sh dir soak "$pg_port")}"

scripts/build.sh >/dev/null
scripts/pg.sh start "$pg_dir" "$pg_port" >/dev/null
trap 'scripts/pg.sh stop "$pg_dir" >/dev/null' EXIT
scratch="$(scripts/pg.sh scratch soak)"

export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
export TEST_NGINX_LOAD_MODULES="$here/build/ngx_http_chatterd_module.so"
export TEST_NGINX_PG_CONNINFO="$(scripts/pg.sh conninfo "$pg_dir" "$pg_port")"
export TEST_NGINX_PG_DIR="$pg_dir"
export TEST_NGINX_PG_PORT="$pg_port"
export TEST_NGINX_PSQL="$here/scripts/pg.sh psql $pg_dir $pg_port"
export TEST_NGINX_SERVROOT="$scratch/servroot"
export TEST_NGINX_MEDIA_ROOT="$scratch/media"
mkdir -p "$TEST_NGINX_MEDIA_ROOT"
perl scripts/soak.pl
