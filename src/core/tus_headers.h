// The values of tus 1.0.0's request headers (tus.io/protocols/resumable-upload), parsed and
// checked before anything of an upload is touched; and the id an upload's URL ends with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatterd {

constexpr std::string_view kTusVersion = "1.0.0";

// An upload's id: 32 lowercase hex digits (random_hex: 128 random bits), the last segment of its
// URL and its file's name.
bool is_upload_id(std::string_view id);
// The id a request path ends with ("/files/<id>"), or std::nullopt when its last segment is not
// an id.
std::optional<std::string_view> upload_id_of_path(std::string_view path);

// Upload-Length, Upload-Offset: a non-negative decimal integer, digits only, within int64.
std::optional<std::int64_t> parse_tus_size(std::string_view value);

// Upload-Metadata: comma-separated "key" or "key base64value" pairs, keys printable ASCII without
// spaces or commas and not repeated, values strict base64. Longer than this is refused: the
// value is kept in the upload's info file and sent back on every HEAD.
constexpr std::size_t kMaxUploadMetadata = 4096;
bool valid_upload_metadata(std::string_view value);

// Strict base64 (RFC 4648 §4, padded); std::nullopt on any other byte or a wrong length.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace chatterd
