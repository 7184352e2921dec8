// A resumable upload as postimages names it (imageupload, videoupload): the URL the tus
// location answered in Location, and the upload's state file (.uploads/<id>.info).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace chatterd {

// Upload ids are 32 lowercase hex digits (128 random bits).
constexpr std::size_t kUploadIdLength = 32;
bool is_upload_id(std::string_view text);

// The upload id of a URL or path as the tus location answers it ("https://host/up/<id>",
// "/up/<id>"): its last path segment, without query or fragment, when that is an upload id;
// std::nullopt otherwise (no id is ever taken from anything that could name another file).
std::optional<std::string_view> upload_id_from_url(std::string_view url);

// The Upload-Length recorded in an upload's .info file: a line "Upload-Length: <digits>"
// (header-like, case-insensitive name); std::nullopt when there is none, or it is not a number.
std::optional<std::uint64_t> upload_length_from_info(std::string_view info);

}  // namespace chatterd
