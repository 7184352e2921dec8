#!/bin/bash
# Installs, with apt-get, only the Debian packages that are missing. Run as root or with sudo.
#   scripts/deps.sh --reference   also what the reference chatterd (Python/Starlette) runs on, for
#                                 scripts/compare-reference.sh and make bench PEER_RUN=...
set -euo pipefail
packages=(
    make g++ curl openssl ca-certificates
    nginx-core nginx-dev libyajl-dev libpq-dev libssl-dev   # build and run
    postgresql                                              # the throwaway database
    prometheus                                              # t/status.t: promtool, a scraping server
    libgtest-dev clang-format                               # unit tests, the code style
    libtest-base-perl libtest-longstring-perl               # t/lib's Test::Nginx::Socket
    python3-h2                                              # t/abuse_http2.t's HTTP/2 client
    strace                                                  # t/media_fsync.t: the syscalls of an upload
    wrk gnuplot-nox                                         # benchmarks
    clang libclang-rt-14-dev                                # fuzzing
)
if [ "${1:-}" = --reference ]; then
    packages+=(python3 python3-starlette python3-uvicorn python3-psycopg python3-psycopg-pool
               python3-multipart python3-werkzeug)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
