// JSON out: the rows of getchatts/getimages (from binary COPY cells) and the error bodies, escaped as Python's
// json.dumps escapes.
#include "core/json.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/timestamp.h"

namespace chatterd {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";   // lower case, as Python and PostgreSQL write hex

// The bytes a JSON string cannot hold as they are.
constexpr bool needs_escape(unsigned char byte)
{
    return byte < 0x20 || byte == '"' || byte == '\\';
}

// Whether any of the 8 bytes of word needs escaping, without a branch per byte. Each test sets
// the high bit of the bytes it matches, or of an earlier byte of the word, so "any" is exact.
constexpr bool any_needs_escape(std::uint64_t word)
{
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    const std::uint64_t below_space = word - ones * 0x20;
    const std::uint64_t quote = (word ^ (ones * '"')) - ones;
    const std::uint64_t backslash = (word ^ (ones * '\\')) - ones;
    return ((below_space | quote | backslash) & ~word & highs) != 0;
}

// The index of the first byte at or after from that needs escaping, or size. Almost every string
// in a chatt is all plain bytes, so they are checked 8 at a time.
std::size_t next_escape(const char* text, std::size_t from, std::size_t size)
{
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

void append_escape(std::string& out, unsigned char byte)
{
    switch (byte) {
    case '"': out.append("\\\""); return;
    case '\\': out.append("\\\\"); return;
    case '\n': out.append("\\n"); return;
    case '\r': out.append("\\r"); return;
    case '\t': out.append("\\t"); return;
    case '\b': out.append("\\b"); return;
    case '\f': out.append("\\f"); return;
    default: {
        const char escape[] = {'\\', 'u', '0', '0', kHexDigits[byte >> 4], kHexDigits[byte & 0xF]};
        out.append(escape, sizeof escape);
    }
    }
}

constexpr std::size_t kUuidBytes = 16;

// The bytes of a binary cell that must be exactly Size long.
template <std::size_t Size>
const unsigned char* binary_value(const Cell& cell, const char* type)
{
    if (cell.len != Size) {
        throw std::runtime_error(std::string("a binary ") + type + " of " + std::to_string(cell.len) + " bytes");
    }
    return reinterpret_cast<const unsigned char*>(cell.data);
}

std::int64_t big_endian_i64(const unsigned char* bytes)
{
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) {
        value = (value << 8) | bytes[i];
    }
    return static_cast<std::int64_t>(value);
}

// "5b0c2f6e-0000-4000-8000-000000000001", quoted, as PostgreSQL (and Python's str(UUID)) writes it.
void append_uuid(std::string& out, const unsigned char* bytes)
{
    char text[38];
    std::size_t at = 0;
    text[at++] = '"';
    for (std::size_t i = 0; i < kUuidBytes; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            text[at++] = '-';
        }
        text[at++] = kHexDigits[bytes[i] >> 4];
        text[at++] = kHexDigits[bytes[i] & 0xF];
    }
    text[at++] = '"';
    out.append(text, at);
}

}  // namespace

void append_json_string(std::string& out, std::string_view text)
{
    out.push_back('"');
    std::size_t plain_from = 0;
    while (true) {
        std::size_t at = next_escape(text.data(), plain_from, text.size());
        out.append(text.data() + plain_from, at - plain_from);
        if (at == text.size()) {
            break;
        }
        append_escape(out, static_cast<unsigned char>(text[at]));
        plain_from = at + 1;
    }
    out.push_back('"');
}

std::string json_string(std::string_view text)
{
    std::string literal;
    append_json_string(literal, text);
    return literal;
}

// ---- rows ----

JsonRowsWriter::JsonRowsWriter(JsonOutput out, void* ctx) : out_(out), ctx_(ctx)
{
    pending_.reserve(kFlushBytes + kFlushBytes / 4);
    pending_.push_back('[');
}

JsonRowsWriter::~JsonRowsWriter() = default;

void JsonRowsWriter::flush()
{
    if (pending_.empty()) {
        return;
    }
    out_(ctx_, pending_.data(), pending_.size());
    pending_.clear();
}

void JsonRowsWriter::refuse_after_finish() const
{
    if (finished_) {
        throw std::logic_error("JsonRowsWriter used after finish()");
    }
}

void JsonRowsWriter::cell(const Cell& cell, ColumnKind kind)
{
    if (cell.is_null) {
        pending_.append("null");
        return;
    }
    switch (kind) {
    case ColumnKind::text:
        append_json_string(pending_, std::string_view(cell.data, cell.len));
        return;
    case ColumnKind::uuid:
        append_uuid(pending_, binary_value<kUuidBytes>(cell, "uuid"));
        return;
    case ColumnKind::timestamp: {
        char iso[kIsoTimestampMax];
        std::size_t iso_length = iso_timestamp(big_endian_i64(binary_value<8>(cell, "timestamp")), iso);
        pending_.push_back('"');
        pending_.append(iso, iso_length);
        pending_.push_back('"');
        return;
    }
    }
}

void JsonRowsWriter::row(const Cell* cells, const ColumnKind* kinds, std::size_t count)
{
    refuse_after_finish();
    if (any_row_) {
        pending_.push_back(',');
    }
    any_row_ = true;
    pending_.push_back('[');
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            pending_.push_back(',');
        }
        cell(cells[i], kinds[i]);
    }
    pending_.push_back(']');
    if (pending_.size() >= kFlushBytes) {
        flush();
    }
}

void JsonRowsWriter::finish()
{
    refuse_after_finish();
    finished_ = true;
    pending_.push_back(']');
    flush();
}

}  // namespace chatterd
