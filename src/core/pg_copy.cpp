#include "core/pg_copy.h"

#include <cstdint>
#include <cstring>

namespace chatterd {

namespace {

// "PGCOPY\n\377\r\n\0": the signature every binary COPY starts with.
constexpr char kSignature[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
constexpr std::uint32_t kFlagWithOids = 1u << 16;  // rows carry an OID first: not what we asked for

// Big-endian integers, taken off the front of bytes; false when bytes are too short.
bool take_u32(std::string_view& bytes, std::uint32_t& value) {
    if (bytes.size() < 4) {
        return false;
    }
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    value = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8)
            | b[3];
    bytes.remove_prefix(4);
    return true;
}

bool take_i16(std::string_view& bytes, std::int16_t& value) {
    if (bytes.size() < 2) {
        return false;
    }
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    value = static_cast<std::int16_t>((b[0] << 8) | b[1]);
    bytes.remove_prefix(2);
    return true;
}

}  // namespace

void CopyBinaryRows::feed(std::string_view message) {
    rest_ = message;
}

bool CopyBinaryRows::read_header() {
    std::uint32_t flags = 0;
    std::uint32_t extension_length = 0;
    if (rest_.size() < sizeof kSignature
        || std::memcmp(rest_.data(), kSignature, sizeof kSignature) != 0) {
        return false;
    }
    rest_.remove_prefix(sizeof kSignature);
    if (!take_u32(rest_, flags) || (flags & kFlagWithOids) != 0
        || !take_u32(rest_, extension_length) || extension_length > rest_.size()) {
        return false;
    }
    rest_.remove_prefix(extension_length);
    header_read_ = true;
    return true;
}

CopyBinaryRows::Next CopyBinaryRows::next(Cell* cells) {
    if (broken_) {
        return Next::malformed;
    }
    if (rest_.empty()) {
        return ended_ ? Next::end_of_data : Next::message_done;
    }
    broken_ = true;  // until this row is read in full
    if (ended_ || (!header_read_ && !read_header())) {
        return Next::malformed;
    }
    std::int16_t field_count = 0;
    if (!take_i16(rest_, field_count)) {
        return Next::malformed;
    }
    if (field_count == -1) {
        ended_ = true;
        broken_ = !rest_.empty();
        return broken_ ? Next::malformed : Next::end_of_data;
    }
    if (field_count < 0 || static_cast<std::size_t>(field_count) != columns_) {
        return Next::malformed;
    }
    for (std::size_t i = 0; i < columns_; ++i) {
        std::uint32_t length = 0;
        if (!take_u32(rest_, length)) {
            return Next::malformed;
        }
        if (length == 0xFFFFFFFFu) {  // -1: SQL NULL
            cells[i] = Cell{nullptr, 0, true};
            continue;
        }
        if (length > rest_.size()) {
            return Next::malformed;
        }
        cells[i] = Cell{rest_.data(), length, false};
        rest_.remove_prefix(length);
    }
    broken_ = false;
    return Next::row;
}

}  // namespace chatterd
