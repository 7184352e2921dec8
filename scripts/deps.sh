#!/bin/bash
# Installs, with apt-get, only the Debian packages that are missing (Node.js and npm only when
# there is no node at all), and the npm packages of tools/openapi and tools/tus-client (npm ci,
# when a package-lock.json changed). Run as root or with sudo.
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
    liblist-moreutils-perl libhttp-message-perl liburi-perl # and openresty's (PERL5LIB=...)
    libtext-diff-perl
    python3-h2                                              # t/abuse_http2.t's HTTP/2 client
    libimage-exiftool-perl imagemagick ffmpeg               # t/media_metadata.t's samples, made
                                                            # and read there (HEIC/AVIF/WebP and
                                                            # libx264 come as Depends)
    strace                                                  # t/media_fsync.t: the syscalls of an upload
    wrk gnuplot-nox                                         # benchmarks
    clang libclang-rt-14-dev                                # fuzzing
)
if [ "${1:-}" = --reference ]; then
    packages+=(python3 python3-starlette python3-uvicorn python3-psycopg python3-psycopg-pool
               python3-multipart python3-werkzeug)
fi
# t/openapi.t's validator (tools/openapi): any Node.js of 18 or later will do.
command -v node >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # Another apt run (unattended upgrades, a second clone) holds the lock for a while: wait.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi

# npm ci, unless node_modules holds what this package-lock.json names (its copy, made after the
# last npm ci, is the same): t/openapi.t's validator, and t/tus_client.t's tus-js-client.
for tool in openapi tus-client; do
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools/$tool" && pwd)"
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"; then
        echo "npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        cp "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"
    fi
done
