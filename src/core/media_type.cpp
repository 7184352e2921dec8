#include "core/media_type.h"

#include <cstdint>
#include <utility>

namespace chatterd {

namespace {

constexpr MediaType kJpeg{"jpeg", "image/jpeg"};
constexpr MediaType kPng{"png", "image/png"};
constexpr MediaType kGif{"gif", "image/gif"};
constexpr MediaType kWebp{"webp", "image/webp"};
constexpr MediaType kHeic{"heic", "image/heic"};
constexpr MediaType kAvif{"avif", "image/avif"};
constexpr MediaType kMov{"mov", "video/quicktime"};
constexpr MediaType kThreeGp{"3gp", "video/3gpp"};
constexpr MediaType kMp4{"mp4", "video/mp4"};
constexpr MediaType kWebm{"webm", "video/webm"};
constexpr MediaType kMkv{"mkv", "video/x-matroska"};

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// Up to length bytes of text from pos; empty when text ends before pos (a truncated head).
std::string_view bytes_at(std::string_view text, std::size_t pos, std::size_t length) {
    return pos <= text.size() ? text.substr(pos, length) : std::string_view();
}

std::uint32_t big_endian_u32(std::string_view four_bytes) {
    std::uint32_t value = 0;
    for (char byte : four_bytes) {
        value = (value << 8) | static_cast<unsigned char>(byte);
    }
    return value;
}

// ---- ISO base media file format (MP4, QuickTime, 3GP, HEIF, AVIF): the ftyp box ----

enum class BrandKind { unknown, heif_generic, heic, avif, mov, three_gp, mp4, audio };

BrandKind brand_kind(std::string_view brand) {
    static constexpr std::pair<std::string_view, BrandKind> kKnownBrands[] = {
        {"mif1", BrandKind::heif_generic}, {"msf1", BrandKind::heif_generic},
        {"miaf", BrandKind::heif_generic}, {"heic", BrandKind::heic},
        {"heix", BrandKind::heic},         {"heim", BrandKind::heic},
        {"heis", BrandKind::heic},         {"hevc", BrandKind::heic},
        {"hevx", BrandKind::heic},         {"avif", BrandKind::avif},
        {"avis", BrandKind::avif},         {"qt  ", BrandKind::mov},
        {"isom", BrandKind::mp4},          {"iso2", BrandKind::mp4},
        {"iso3", BrandKind::mp4},          {"iso4", BrandKind::mp4},
        {"iso5", BrandKind::mp4},          {"iso6", BrandKind::mp4},
        {"iso7", BrandKind::mp4},          {"iso8", BrandKind::mp4},
        {"iso9", BrandKind::mp4},          {"mp41", BrandKind::mp4},
        {"mp42", BrandKind::mp4},          {"avc1", BrandKind::mp4},
        {"M4V ", BrandKind::mp4},          {"M4VH", BrandKind::mp4},
        {"M4VP", BrandKind::mp4},          {"dash", BrandKind::mp4},
        {"mmp4", BrandKind::mp4},          {"MSNV", BrandKind::mp4},
        {"XAVC", BrandKind::mp4},          {"f4v ", BrandKind::mp4},
        {"M4A ", BrandKind::audio},        {"M4B ", BrandKind::audio},
        {"M4P ", BrandKind::audio},        {"F4A ", BrandKind::audio},
        {"F4B ", BrandKind::audio},
    };
    if (starts_with(brand, "3gp") || starts_with(brand, "3g2")) {
        return BrandKind::three_gp;
    }
    for (const auto& [known, kind] : kKnownBrands) {
        if (brand == known) {
            return kind;
        }
    }
    return BrandKind::unknown;
}

constexpr std::size_t kBrandSize = 4;

// The brands of the ftyp box that opens head; compatible holds those that fit in head, 4 bytes
// each.
struct FtypBrands {
    std::string_view major;
    std::string_view compatible;

