#!/bin/bash
# make test-deb: the Debian package, end to end, on this machine's nginx.
#   test-deb.sh [file.deb]   without a file, `scripts/deb.sh` builds build/deb/*.deb first.
# Installs the package with apt-get, checks it is enabled (modules-enabled symlink), its
# hardening and that `nginx -t` passes on the system configuration; runs GET /getchatts
# through the packaged .so in a separate nginx (-p under build/, port TEST_DEB_NGINX_PORT=19881,
# not the system service) that includes /etc/nginx/modules-enabled/*.conf, against a throwaway
# PostgreSQL (scripts/pg.sh, TEST_DEB_PG_PORT=55481); then removes and purges the package and
# checks `nginx -t` still passes and /etc/nginx is as it was. What it started is stopped by pid.
# The package must not be installed beforehand: the test leaves the system as it found it.
# Runs from different clones take turns (a lock in /run/lock). Needs root or sudo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deb="${1:+$(realpath -m "$1")}"   # relative to the caller's directory
cd "$here"
PG_PORT="${TEST_DEB_PG_PORT:-55481}" NGINX_PORT="${TEST_DEB_NGINX_PORT:-19881}"
pkg=libnginx-mod-http-chatterd
conf_name=mod-http-chatterd.conf
link=/etc/nginx/modules-enabled/50-$conf_name
so=/usr/lib/nginx/modules/ngx_http_chatterd_module.so
work="$here/build/test-deb"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_get() { DEBIAN_FRONTEND=noninteractive $sudo apt-get -y -q -o DPkg::Lock::Timeout=300 "$@"; }
installed() { dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed; }
known() { dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qvx not-installed; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
# /etc/nginx as a listing to compare at the end: names, link targets, sizes, mtimes (not a
# directory's, which changes with its entries).
etc_nginx() { find /etc/nginx \( -type d -printf '%p/\n' \) -o -printf '%p %l %s %T@\n' | sort; }

scripts/deps.sh
if [ -z "$deb" ]; then
    scripts/deb.sh
    deb="$(ls "$here"/build/deb/${pkg}_*.deb)"
fi
[ -f "$deb" ] || fail "no such package: $deb"

# One run at a time on a machine (the package, /etc/nginx and the ports are shared by every
# clone); the lock is released when this script exits.
exec 9>/run/lock/chatterd-test-deb.lock
flock -n 9 || { echo "test-deb: waiting for another test-deb run to finish"; flock 9; }
known && fail "$pkg is already on this machine ($(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg")); remove or purge it first"
[ -z "$(ss -Hltn "sport = :$NGINX_PORT")" ] || fail "port $NGINX_PORT is in use"

rm -rf "$work"
mkdir -p "$work/nginx/logs"
# The database lives outside the clone: PostgreSQL runs as postgres, which cannot enter a clone
# in a folder only its owner may enter (/root, mktemp -d). Its programs run from / for the same
# reason.
pg_dir="$(mktemp -d /tmp/chatterd-test-deb.XXXXXX)"
pg() { (cd / && "$here/scripts/pg.sh" "$@"); }
before="$(etc_nginx)"
nginx_pid=""
cleanup() {
    rc=$?
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        $sudo kill -QUIT "$nginx_pid"
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    pg stop "$pg_dir" || true
    rm -rf "$pg_dir" "$pg_dir.socket" "$pg_dir.initdb.log"
    if known; then echo "test-deb: purging $pkg"; apt_get purge "$pkg" >/dev/null || true; fi
    [ $rc = 0 ] && echo "test-deb: PASS" || echo "test-deb: FAIL (exit $rc)" >&2
}
trap cleanup EXIT

echo "installing $deb"
apt_get install "$deb" >"$work/apt-install.log" 2>&1 || { cat "$work/apt-install.log" >&2; fail "apt-get install"; }
installed || fail "$pkg not installed after apt-get install"
ok "apt-get install ./$(basename "$deb")"

[ -f "$so" ] || fail "$so missing"
[ -f /usr/share/nginx/modules-available/$conf_name ] || fail "modules-available/$conf_name missing"
grep -qx "load_module modules/ngx_http_chatterd_module.so;" /usr/share/nginx/modules-available/$conf_name \
    || fail "$conf_name does not load the module: $(cat /usr/share/nginx/modules-available/$conf_name)"
[ "$(readlink "$link")" = /usr/share/nginx/modules-available/$conf_name ] || fail "$link is not the enabling symlink"
ok "enabled: $link -> $(readlink "$link")"
for f in schema.sql nginx.conf.example; do
    [ -f /usr/share/doc/$pkg/$f ] || fail "/usr/share/doc/$pkg/$f missing"
done
ok "docs: /usr/share/doc/$pkg/{schema.sql,nginx.conf.example}"
dpkg-query -W -f='${Depends}' "$pkg" | grep -q "nginx-abi-" || fail "Depends has no nginx-abi-*"
ok "Depends: $(dpkg-query -W -f='${Depends}' "$pkg" | grep -o 'nginx-abi-[^,]*')"

