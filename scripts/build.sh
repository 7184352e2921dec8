#!/bin/bash
# Build build/ngx_http_chatterd_module.so with nginx's own build system.
#   NGINX_SRC unset: Debian's nginx-dev tree (/usr/share/nginx/src) configured with the packaged
#                    binary's flags (conf_flags), so the .so loads into /usr/sbin/nginx.
#   NGINX_SRC=dir:   an upstream nginx source tree; NGINX_CONFIGURE_ARGS adds configure flags
#                    (use the flags of the nginx binary that will load the module, plus --with-compat).
#   BUILD_DIR=dir:   where the tree, the objects and the .so go (default build/; make test-asan
#                    uses build/asan).
#   EXTRA_CC_OPT, EXTRA_LD_OPT: added to the compiler and linker flags (make test-asan:
#                    -fsanitize=address,undefined).
# The tree is copied under build/ so that configure never writes into a system directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build}"
src="${NGINX_SRC:-/usr/share/nginx/src}"
tree="$build/nginx-src"
objs="$build/nginx-objs"
stamp="$build/configure.stamp"

[ -x "$src/configure" ] || { echo "build.sh: no nginx source tree at $src (install nginx-dev or set NGINX_SRC)" >&2; exit 1; }

flags=()
if [ -f "$src/conf_flags" ]; then
    # shellcheck disable=SC1091
    . "$src/conf_flags"
    flags=("${NGX_CONF_FLAGS[@]}")
fi
# shellcheck disable=SC2206
flags+=(--with-compat ${NGINX_CONFIGURE_ARGS:-})

# Reconfigure only when the source tree, its nginx version (nginx-dev upgraded in place: the
# copy under build/ would still hold the old headers, and the .so would be refused by the new
# nginx), the flags or the module's file list changed.
version="$(sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' "$src/src/core/nginx.h")"
want="$src $version ${flags[*]} ${EXTRA_CC_OPT:-} ${EXTRA_LD_OPT:-} $(cat "$here/config")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f "$objs/Makefile" ]; then
    rm -rf "$tree" "$objs"
    mkdir -p "$build"
    cp -a "$src/." "$tree/"
    # The build directory is given relative to the tree: nginx's configure rewrites the names of a
    # dynamic module's objects with unanchored seds (".c", ".cc", ".S" become ".o"), which also
    # mangle an absolute build path such as /tmp/tmp.Sx3... or ~/chatterd.clone/.
    (cd "$tree" && ./configure \
        --with-cc-opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 ${EXTRA_CC_OPT:-}" \
        --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC ${EXTRA_LD_OPT:-}" \
        "${flags[@]}" --add-dynamic-module="$here" --builddir="$(realpath -m --relative-to="$tree" "$objs")") >"$build/configure.log" 2>&1 \
        || { tail -30 "$build/configure.log" >&2; exit 1; }
    printf '%s' "$want" >"$stamp"
fi
make -s -f "$objs/Makefile" -C "$tree" modules
# Replace, never overwrite in place: a running nginx has the old file mapped.
cp "$objs/ngx_http_chatterd_module.so" "$build/ngx_http_chatterd_module.so.new"
mv -f "$build/ngx_http_chatterd_module.so.new" "$build/ngx_http_chatterd_module.so"
echo "built $build/ngx_http_chatterd_module.so"
