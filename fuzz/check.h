// The property checks of the fuzz targets: a broken property aborts, and libFuzzer keeps the input.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace chatterd_fuzz {

inline void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "property broken: %s\n", what);
        std::abort();
    }
}

}  // namespace chatterd_fuzz
