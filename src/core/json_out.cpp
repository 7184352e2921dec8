// JSON out: the rows of getchatts/getimages (from binary COPY cells) and the error bodies, escaped
// as Python's json.dumps escapes.
#include "core/json.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace chatterd {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";  // lower case, as Python and PostgreSQL write hex

// The bytes a JSON string cannot hold as they are.
constexpr bool needs_escape(unsigned char byte) {
    return byte < 0x20 || byte == '"' || byte == '\\';
}

// Whether any of the 8 bytes of word needs escaping, without a branch per byte ("has a byte less
// than n" and "has a zero byte" tests). Each test sets the high bit of every byte it matches; a
// borrow can also set it in a more significant byte, but only above a true match, so "any" is
// exact. Bytes of 0x80 and up never match: ~word clears their high bit (the same bit as in
// word ^ '"' and word ^ '\\', since both patterns are below 0x80).
constexpr bool any_needs_escape(std::uint64_t word) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    const std::uint64_t below_space = word - ones * 0x20;
    const std::uint64_t quote = (word ^ (ones * '"')) - ones;
    const std::uint64_t backslash = (word ^ (ones * '\\')) - ones;
    return ((below_space | quote | backslash) & ~word & highs) != 0;
}

// The index of the first byte at or after from that needs escaping, or size. Almost every string
// in a chatt is all plain bytes, so they are checked 8 at a time.
std::size_t next_escape(const char* text, std::size_t from, std::size_t size) {
    std::size_t i = from;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, text + i, sizeof word);
        if (any_needs_escape(word)) {
            break;
        }
    }
    for (; i < size; ++i) {
        if (needs_escape(static_cast<unsigned char>(text[i]))) {
            return i;
        }
    }
    return size;
}

char* write_escape(char* out, unsigned char byte) {
    const char* escape = nullptr;
    switch (byte) {
    case '"': escape = "\\\""; break;
    case '\\': escape = "\\\\"; break;
    case '\n': escape = "\\n"; break;
    case '\r': escape = "\\r"; break;
    case '\t': escape = "\\t"; break;
    case '\b': escape = "\\b"; break;
    case '\f': escape = "\\f"; break;
    default: {
        const char unicode[] = {'\\', 'u', '0', '0', kHexDigits[byte >> 4], kHexDigits[byte & 0xF]};
        std::memcpy(out, unicode, sizeof unicode);
        return out + sizeof unicode;
    }
    }
    out[0] = escape[0];
    out[1] = escape[1];
    return out + 2;
}

// The most bytes a JSON string literal of text can take: quotes, and 6 bytes for each escaped byte.
constexpr std::size_t string_bound(std::size_t text_length) {
    return 2 + 6 * text_length;
}

// Writes text as a JSON string literal at out, which has room for string_bound(text.size()) bytes;
// returns its end.
char* write_json_string(char* out, std::string_view text) {
    *out++ = '"';
    std::size_t plain_from = 0;
    while (true) {
        std::size_t at = next_escape(text.data(), plain_from, text.size());
        if (at > plain_from) {  // an empty text's data() may be null, which memcpy may not be given
            std::memcpy(out, text.data() + plain_from, at - plain_from);
            out += at - plain_from;
        }
        if (at == text.size()) {
            break;
        }
        out = write_escape(out, static_cast<unsigned char>(text[at]));
        plain_from = at + 1;
    }
    *out++ = '"';
    return out;
}

constexpr std::size_t kUuidBytes = 16;
constexpr std::size_t kUuidLiteralLength = 38;  // "8-4-4-4-12" hex digits, quoted

// The bytes of a binary cell that must be exactly Size long.
template <std::size_t Size>
const unsigned char* binary_value(const Cell& cell, const char* type) {
    if (cell.len != Size) {
        throw std::runtime_error(std::string("a binary ") + type + " of " + std::to_string(cell.len)
                                 + " bytes");
    }
    return reinterpret_cast<const unsigned char*>(cell.data);
}

std::int64_t big_endian_i64(const unsigned char* bytes) {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) {
        value = (value << 8) | bytes[i];
    }
    return static_cast<std::int64_t>(value);
}

// "5b0c2f6e-0000-4000-8000-000000000001", quoted, as PostgreSQL (and Python's str(UUID)) writes it.
char* write_uuid(char* out, const unsigned char* bytes) {
    *out++ = '"';
    for (std::size_t i = 0; i < kUuidBytes; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *out++ = '-';
        }
        *out++ = kHexDigits[bytes[i] >> 4];
        *out++ = kHexDigits[bytes[i] & 0xF];
    }
    *out++ = '"';
    return out;
}

// The most bytes a cell's JSON can take.
std::size_t cell_bound(const Cell& cell, ColumnKind kind) {
    if (cell.is_null) {
        return 4;  // null
    }
    switch (kind) {
    case ColumnKind::uuid: return kUuidLiteralLength;
    case ColumnKind::timestamp: return 2 + kIsoTimestampMax;
    case ColumnKind::text: break;
    }
    return string_bound(cell.len);
}

}  // namespace

std::string json_string(std::string_view text) {
    std::string literal(string_bound(text.size()), '\0');
    char* end = write_json_string(literal.data(), text);
    literal.resize(static_cast<std::size_t>(end - literal.data()));
    return literal;
}

// ---- rows ----

JsonRowsWriter::JsonRowsWriter(JsonSink& sink) : sink_(sink) {
    reserve(1);
    *next_++ = '[';
}

void JsonRowsWriter::reserve(std::size_t size) {
    if (static_cast<std::size_t>(room_end_ - next_) >= size) {
        return;
    }
    JsonRoom room = sink_.more_room(next_, size);
    next_ = room.begin;
    room_end_ = room.end;
}

void JsonRowsWriter::refuse_after_finish() const {
    if (finished_) {
        throw std::logic_error("JsonRowsWriter used after finish()");
    }
}

char* JsonRowsWriter::write_cell(char* out, const Cell& cell, ColumnKind kind) {
    if (cell.is_null) {
        std::memcpy(out, "null", 4);
        return out + 4;
    }
    switch (kind) {
    case ColumnKind::uuid: return write_uuid(out, binary_value<kUuidBytes>(cell, "uuid"));
    case ColumnKind::timestamp:
        *out++ = '"';
        out += timestamps_.write(big_endian_i64(binary_value<8>(cell, "timestamp")), out);
        *out++ = '"';
        return out;
    case ColumnKind::text: break;
    }
    return write_json_string(out, std::string_view(cell.data, cell.len));
}

void JsonRowsWriter::row(const Cell* cells, const ColumnKind* kinds, std::size_t count) {
    refuse_after_finish();
    std::size_t bound =
        count + 3;  // "," before all but the first row, "[", "]", and count - 1 commas
    for (std::size_t i = 0; i < count; ++i) {
        bound += cell_bound(cells[i], kinds[i]);
    }
    reserve(bound);
    char* out = next_;
    if (any_row_) {
        *out++ = ',';
    }
    *out++ = '[';
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            *out++ = ',';
        }
        out = write_cell(out, cells[i], kinds[i]);
    }
    *out++ = ']';
    next_ = out;
    any_row_ = true;
}

void JsonRowsWriter::finish() {
    refuse_after_finish();
    finished_ = true;
    reserve(1);
    *next_++ = ']';
    sink_.complete(next_);
}

}  // namespace chatterd
