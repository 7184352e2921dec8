#!/bin/bash
# make fuzz: libFuzzer (clang, with ASan and UBSan) on the multipart parser.
#   FUZZ_SECONDS (default 60) bounds the run; FUZZ_JOBS runs that many fuzzers in parallel.
# Findings are written to build/fuzz/ as crash-* files; the corpus grows in build/fuzz/corpus.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$here/build/fuzz"
mkdir -p "$out/corpus"
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$here/src" "$here/src/core/multipart.cpp" "$here/fuzz/multipart_fuzz.cpp" -o "$out/multipart_fuzz"
cd "$out"
parallel=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
./multipart_fuzz -max_total_time="${FUZZ_SECONDS:-60}" "${parallel[@]}" -print_final_stats=1 \
    corpus "$here/fuzz/corpus/multipart"
