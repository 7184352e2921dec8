// libFuzzer target for media sniffing (core/media_name: sniff_media_type), for both form fields.
// Input: the part's first bytes (postimages passes at most kSniffBytes; longer heads are tried too,
// for memory safety: the verdict may then depend on bytes past kSniffBytes, e.g. an ftyp box's
// later brands). The bytes are copied into a heap block of exactly their size, so that a read past
// the given size is an ASan report. A type found must be one the field allows, with an extension
// usable by random_media_name, and no ISO-BMFF head may be both an image and a video.
#include "core/media_type.h"

#include "check.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

namespace {

using chatterd::MediaField;
using chatterd::MediaType;
using chatterd::sniff_media_type;

using chatterd_fuzz::check;

bool one_of(std::string_view mime, std::initializer_list<std::string_view> allowed) {
    for (std::string_view one : allowed) {
        if (mime == one) {
            return true;
        }
    }
    return false;
}

bool alphanumeric(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    for (char c : text) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

std::optional<MediaType> sniff_exact(MediaField field, const std::uint8_t* data, std::size_t size) {
    std::unique_ptr<char[]> head(
        new char[size]);  // exactly size bytes: nothing readable after them
    std::memcpy(head.get(), data, size);
    return sniff_media_type(field, std::string_view(head.get(), size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto image = sniff_exact(MediaField::image, data, size);
    const auto video = sniff_exact(MediaField::video, data, size);
    // ISO-BMFF: a head whose deciding brand is an image brand is never a video, and the other way
    // round. (A head with another image's signature and an ftyp box at byte 4,
    // "\xFF\xD8\xFF\x10ftyp...", can be both a JPEG and an MP4: sniffing reads the signatures each
    // field allows, nothing more.)
    check(!(image && video && (image->mime == "image/heic" || image->mime == "image/avif")),
          "an ISO-BMFF head is both an image and a video");
    if (image) {
        check(one_of(image->mime, {"image/jpeg", "image/png", "image/gif", "image/webp",
                                   "image/heic", "image/avif"}),
              "an image type the image field does not allow");
        check(alphanumeric(image->extension), "an image extension random_media_name refuses");
    }
    if (video) {
        check(one_of(video->mime, {"video/quicktime", "video/3gpp", "video/mp4", "video/webm",
                                   "video/x-matroska"}),
              "a video type the video field does not allow");
        check(alphanumeric(video->extension), "a video extension random_media_name refuses");
    }
    return 0;
}
