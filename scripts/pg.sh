#!/bin/bash
# A throwaway PostgreSQL cluster for the local run, the tests and the benchmarks.
#   pg.sh dir KIND PORT    the default data directory of this clone's KIND (run, test...) cluster
#                          on PORT: $PG_BASE/<hash of the clone's path>-<server user>-KIND-PORT
#   pg.sh start DIR PORT   initdb into DIR once, start it (TCP on 127.0.0.1:PORT and a unix
#                          socket in DIR.socket), create role chatter and database chatterdb, load schema.sql
#   pg.sh stop DIR         fast shutdown of that cluster only
#   pg.sh conninfo DIR PORT   the libpq conninfo chatterd uses (unix socket, no password)
#   pg.sh psql DIR PORT [psql args]   psql as chatter
#   pg.sh scratch NAME     a folder of this clone for the current user under $PG_BASE (made, mode 755)
#   pg.sh stop-old         stop the clusters of the old layout (build/test-pg, run/pg) if running
#   pg.sh clean            stop and remove this clone's clusters and folders under $PG_BASE, and the
#                          clusters of the old layout
# No system service is touched. The server runs as the postgres OS user when started by root
# (initdb refuses root), otherwise as the current user. That user must be able to enter every
# folder above DIR: the clone may live in a folder only its owner can enter (/root, a home
# directory, mktemp -d), so the clusters live under PG_BASE (default /tmp/chatterd, a sticky
# world-writable folder like /tmp; cleared at boot with /tmp), each owned by the server user.
set -euo pipefail
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
PG_BASE="${PG_BASE:-/tmp/chatterd}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd="${1:?usage: pg.sh dir|start|stop|conninfo|psql|scratch|stop-old|clean [DIR] [PORT]}"

if [ "$(id -u)" = 0 ]; then server_user=postgres; else server_user="$(id -un)"; fi
# The prefix of this clone's clusters: a short hash of its absolute path.
clone_id="$(printf '%s' "$here" | sha256sum | cut -c1-10)"

# Data directories given relative to the caller's working directory.
case "$cmd" in start|stop|conninfo|psql) [ $# -ge 2 ] && set -- "$1" "$(realpath -m "$2")" "${@:3}" ;; esac
# PostgreSQL's programs run as postgres complain when they cannot return to the working directory
# (a 0700 clone); they cannot read a file there either, so run them from /.
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then cd /; fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# Runs a command as the owner of the data directory $1 (an existing cluster, whoever made it).
as_owner_of() {
    local dir="$1" owner; shift
    owner="$(stat -c %U "$dir")"
    if [ "$owner" = "$(id -un)" ]; then "$@"
    elif [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- "$@"
    else echo "pg.sh: $dir belongs to $owner; run this as root or $owner" >&2; return 1
    fi
}
running() { [ -f "$1/postmaster.pid" ] && as_owner_of "$1" "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }
stop_cluster() {
    if running "$1"; then as_owner_of "$1" "$PGBIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null; fi
}
# Sticky and world-writable like /tmp: root's clusters (postgres) and every sudo user's clusters
# live side by side, each in a directory owned by its server user.
make_base() { if [ ! -d "$PG_BASE" ]; then mkdir -p "$PG_BASE" && chmod 1777 "$PG_BASE"; fi; }
# A directory of ours for OWNER (default the server user): made if missing, never a link, never
# someone else's.
own_dir() {
    local d="$1" mode="$2" owner="${3:-$server_user}"
    [ -L "$d" ] && { echo "pg.sh: $d is a symbolic link; refusing it" >&2; exit 1; }
    mkdir -p "$d"
    if [ "$(stat -c %U "$d")" != "$owner" ]; then
        if [ "$(id -u)" = 0 ] && [ "$(stat -c %U "$d")" = root ]; then
            chown "$owner:" "$d"
        else
            echo "pg.sh: $d belongs to $(stat -c %U "$d"), not to $owner" >&2
            echo "       (remove it, or choose another directory)" >&2
            exit 1
        fi
    fi
    chmod "$mode" "$d"
}
# The old layout kept the clusters inside the clone, out of reach of postgres in a 0700 folder.
old_dirs=("$here/build/test-pg" "$here/run/pg")

case "$cmd" in
dir)
    kind="${2:?KIND}" port="${3:?PORT}"
    echo "$PG_BASE/$clone_id-$server_user-$kind-$port"
    exit 0 ;;
scratch)
    # A folder of this clone for the current user (mode 755), e.g. the test servers' roots.
    make_base
    d="$PG_BASE/$clone_id-$(id -un)-${2:?NAME}"
    own_dir "$d" 755 "$(id -un)"
    echo "$d"
    exit 0 ;;
stop-old)
    for d in "${old_dirs[@]}"; do [ -d "$d" ] && stop_cluster "$d"; done
    exit 0 ;;
