// What an uploaded media part really is, judged by its first bytes (never by the client's
// file name or Content-Type).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace chatterd {

enum class MediaField { image, video };

struct MediaType {
    std::string_view extension;  // without the dot: "jpeg"
    std::string_view mime;       // "image/jpeg"
};

// How many leading bytes sniff_media_type wants (fewer are fine when the part is shorter).
constexpr std::size_t kSniffBytes = 64;

// From a part's first bytes, which media type allowed for that field is it? std::nullopt when it
// is none of them.
//   image: JPEG (jpeg), PNG (png), GIF (gif), WebP (webp), and ISO-BMFF stills (an ftyp box):
//          HEIF brands heic/heix/heim/heis/hevc/hevx/mif1/msf1/miaf -> heic (image/heic),
//          AVIF brands avif/avis -> avif (image/avif).
//   video: ISO-BMFF "qt  " -> mov (video/quicktime), 3gp*/3g2* -> 3gp (video/3gpp),
//          the MP4 family (isom, iso2..iso9, mp41, mp42, avc1, M4V , dash, ...) -> mp4 (video/mp4);
//          Matroska/EBML with DocType "webm" -> webm (video/webm), "matroska" -> mkv
//          (video/x-matroska).
// ISO-BMFF files are judged by their major brand when it is one we know, else by the first known
// compatible brand: a file whose deciding brand is an image brand is an image (never a video, even
// when it also lists "iso8"), one whose deciding brand is a video brand is a video (never an
// image), and audio-only MP4 (M4A , M4B , ...) is neither. The generic HEIF brands mif1/msf1/miaf
// say "HEIF" but not which codec, so such an image is avif when any of its brands is an AVIF brand,
// else heic.
std::optional<MediaType> sniff_media_type(MediaField field, std::string_view head);

}  // namespace chatterd
