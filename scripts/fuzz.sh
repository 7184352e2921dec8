#!/bin/bash
# make fuzz: libFuzzer (clang, with ASan and UBSan) on every parser that takes a client's bytes,
# and on the COPY rows PostgreSQL sends:
#   multipart    the postimages form (core/multipart)
#   json         the postchatt body (core/json: parse_chatt_json)
#   media_sniff  the first bytes of an image or video part (core/media_type: sniff_media_type)
#   media_scrub  a whole image or video part, cut anywhere (core/media_scrub: MediaScrubber)
#   http_host    the Host header copied into media URLs (core/http_host: valid_http_host)
#   utf8         UTF-8 validation of form fields (core/utf8)
#   copy_rows    binary COPY rows read and written as JSON (core/pg_copy, core/json_out)
#   list_cursor  a page request's query string and cursor (core/list_cursor)
# Each target checks properties of its parser's answers besides ASan/UBSan (see fuzz/*_fuzz.cpp);
# its seeds are fuzz/corpus/<target>/.
#   FUZZ_SECONDS (default 60) bounds each target's run; FUZZ_JOBS runs that many fuzzers in
#   parallel; FUZZ_TARGETS (default: all eight, in the order above) picks the targets.
# Findings are written to build/fuzz/ as crash-* files; the corpora grow in build/fuzz/corpus-*.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$here/build/fuzz"
mkdir -p "$out"
build() {   # build TARGET SOURCES... LIBS...
    local target="$1"; shift
    clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$here/src" "$@" -o "$out/${target}_fuzz"
}
core="$here/src/core"
build multipart "$core/multipart.cpp" "$here/fuzz/multipart_fuzz.cpp"
build json "$core/json.cpp" "$core/json_out.cpp" "$core/timestamp.cpp" "$core/utf8.cpp" \
    "$here/fuzz/json_fuzz.cpp" -lyajl
build media_sniff "$core/media_type.cpp" "$here/fuzz/media_sniff_fuzz.cpp"
build media_scrub "$core/media_scrub.cpp" "$here/fuzz/media_scrub_fuzz.cpp"
build http_host "$core/http_host.cpp" "$here/fuzz/http_host_fuzz.cpp"
build utf8 "$core/utf8.cpp" "$here/fuzz/utf8_fuzz.cpp"
build copy_rows "$core/pg_copy.cpp" "$core/json_out.cpp" "$core/timestamp.cpp" \
    "$here/fuzz/copy_rows_fuzz.cpp" -lyajl
build list_cursor "$core/list_cursor.cpp" "$core/base64url.cpp" "$here/fuzz/list_cursor_fuzz.cpp"
cd "$out"
parallel=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
for target in ${FUZZ_TARGETS:-multipart json media_sniff media_scrub http_host utf8 copy_rows list_cursor}; do
    mkdir -p "corpus-$target"
    "./${target}_fuzz" -max_total_time="${FUZZ_SECONDS:-60}" "${parallel[@]}" -print_final_stats=1 \
        "corpus-$target" "$here/fuzz/corpus/$target"
done
