#!/bin/bash
# A throwaway PostgreSQL cluster for the local run, the tests and the benchmarks.
#   pg.sh start DIR PORT   initdb into DIR once, start it (TCP on 127.0.0.1:PORT and a unix
#                          socket in DIR.socket), create role chatter and database chatterdb, load schema.sql
#   pg.sh stop DIR         fast shutdown of that cluster only
#   pg.sh conninfo DIR PORT   the libpq conninfo chatterd uses (unix socket, no password)
#   pg.sh psql DIR PORT [psql args]   psql as chatter
# No system service is touched. The server runs as the postgres OS user when started by root
# (initdb refuses root), otherwise as the current user.
set -euo pipefail
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd="${1:?usage: pg.sh start|stop|conninfo|psql DIR [PORT]}"
dir="${2:?DIR}"
port="${3:-5432}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# The socket lives beside the data directory (which PostgreSQL keeps private), so that nginx
# workers running as an unprivileged user can reach it.
socket_dir="$dir.socket"

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
conninfo() { echo "host=$socket_dir port=$port dbname=chatterdb user=chatter"; }
admin_psql() { as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -p "$port" -U postgres "$@"; }

case "$cmd" in
start)
    mkdir -p "$socket_dir"
    chmod 755 "$socket_dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$socket_dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
        chmod 700 "$dir"
        as_owner "$PGBIN/initdb" -D "$dir" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$dir.initdb.log" 2>&1 \
            || { cat "$dir.initdb.log" >&2; exit 1; }
        cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$socket_dir'
shared_buffers = 256MB
max_connections = 200
logging_collector = off
log_min_messages = warning
CONF
    fi
    # A cluster left running by an older layout (socket elsewhere) is restarted here.
    if as_owner "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1 && [ ! -S "$socket_dir/.s.PGSQL.$port" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    fi
    if ! as_owner "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        as_owner "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 -o "-p $port -k $socket_dir" start >/dev/null
    fi
    admin_psql -d postgres <<SQL
SELECT 'CREATE ROLE chatter LOGIN PASSWORD ''chattchatt''' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatter') \gexec
SELECT 'CREATE DATABASE chatterdb OWNER chatter' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'chatterdb') \gexec
SQL
    as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(conninfo)" -f - <"$here/schema.sql"
    ;;
stop)
    if [ -f "$dir/postmaster.pid" ]; then as_owner "$PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null; fi
    ;;
conninfo) conninfo ;;
psql) shift 3; as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(conninfo)" "$@" ;;
*) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