    std::size_t compatible_count() const { return compatible.size() / kBrandSize; }
    std::string_view compatible_brand(std::size_t i) const {
        return compatible.substr(i * kBrandSize, kBrandSize);
    }
};

std::optional<FtypBrands> read_ftyp(std::string_view head) {
    constexpr std::size_t kMinimalFtypSize = 16;  // size, "ftyp", major brand, minor version
    if (head.size() < kMinimalFtypSize || bytes_at(head, 4, 4) != "ftyp") {
        return std::nullopt;
    }
    // 0 means "up to the end of the file"; 1 announces a 64-bit size, which no encoder uses for an
    // ftyp box, and anything else under 16 bytes cannot hold the brands: both are treated as not
    // media. Real ftyp boxes list a handful of brands: one of kilobytes is another format whose
    // bytes 4-7 happen to read "ftyp" (a JPEG starts FF D8 FF xx, a size of about 4 GB).
    constexpr std::uint32_t kMaximalFtypSize = 1024;
    std::uint32_t box_size = big_endian_u32(head.substr(0, 4));
    if (box_size != 0 && (box_size < kMinimalFtypSize || box_size > kMaximalFtypSize)) {
        return std::nullopt;
    }
    std::size_t box_end =
        box_size == 0 ? head.size() : std::min<std::size_t>(box_size, head.size());
    return FtypBrands{head.substr(8, kBrandSize),
                      head.substr(kMinimalFtypSize, box_end - kMinimalFtypSize)};
}

// The major brand when we know it, else the first compatible brand we know.
BrandKind deciding_brand(const FtypBrands& ftyp) {
    BrandKind kind = brand_kind(ftyp.major);
    for (std::size_t i = 0; kind == BrandKind::unknown && i < ftyp.compatible_count(); ++i) {
        kind = brand_kind(ftyp.compatible_brand(i));
    }
    return kind;
}

bool lists_avif_brand(const FtypBrands& ftyp) {
    for (std::size_t i = 0; i < ftyp.compatible_count(); ++i) {
        if (brand_kind(ftyp.compatible_brand(i)) == BrandKind::avif) {
            return true;
        }
    }
    return false;
}

std::optional<MediaType> image_from_brands(const FtypBrands& ftyp) {
    switch (deciding_brand(ftyp)) {
    case BrandKind::heic: return kHeic;
    case BrandKind::avif: return kAvif;
    case BrandKind::heif_generic:  // says HEIF, not which codec
        return lists_avif_brand(ftyp) ? kAvif : kHeic;
    default: return std::nullopt;
    }
}

std::optional<MediaType> video_from_brands(const FtypBrands& ftyp) {
    switch (deciding_brand(ftyp)) {
    case BrandKind::mov: return kMov;
    case BrandKind::three_gp: return kThreeGp;
    case BrandKind::mp4: return kMp4;
    default: return std::nullopt;
    }
}

// ---- EBML (Matroska, WebM): the DocType element of the EBML header ----

struct Vint {
    std::uint64_t value;
    std::size_t length;
};

// An EBML variable-length integer at text[pos]: the position of the first set bit of its first byte
// gives its length (1 to max_length bytes). Element IDs keep that length marker in their value,
// sizes do not.
std::optional<Vint> read_vint(std::string_view text, std::size_t pos, std::size_t max_length,
                              bool keep_marker) {
    if (pos >= text.size()) {
        return std::nullopt;
    }
    auto first = static_cast<unsigned char>(text[pos]);
    std::size_t length = 1;
    while (length <= max_length && (first & (0x80u >> (length - 1))) == 0) {
        ++length;
    }
    if (length > max_length || pos + length > text.size()) {
        return std::nullopt;
    }
    std::uint64_t value = keep_marker ? first : first & (0xFFu >> length);
    for (std::size_t i = 1; i < length; ++i) {
        value = (value << 8) | static_cast<unsigned char>(text[pos + i]);
    }
    return Vint{value, length};
}

std::optional<std::string_view> ebml_doc_type(std::string_view head) {
    constexpr std::uint64_t kDocTypeId = 0x4282;
    constexpr std::size_t kMaxIdLength = 4;
    constexpr std::size_t kMaxSizeLength = 8;
    if (!starts_with(head, "\x1A\x45\xDF\xA3")) {
        return std::nullopt;
    }
    std::optional<Vint> header_size = read_vint(head, 4, kMaxSizeLength, false);
    if (!header_size) {
        return std::nullopt;
    }
    std::size_t pos = 4 + header_size->length;
    std::size_t header_end = pos + std::min<std::uint64_t>(header_size->value, head.size());
    while (pos < std::min(header_end, head.size())) {
        std::optional<Vint> id = read_vint(head, pos, kMaxIdLength, true);
        std::optional<Vint> size =
            id ? read_vint(head, pos + id->length, kMaxSizeLength, false) : std::nullopt;
        if (!size) {
            return std::nullopt;
        }
        std::size_t data_start = pos + id->length + size->length;
        if (size->value > head.size() - data_start) {
            return std::nullopt;  // the element runs past the head we were given
        }
        std::string_view data = head.substr(data_start, size->value);
        if (id->value == kDocTypeId) {
            return data.substr(0, data.find('\0'));  // EBML strings may be padded with NULs
        }
        pos = data_start + size->value;
    }
    return std::nullopt;
}

std::optional<MediaType> video_from_ebml(std::string_view head) {
    std::optional<std::string_view> doc_type = ebml_doc_type(head);
    if (doc_type == "webm") {
        return kWebm;
    }
    if (doc_type == "matroska") {
        return kMkv;
    }
    return std::nullopt;
}

// ---- by field ----

std::optional<MediaType> sniff_image(std::string_view head) {
    if (starts_with(head, "\xFF\xD8\xFF")) {
        return kJpeg;
    }
    if (starts_with(head, "\x89PNG\r\n\x1A\n")) {
        return kPng;
    }
    if (starts_with(head, "GIF87a") || starts_with(head, "GIF89a")) {
        return kGif;
    }
    if (starts_with(head, "RIFF") && bytes_at(head, 8, 4) == "WEBP") {
        return kWebp;
    }
    if (std::optional<FtypBrands> ftyp = read_ftyp(head)) {
        return image_from_brands(*ftyp);
    }
    return std::nullopt;
}

std::optional<MediaType> sniff_video(std::string_view head) {
    if (std::optional<FtypBrands> ftyp = read_ftyp(head)) {
        return video_from_brands(*ftyp);
    }
    return video_from_ebml(head);
}

}  // namespace

std::optional<MediaType> sniff_media_type(MediaField field, std::string_view head) {
    return field == MediaField::image ? sniff_image(head) : sniff_video(head);
}

}  // namespace chatterd
