#include "core/utf8.h"

namespace chatterd {
namespace {

// Length of the well-formed UTF-8 sequence (RFC 3629) that starts text, or 0 if there is none.
std::size_t utf8_sequence_length(std::string_view text) {
    auto byte = [text](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char lead = byte(0);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        second_min = lead == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
        second_max = lead == 0xED ? 0x9F : 0xBF;  // no UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        second_min = lead == 0xF0 ? 0x90 : 0x80;  // no overlong forms
        second_max = lead == 0xF4 ? 0x8F : 0xBF;  // nothing past U+10FFFF
    } else {
        return 0;
    }
    if (text.size() < length || byte(1) < second_min || byte(1) > second_max) {
        return 0;
    }
    for (std::size_t i = 2; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) {
            return 0;
        }
    }
    return length;
}

}  // namespace

std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t length = utf8_sequence_length(text.substr(pos));
        if (length == 0) {
            return pos;
        }
        pos += length;
    }
    return std::nullopt;
}

std::size_t utf8_length(std::string_view text) {
    std::size_t characters = 0;
    for (char c : text) {
        characters +=
            (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // every byte but continuation bytes
    }
    return characters;
}

}  // namespace chatterd
