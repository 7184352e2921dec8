#!/bin/bash
# Unit tests of src/core (GoogleTest), built with the warnings nginx's build would raise.
#   UNIT_SANITIZE=1: built with AddressSanitizer and UndefinedBehaviorSanitizer, any report fatal
#                    (build/unit_tests_asan; make test-asan runs it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$here/build"
binary="$here/build/unit_tests"
extra=()
if [ "${UNIT_SANITIZE:-0}" != 0 ]; then
    binary="$here/build/unit_tests_asan"
    extra=("-fsanitize=address,undefined" -fno-sanitize-recover=all -fno-omit-frame-pointer)
fi
g++ -std=c++17 -O1 -g -W -Wall -Wextra -Wpointer-arith -Werror "${extra[@]}" -I"$here/src" \
    "$here"/src/core/*.cpp "$here"/t/unit/*_test.cpp \
    -lgtest -lgtest_main -lyajl -lcrypto -pthread -o "$binary"
"$binary" --gtest_brief=1