clean)
    status=0
    for d in "$PG_BASE/$clone_id"-* "${old_dirs[@]}"; do
        [ -d "$d" ] && [ -f "$d/PG_VERSION" ] || continue
        if stop_cluster "$d" && rm -rf "$d" "$d.socket" "$d.initdb.log"; then
            echo "removed the cluster $d"
        else
            echo "pg.sh: could not remove $d (owner $(stat -c %U "$d"))" >&2; status=1
        fi
    done
    # Socket directories, logs, folders, and initialisations that failed before PG_VERSION was
    # written (the old layout's, in a 0700 clone, left an empty directory owned by postgres).
    for d in "$PG_BASE/$clone_id"-* "${old_dirs[@]}"; do
        [ -e "$d" ] && [ ! -e "$d/PG_VERSION" ] || continue
        rm -rf "$d" "$d.socket" "$d.initdb.log" || status=1
    done
    exit $status ;;
esac

dir="${2:?DIR}"
port="${3:-5432}"
# The socket lives beside the data directory (which PostgreSQL keeps private), so that nginx
# workers running as an unprivileged user can reach it.
socket_dir="$dir.socket"
conninfo() { echo "host=$socket_dir port=$port dbname=chatterdb user=chatter"; }
admin_psql() { as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -p "$port" -U postgres "$@"; }
# Starts the server, again for a few seconds while its port is taken: the kernel gives ports of
# 32768-60999 to the client side of connections too, and one of the many a load test opens on
# loopback can hold the port when a fault test restarts the server (PostgreSQL then says "Address
# already in use" and asks to retry). The test and soak clusters' default ports lie below that
# range; this covers ports chosen inside it, as long as no client closed first (its TIME_WAIT
# holds the port for a minute).
start_server() {
    local attempt attempts=40 log_size err log
    for attempt in $(seq "$attempts"); do
        log_size="$(as_owner stat -c %s "$dir/server.log" 2>/dev/null || echo 0)"
        if err="$(as_owner "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
                      -o "-p $port -k $socket_dir" start 2>&1 >/dev/null)"; then
            [ -z "$err" ] || echo "$err" >&2
            return 0
        fi
        log="$(as_owner tail -c +$((log_size + 1)) "$dir/server.log" 2>/dev/null || true)"
        if ! grep -q "Address already in use" <<<"$log" || [ "$attempt" -eq "$attempts" ]; then
            # pg_ctl only says to look at the log: show what it says.
            echo "pg.sh: PostgreSQL did not start on port $port ($dir/server.log):" >&2
            grep -E "FATAL|ERROR|HINT|could not" <<<"$log" | tail -5 >&2 || echo "$err" >&2
            return 1
        fi
        sleep 0.25
    done
}
case "$cmd" in
start)
    case "$dir" in "$PG_BASE"/*) make_base ;; esac
    own_dir "$socket_dir" 755
    own_dir "$dir" 700
    if ! as_owner test -w "$dir" -a -x "$dir"; then
        echo "pg.sh: $server_user cannot enter $dir (a folder above it is closed to that user);" >&2
        echo "       use the default location (unset TEST_PG_DIR/PG_DIR) or one under $PG_BASE" >&2
        exit 1
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
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
    if running "$dir" && [ ! -S "$socket_dir/.s.PGSQL.$port" ]; then stop_cluster "$dir"; fi
    if ! running "$dir"; then start_server; fi
    admin_psql -d postgres <<SQL
SELECT 'CREATE ROLE chatter LOGIN PASSWORD ''chattchatt''' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatter') \gexec
SELECT 'CREATE DATABASE chatterdb OWNER chatter' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'chatterdb') \gexec
SQL
    as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(conninfo)" -f - <"$here/schema.sql"
    ;;
stop) [ -d "$dir" ] && stop_cluster "$dir"; true ;;
conninfo) conninfo ;;
psql) shift 3; as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(conninfo)" "$@" ;;
*) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
