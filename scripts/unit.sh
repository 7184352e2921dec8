#!/bin/bash
# Unit tests of src/core (GoogleTest), built with the warnings nginx's build would raise.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$here/build"
g++ -std=c++17 -O1 -g -W -Wall -Wextra -Wpointer-arith -Werror -I"$here/src" \
    "$here"/src/core/*.cpp "$here"/t/unit/*_test.cpp \
    -lgtest -lgtest_main -lyajl -lcrypto -pthread -o "$here/build/unit_tests"
"$here/build/unit_tests" --gtest_brief=1
