// The info file of a resumable upload (<media root>/.uploads/<id>.info): what its creation
// said, written once and read by every worker and node that serves the upload or takes it over.
//   tus-upload 1\n
//   length <Upload-Length>\n
//   metadata <Upload-Metadata as received, possibly empty>\n
// The bytes received so far are the data file <id> beside it: its size is the offset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatterd {

struct UploadInfo {
    std::int64_t length = 0;  // Upload-Length
    std::string metadata;     // Upload-Metadata, valid (valid_upload_metadata)
};

std::string format_upload_info(const UploadInfo& info);

// std::nullopt unless text is exactly what format_upload_info writes (a file cut short by a
// crash, or not one of ours, is never taken for an upload).
std::optional<UploadInfo> parse_upload_info(std::string_view text);

// Longer than any info file format_upload_info writes.
constexpr std::size_t kMaxUploadInfoSize = 8192;

}  // namespace chatterd
