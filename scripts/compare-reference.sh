#!/bin/bash
# Compares getimages and getchatts of chatterd with another chatterd (the reference one) on the
# same 10,000-row table: same rows, same values, same bytes.
#   scripts/compare-reference.sh /path/to/python-starlette/run.sh
# The peer is started with run.sh's interface (PGURL MEDIA_ROOT PORT) and stopped at the end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer_run="${1:?usage: compare-reference.sh PEER_RUN_SH}"
work="$here/build/compare"
pg_port=55450 peer_port=58011 our_port=58012   # and our HTTPS on 58013
pg_dir="$("$here/scripts/pg.sh" dir compare "$pg_port")"
mkdir -p "$work/media"

"$here/scripts/deps.sh" --reference
"$here/scripts/build.sh" >/dev/null
"$here/scripts/pg.sh" start "$pg_dir" "$pg_port" >/dev/null
cleanup() {
    [ -n "${peer_pid:-}" ] && kill "$peer_pid" 2>/dev/null || true
    [ -f "$work/nginx/logs/nginx.pid" ] && kill "$(cat "$work/nginx/logs/nginx.pid")" 2>/dev/null || true
    "$here/scripts/pg.sh" stop "$pg_dir"
}
trap cleanup EXIT

# Rows that exercise the conversions: UTF-8, quotes, backslashes, control characters, NULLs,
# timestamps with and without microseconds.
"$here/scripts/pg.sh" psql "$pg_dir" "$pg_port" <<'SQL'
TRUNCATE chatts;
INSERT INTO chatts (username, message, id, time, imageurl, videourl)
SELECT 'user' || (i % 50) || CASE WHEN i % 7 = 0 THEN ' ジョン 😀 "q" \ ' || chr(9) || chr(1) || chr(31) ELSE '' END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 'message number ' || i || ' / seed ' || chr(10) || '</script>' END,
       md5(i::text)::uuid,
       timestamp '2025-01-01 00:00:00' + i * interval '1 second'
           + CASE WHEN i % 5 = 0 THEN interval '0' ELSE (i % 1000) * interval '1 microsecond' END,
       CASE WHEN i % 2 = 0 THEN 'http://127.0.0.1/media/user' || (i % 50) || '-x.jpeg' END,
       CASE WHEN i % 3 = 0 THEN 'http://127.0.0.1/media/user' || (i % 50) || '-x.mp4' END
FROM generate_series(1, 10000) AS i;
SQL

"$peer_run" "host=127.0.0.1 port=$pg_port dbname=chatterdb user=chatter password=chattchatt" \
    "$work/media" "$peer_port" >"$work/peer.log" 2>&1 &
peer_pid=$!
"$here/scripts/nginx-conf.pl" --prefix "$work/nginx" --media "$work/media" --workers 1 \
    --conninfo "$("$here/scripts/pg.sh" conninfo "$pg_dir" "$pg_port")" \
    --http-port "$our_port" --https-port $((our_port + 1))
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"

for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$peer_port/getchatts" && break; sleep 0.2; done
status=0
for endpoint in getimages getchatts; do
    curl -sf "http://127.0.0.1:$peer_port/$endpoint" >"$work/peer-$endpoint.json"
    curl -sf "http://127.0.0.1:$our_port/$endpoint" >"$work/ours-$endpoint.json"
    perl -MJSON::PP -e '
        my ($a, $b) = map { local $/; open my $f, "<", $_ or die; JSON::PP->new->decode(<$f>) } @ARGV;
        my $same = JSON::PP->new->canonical->encode($a) eq JSON::PP->new->canonical->encode($b);
        printf "%s: %d rows vs %d rows, %s\n", $ARGV[0] =~ s/.*peer-(\w+).json/$1/r, scalar @$a, scalar @$b,
               $same ? "same rows and values" : "DIFFERENT";
        exit($same ? 0 : 1)' "$work/peer-$endpoint.json" "$work/ours-$endpoint.json" || status=1
    if cmp -s "$work/peer-$endpoint.json" "$work/ours-$endpoint.json"; then
        echo "$endpoint: byte-identical ($(stat -c %s "$work/ours-$endpoint.json") bytes)"
    else
        echo "$endpoint: bytes differ"
    fi
done
exit $status
