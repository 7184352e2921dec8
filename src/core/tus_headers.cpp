#include "core/tus_headers.h"

#include <algorithm>
#include <limits>
#include <set>

namespace chatterd {
namespace {

constexpr std::size_t kUploadIdDigits = 32;

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    return text;
}

bool valid_metadata_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return c > ' ' && c < 0x7F && c != ',';
    });
}

}  // namespace

bool is_upload_id(std::string_view id) {
    return id.size() == kUploadIdDigits && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::optional<std::string_view> upload_id_of_path(std::string_view path) {
    std::size_t slash = path.rfind('/');
    std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
    if (!is_upload_id(last)) return std::nullopt;
    return last;
}

std::optional<std::int64_t> parse_tus_size(std::string_view value) {
    if (value.empty() || value.size() > 19) return std::nullopt;
    std::int64_t n = 0;
    for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        if (n > (std::numeric_limits<std::int64_t>::max() - (c - '0')) / 10) return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return n;
}

bool valid_upload_metadata(std::string_view value) {
    if (value.size() > kMaxUploadMetadata) return false;
    std::set<std::string_view> keys;
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view pair = trimmed(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        std::size_t space = pair.find(' ');
        std::string_view key = pair.substr(0, space);
        if (!valid_metadata_key(key) || !keys.insert(key).second) return false;
        if (space != std::string_view::npos && !decode_base64(pair.substr(space + 1))) return false;
    }
    return true;
}

std::optional<std::string> decode_base64(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=')
        padding++;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    std::uint32_t bits = 0;
    for (std::size_t i = 0; i < text.size(); i++) {
        int v = i >= text.size() - padding ? 0 : base64_value(text[i]);
        if (v < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (i % 4 == 3) {
            out += static_cast<char>((bits >> 16) & 0xFF);
            out += static_cast<char>((bits >> 8) & 0xFF);
            out += static_cast<char>(bits & 0xFF);
            bits = 0;
        }
    }
    out.resize(out.size() - padding);
    return out;
}

}  // namespace chatterd
