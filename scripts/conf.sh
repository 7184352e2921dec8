#!/bin/bash
# Writes a runnable nginx.conf from nginx.conf.example for a local stack under DIR.
#   conf.sh DIR MEDIA_DIR PG_CONNINFO HTTP_PORT HTTPS_PORT [WORKERS]
# DIR receives nginx.conf, logs/ and tls/ (a self-signed certificate, made once).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$1" media="$2" conninfo="$3" http_port="$4" https_port="$5" workers="${6:-auto}"
mkdir -p "$dir/logs" "$dir/tls" "$media"
if [ ! -f "$dir/tls/chatterd.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/tls/chatterd.key" -out "$dir/tls/chatterd.crt" 2>/dev/null
fi
chmod 755 "$media"
# Started by root, nginx would run its workers as nobody, who cannot write the media directory
# when the clone lives in a folder only root can enter (/root, mktemp -d): they run as root.
# Started by another user, every process is that user, who owns the clone (no `user` line: nginx
# would ignore it with a warning). The database socket is reachable either way (scripts/pg.sh).
user=""
[ "$(id -u)" = 0 ] && user=$'\nuser root;'
# The values of the example a local stack changes, each replaced where the example has it; a
# change of the example that moves one of them stops this script instead of leaving it as is.
perl -e '
    local $/;
    my $text = <STDIN>;
    while (my ($from, $to) = splice @ARGV, 0, 2) {
        $text =~ s/\Q$from\E/$to/g
            or die "conf.sh: nginx.conf.example no longer has \"$from\": update scripts/conf.sh\n";
    }
    print $text;
' \
    "/usr/lib/nginx/modules/ngx_http_chatterd_module.so" "$here/build/ngx_http_chatterd_module.so" \
    "worker_processes auto;" "worker_processes $workers;$user" \
    "/var/log/nginx/chatterd.error.log" "$dir/logs/error.log" \
    "/run/nginx-chatterd.pid" "$dir/logs/nginx.pid" \
    "\"host=/var/run/postgresql port=5432 dbname=chatterdb user=chatter\"" "\"$conninfo\"" \
    "/etc/chatterd/tls/" "$dir/tls/" \
    "/var/lib/chatterd/media" "$media" \
    "127.0.0.1:8080 " "127.0.0.1:$http_port " \
    "127.0.0.1:8443 " "127.0.0.1:$https_port " \
    <"$here/nginx.conf.example" >"$dir/nginx.conf"
