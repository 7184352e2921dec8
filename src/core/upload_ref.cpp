#include "core/upload_ref.h"

#include <cctype>

namespace chatterd {
namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); i++) {
        if (std::tolower(static_cast<unsigned char>(a[i]))
            != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    return text;
}

std::optional<std::uint64_t> decimal(std::string_view digits) {
    if (digits.empty() || digits.size() > 19) return std::nullopt;  // 19 digits fit in 63 bits
    std::uint64_t value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
}

}  // namespace

bool is_upload_id(std::string_view text) {
    if (text.size() != kUploadIdLength) return false;
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::optional<std::string_view> upload_id_from_url(std::string_view url) {
    std::size_t end = url.find_first_of("?#");
    if (end != std::string_view::npos) url = url.substr(0, end);
    std::size_t slash = url.rfind('/');
    std::string_view last = slash == std::string_view::npos ? url : url.substr(slash + 1);
    if (!is_upload_id(last)) return std::nullopt;
    return last;
}

std::optional<std::uint64_t> upload_length_from_info(std::string_view info) {
    while (!info.empty()) {
        std::size_t eol = info.find('\n');
        std::string_view line = info.substr(0, eol);
        info = eol == std::string_view::npos ? std::string_view{} : info.substr(eol + 1);
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        if (equals_ignoring_case(trimmed(line.substr(0, colon)), "Upload-Length"))
            return decimal(trimmed(line.substr(colon + 1)));
    }
    return std::nullopt;
}

}  // namespace chatterd
