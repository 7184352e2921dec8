#include "core/upload_info.h"

#include "core/tus_headers.h"

namespace chatterd {
namespace {

constexpr std::string_view kFirstLine = "tus-upload 1\n";
constexpr std::string_view kLength = "length ";
constexpr std::string_view kMetadata = "metadata ";

// The value of the line starting with key at the start of text, which is consumed.
std::optional<std::string_view> take_line(std::string_view& text, std::string_view key) {
    std::size_t end = text.find('\n');
    if (end == std::string_view::npos || text.substr(0, key.size()) != key) return std::nullopt;
    std::string_view value = text.substr(key.size(), end - key.size());
    text.remove_prefix(end + 1);
    return value;
}

}  // namespace

std::string format_upload_info(const UploadInfo& info) {
    std::string text(kFirstLine);
    text.append(kLength).append(std::to_string(info.length)).append("\n");
    text.append(kMetadata).append(info.metadata).append("\n");
    return text;
}

std::optional<UploadInfo> parse_upload_info(std::string_view text) {
    if (text.substr(0, kFirstLine.size()) != kFirstLine) return std::nullopt;
    text.remove_prefix(kFirstLine.size());
    std::optional<std::string_view> length = take_line(text, kLength);
    std::optional<std::int64_t> size = length ? parse_tus_size(*length) : std::nullopt;
    std::optional<std::string_view> metadata = take_line(text, kMetadata);
    if (!size || !metadata || !text.empty() || !valid_upload_metadata(*metadata))
        return std::nullopt;
    return UploadInfo{*size, std::string(*metadata)};
}

}  // namespace chatterd
