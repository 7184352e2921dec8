// libFuzzer target for UTF-8 validation (core/utf8: first_invalid_utf8, utf8_length).
// Input: the text. first_invalid_utf8 must agree with an independent decoder written here (RFC 3629
// table 3-7: code points by sequence length, no overlong forms, no surrogates, nothing past
// U+10FFFF), byte offset for byte offset; utf8_length of the valid prefix must count its code
// points; the valid prefix re-encoded must be the same bytes.
#include "core/utf8.h"

#include "check.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using chatterd_fuzz::check;

// Decodes text into code points; returns the offset of the first ill-formed sequence, or
// text.size().
std::size_t reference_decode(std::string_view text, std::vector<std::uint32_t>& code_points) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto lead = static_cast<unsigned char>(text[pos]);
        std::size_t length;
        std::uint32_t code;
        std::uint32_t minimum;
        if (lead < 0x80) {
            length = 1, code = lead, minimum = 0;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2, code = lead & 0x1F, minimum = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3, code = lead & 0x0F, minimum = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4, code = lead & 0x07, minimum = 0x10000;
        } else {
            return pos;
        }
        if (text.size() - pos < length) {
            return pos;
        }
        for (std::size_t i = 1; i < length; ++i) {
            const auto next = static_cast<unsigned char>(text[pos + i]);
            if ((next & 0xC0) != 0x80) {
                return pos;
            }
            code = code << 6 | (next & 0x3F);
        }
        if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
            return pos;
        }
        code_points.push_back(code);
        pos += length;
    }
    return pos;
}

std::string encode(const std::vector<std::uint32_t>& code_points) {
    std::string out;
    for (std::uint32_t c : code_points) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | c >> 6);
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | c >> 12);
            out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | c >> 18);
            out += static_cast<char>(0x80 | (c >> 12 & 0x3F));
            out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data),
                           size);  // exactly its size on the heap
    std::vector<std::uint32_t> code_points;
    const std::size_t valid = reference_decode(text, code_points);
    const auto invalid = chatterd::first_invalid_utf8(text);
    check(invalid.value_or(text.size()) == valid,
          "first_invalid_utf8 disagrees with the reference decoder");
    check(!invalid || *invalid < text.size(), "an invalid offset past the text");
    const std::string_view prefix = std::string_view(text).substr(0, valid);
    check(chatterd::utf8_length(prefix) == code_points.size(),
          "utf8_length miscounts well-formed text");
    check(encode(code_points) == prefix, "well-formed text does not re-encode to itself");
    return 0;
}
