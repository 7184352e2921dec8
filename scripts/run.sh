#!/bin/bash
# make run: installs what is missing, builds, starts a throwaway PostgreSQL (scripts/pg.sh: under
# /tmp/chatterd, reachable by the postgres user whatever the clone's folder allows) and nginx with
# chatterd in the foreground (http://127.0.0.1:8080, https://127.0.0.1:8443 with HTTP/2).
# Ctrl-C (SIGINT to nginx) stops nginx and the database.
# Variables: HTTP_PORT HTTPS_PORT PG_PORT PG_DIR RUN_DIR MEDIA_DIR NGINX WORKERS.
#   RUN_DIR (default ./run): nginx's prefix, configuration, logs and certificate
#   PG_DIR (default: scripts/pg.sh dir run PG_PORT): the database's data directory
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HTTP_PORT="${HTTP_PORT:-8080}" HTTPS_PORT="${HTTPS_PORT:-8443}" PG_PORT="${PG_PORT:-55432}"
RUN_DIR="${RUN_DIR:-$here/run}" MEDIA_DIR="${MEDIA_DIR:-$here/media}"
NGINX="${NGINX:-/usr/sbin/nginx}" WORKERS="${WORKERS:-auto}"
PG_DIR="${PG_DIR:-$("$here/scripts/pg.sh" dir run "$PG_PORT")}"

"$here/scripts/deps.sh"
"$here/scripts/build.sh"
"$here/scripts/pg.sh" stop-old
"$here/scripts/pg.sh" start "$PG_DIR" "$PG_PORT"
conninfo="$("$here/scripts/pg.sh" conninfo "$PG_DIR" "$PG_PORT")"
"$here/scripts/nginx-conf.pl" --prefix "$RUN_DIR" --media "$MEDIA_DIR" --conninfo "$conninfo" \
    --http-port "$HTTP_PORT" --https-port "$HTTPS_PORT" --workers "$WORKERS"

stop() { "$here/scripts/pg.sh" stop "$PG_DIR"; }
trap stop EXIT
echo "chatterd: http://127.0.0.1:$HTTP_PORT  https://127.0.0.1:$HTTPS_PORT (HTTP/2)  media in $MEDIA_DIR"
echo "          error log $RUN_DIR/logs/error.log; database in $PG_DIR"
echo "          Ctrl-C stops nginx and PostgreSQL"
# nginx stops on SIGINT (fast shutdown); the trap then stops PostgreSQL.
"$NGINX" -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" -g "daemon off;" || true
