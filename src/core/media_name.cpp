#include "core/media_name.h"

#include <algorithm>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/rand.h>

namespace chatterd {

namespace {

// ---- names ----

constexpr std::size_t kMaxPrefixLength = 64;
constexpr std::size_t kRandomBytes = 16;

bool is_ascii_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_file_name_char(char c) {
    return is_ascii_alnum(c) || c == '_' || c == '.' || c == '-';
}

}  // namespace

std::string random_hex() {
    unsigned char random[kRandomBytes];
    if (RAND_bytes(random, sizeof random) != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        throw std::runtime_error(std::string("RAND_bytes failed: ") + reason);
    }
    static constexpr char kHexDigits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * kRandomBytes);
    for (unsigned char byte : random) {
        hex += kHexDigits[byte >> 4];
        hex += kHexDigits[byte & 0x0F];
    }
    return hex;
}

std::string sanitized_username_prefix(std::string_view username) {
    std::string prefix;
    for (char c : username) {
        if (prefix.size() == kMaxPrefixLength) {
            break;
        }
        char kept = c == ' ' ? '_' : c;
        bool leading_dot_or_dash = prefix.empty() && (kept == '.' || kept == '-');
        if (is_file_name_char(kept) && !leading_dot_or_dash) {
            prefix += kept;
        }
    }
    return prefix;
}

std::string random_media_name(std::string_view username, std::string_view extension) {
    if (extension.empty() || !std::all_of(extension.begin(), extension.end(), is_ascii_alnum)) {
        throw std::invalid_argument("media file extension must be [A-Za-z0-9]+");
    }
    std::string name = sanitized_username_prefix(username);
    if (!name.empty()) {
        name += '-';
    }
    name += random_hex();
    name += '.';
    name += extension;
    return name;
}

bool is_media_name(std::string_view name) {
    constexpr std::size_t kHexDigits = 32;
    std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == name.size()) return false;
    std::string_view extension = name.substr(dot + 1);
    if (!std::all_of(extension.begin(), extension.end(), is_ascii_alnum)) return false;
    std::string_view stem = name.substr(0, dot);
    if (stem.size() == kHexDigits + 1 && stem[0] == '.' && extension == "upload")
        stem.remove_prefix(1);
    if (stem.size() < kHexDigits) return false;
    std::string_view hex = stem.substr(stem.size() - kHexDigits);
    bool lower_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    if (!lower_hex) return false;
    if (stem.size() == kHexDigits) return true;
    std::string_view prefix = stem.substr(0, stem.size() - kHexDigits - 1);
    return stem[stem.size() - kHexDigits - 1] == '-' && !prefix.empty()
           && sanitized_username_prefix(prefix) == prefix;
}

}  // namespace chatterd
