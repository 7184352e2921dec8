#!/bin/bash
# make fuzz: libFuzzer (clang, with ASan and UBSan) on the multipart parser, then on reading
# binary COPY rows and writing them as JSON.
#   FUZZ_SECONDS (default 60) bounds each target's run; FUZZ_JOBS runs that many fuzzers in
#   parallel; FUZZ_TARGETS (default "multipart copy_rows") picks the targets.
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
build copy_rows "$core/pg_copy.cpp" "$core/json_out.cpp" "$core/timestamp.cpp" \
    "$here/fuzz/copy_rows_fuzz.cpp" -lyajl
cd "$out"
parallel=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
for target in ${FUZZ_TARGETS:-multipart copy_rows}; do
    mkdir -p "corpus-$target"
    "./${target}_fuzz" -max_total_time="${FUZZ_SECONDS:-60}" "${parallel[@]}" -print_final_stats=1 \
        "corpus-$target" "$here/fuzz/corpus/$target"
done