# Hardening (dpkg-buildflags, hardening=+all): full RELRO, stack protector, fortified calls.
# (Outputs are read whole: grep -q on a pipe would kill readelf with SIGPIPE under pipefail.)
dynamic="$(readelf -d "$so")" segments="$(readelf -lW "$so")" symbols="$(readelf --dyn-syms -W "$so")"
grep -q BIND_NOW <<<"$dynamic" || fail "$so not linked with -z now"
grep -q GNU_RELRO <<<"$segments" || fail "$so has no RELRO segment"
grep -q __stack_chk_fail <<<"$symbols" || fail "$so built without -fstack-protector"
grep -q '__[a-z]*_chk@' <<<"$symbols" || fail "$so built without _FORTIFY_SOURCE"
ok "hardening: BIND_NOW, RELRO, stack protector, fortify"

$sudo nginx -t -q 2>"$work/nginx-t.log" || { cat "$work/nginx-t.log" >&2; fail "nginx -t on the system configuration"; }
ok "nginx -t (system configuration, module enabled)"

# A request through the packaged .so: its own nginx, configured only through modules-enabled.
pg start "$pg_dir" "$PG_PORT" >/dev/null
conninfo="$(pg conninfo "$pg_dir" "$PG_PORT")"
pg psql "$pg_dir" "$PG_PORT" -c "TRUNCATE chatts; INSERT INTO chatts (username, message, id, time)
    VALUES ('deb', 'from the package', '00000000-0000-4000-8000-00000000deb0', '2026-01-02 03:04:05.5')"
n="$work/nginx"
# modules-enabled says `load_module modules/...`, relative to the prefix: as Debian's prefix
# /usr/share/nginx does, this one links modules/ to the packaged modules directory.
ln -s /usr/lib/nginx/modules "$n/modules"
cat >"$n/nginx.conf" <<CONF
include /etc/nginx/modules-enabled/*.conf;
user root;                  # workers as the master: the prefix may be in a folder only root enters
worker_processes 1;
daemon on;
pid $n/logs/nginx.pid;
error_log $n/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $n/body;
    proxy_temp_path $n/proxy;
    fastcgi_temp_path $n/fastcgi;
    uwsgi_temp_path $n/uwsgi;
    scgi_temp_path $n/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /getchatts { chatterd getchatts; chatterd_pg "$conninfo"; }
    }
}
CONF
$sudo nginx -p "$n" -c "$n/nginx.conf" -e "$n/logs/error.log" \
    || { cat "$n/logs/error.log" >&2; fail "nginx -p $n did not start"; }
for _ in $(seq 50); do [ -s "$n/logs/nginx.pid" ] && break; sleep 0.1; done
nginx_pid="$(cat "$n/logs/nginx.pid")"
expected='[["deb","from the package","00000000-0000-4000-8000-00000000deb0","2026-01-02T03:04:05.500000"]]'
code="$(curl -sS -o "$work/getchatts.json" -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/getchatts")"
body="$(cat "$work/getchatts.json")"
[ "$code" = 200 ] || { cat "$n/logs/error.log" >&2; fail "GET /getchatts: $code $body"; }
[ "$body" = "$expected" ] || fail "GET /getchatts: $body, expected $expected"
ok "GET /getchatts through the packaged module: 200 $body"
$sudo kill -QUIT "$nginx_pid"
for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$nginx_pid" 2>/dev/null && fail "nginx $nginx_pid did not stop"
nginx_pid=""
pg stop "$pg_dir"

# Removal: the module is disabled (dh_nginx's prerm keeps the admin's choice as a .removed link),
# purge deletes that too; nginx -t passes at each step.
apt_get remove "$pkg" >"$work/apt-remove.log" 2>&1 || { cat "$work/apt-remove.log" >&2; fail "apt-get remove"; }
[ -e /usr/share/nginx/modules-available/$conf_name ] && fail "$conf_name still there after remove"
[ -e "$link" ] || [ -L "$link" ] && fail "$link still there after remove"
[ -e "$so" ] && fail "$so still there after remove"
$sudo nginx -t -q 2>"$work/nginx-t.log" || { cat "$work/nginx-t.log" >&2; fail "nginx -t after remove"; }
ok "apt-get remove: module conf and .so gone, not enabled, nginx -t passes"
apt_get purge "$pkg" >"$work/apt-purge.log" 2>&1 || { cat "$work/apt-purge.log" >&2; fail "apt-get purge"; }
known && fail "$pkg still known to dpkg after purge"
$sudo nginx -t -q 2>"$work/nginx-t.log" || { cat "$work/nginx-t.log" >&2; fail "nginx -t after purge"; }
[ "$(etc_nginx)" = "$before" ] || { diff <(echo "$before") <(etc_nginx) >&2; fail "/etc/nginx differs after purge"; }
ok "apt-get purge: /etc/nginx as before, nginx -t passes"
