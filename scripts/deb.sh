#!/bin/bash
# make deb: the Debian package libnginx-mod-http-chatterd_<version>_<arch>.deb, built by
# dpkg-buildpackage with Debian's own tooling for nginx modules (nginx-dev's dh_nginx and
# nginx_mod build system, see debian/rules), against the installed nginx.
# dpkg-buildpackage writes its results beside the source tree, so the package is built from a
# copy and everything lands in build/deb/ (the .deb, the -dbgsym .ddeb, .buildinfo, .changes,
# build.log). The copy lives in a directory whose path has no dot: nginx_mod gives nginx's
# configure an absolute build directory, and configure's unanchored seds on object names (".c",
# ".S" become ".o") mangle a path such as /tmp/tmp.Sx3... or ~/chatterd.clone/.
# Missing build dependencies are installed with apt-get.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$here/build/deb"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_get() { DEBIAN_FRONTEND=noninteractive $sudo apt-get -y -qq -o DPkg::Lock::Timeout=300 "$@"; }

# dpkg-checkbuilddeps (dpkg-dev) tells what debian/control's Build-Depends still need.
if ! command -v dpkg-checkbuilddeps >/dev/null; then
    apt_get update
    apt_get install --no-install-recommends dpkg-dev
fi

rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d /tmp/chatterd-deb-XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/src"
mkdir "$src"
cp -a "$here/config" "$here/src" "$here/debian" "$here/schema.sql" "$here/nginx.conf.example" \
    "$here/README.md" "$src/"

if ! (cd "$src" && dpkg-checkbuilddeps 2>/dev/null); then
    echo "installing the build dependencies of debian/control"
    apt_get update
    apt_get build-dep --no-install-recommends "$src"
fi

echo "dpkg-buildpackage in $src (log: $out/build.log)"
(cd "$src" && dpkg-buildpackage -us -uc -b -Jauto) >"$out/build.log" 2>&1 \
    || { tail -40 "$out/build.log" >&2; exit 1; }
find "$work" -maxdepth 1 -type f -exec mv -t "$out" {} +
ls "$out"/libnginx-mod-http-chatterd_*.deb
