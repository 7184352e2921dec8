#include "core/pg_array.h"

#include <cstring>

namespace chatterd {

void append_pg_array_element(std::string& out, const char* value) {
    if (value == nullptr) {
        out += "NULL";
        return;
    }
    out += '"';
    // Copy the runs between the bytes that need a backslash, not byte by byte.
    while (true) {
        std::size_t run = std::strcspn(value, "\"\\");
        out.append(value, run);
        value += run;
        if (*value == '\0') break;
        out += '\\';
        out += *value++;
    }
    out += '"';
}

}  // namespace chatterd
