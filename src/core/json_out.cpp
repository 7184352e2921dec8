// JSON out: the rows of getchatts/getimages and the error bodies, escaped as Python's json.dumps escapes.
#include "core/json.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "core/timestamp.h"

namespace chatterd {

namespace {

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
        static constexpr char hex[] = "0123456789abcdef";
        const char escape[] = {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 0xF]};
        out.append(escape, sizeof escape);
    }
    }
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
    std::string_view value(cell.data, cell.len);
    char iso[kIsoTimestampMax];
    if (kind == ColumnKind::timestamp) {
        value = std::string_view(iso, iso_timestamp(value, iso));
    }
    append_json_string(pending_, value);
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
