// A field of a result row as binary COPY delivers it, and how its bytes are to be read: what
// the COPY reader (pg_copy.h) produces and the JSON writer (json.h) consumes.
#pragma once

#include <cstddef>

namespace chatterd {

// How a column's values arrive, as PostgreSQL sends them in binary: text as its UTF-8 bytes, uuid
// as its 16 bytes, timestamp as 8 bytes of big-endian microseconds since 2000-01-01 (see
// IsoTimestamps).
enum class ColumnKind { text, uuid, timestamp };

// One field of a result row: bytes and length, or SQL NULL.
struct Cell {
    const char* data;
    std::size_t len;
    bool is_null;
};

}  // namespace chatterd
