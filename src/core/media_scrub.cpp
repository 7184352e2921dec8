#include "core/media_scrub.h"

#include <algorithm>
#include <limits>

namespace chatterd {

namespace {

unsigned byte_at(std::string_view bytes, std::size_t pos) {
    return static_cast<unsigned char>(bytes[pos]);
}

std::uint64_t big_endian(std::string_view bytes, std::size_t pos, std::size_t size) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i) value = (value << 8) | byte_at(bytes, pos + i);
    return value;
}

std::uint32_t little_endian_u32(std::string_view bytes, std::size_t pos) {
    std::uint32_t value = 0;
    for (std::size_t i = 4; i-- > 0;) value = (value << 8) | byte_at(bytes, pos + i);
    return value;
}

bool printable_fourcc(std::string_view type) {
    return std::all_of(type.begin(), type.end(), [](char c) { return c >= 0x20 && c < 0x7F; });
}

bool png_chunk_type(std::string_view type) {
    return std::all_of(type.begin(), type.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

constexpr std::uint64_t kToTheEnd = std::numeric_limits<std::uint64_t>::max();

// ---- JPEG Exif: the one tag kept -------------------------------------------------------------

// The TIFF structure's IFD0 Orientation (1-8) from an APP1 segment's body ("Exif\0\0" + TIFF),
// or 0 when there is none to read.
unsigned exif_orientation(std::string_view body) {
    constexpr std::string_view kExifId("Exif\0\0", 6);
    if (body.substr(0, kExifId.size()) != kExifId) return 0;
    std::string_view tiff = body.substr(kExifId.size());
    if (tiff.size() < 8) return 0;
    bool little = tiff.substr(0, 2) == "II";
    if (!little && tiff.substr(0, 2) != "MM") return 0;
    auto number = [&](std::size_t pos, std::size_t size) -> std::uint64_t {
        if (!little) return big_endian(tiff, pos, size);
        std::uint64_t value = 0;
        for (std::size_t i = size; i-- > 0;) value = (value << 8) | byte_at(tiff, pos + i);
        return value;
    };
    std::uint64_t ifd = number(4, 4);
    if (ifd + 2 > tiff.size()) return 0;
    std::uint64_t entries = number(ifd, 2);
    constexpr std::size_t kEntrySize = 12;
    for (std::uint64_t i = 0; i < entries; ++i) {
        std::uint64_t entry = ifd + 2 + i * kEntrySize;
        if (entry + kEntrySize > tiff.size()) return 0;
        constexpr unsigned kOrientationTag = 0x0112;
        constexpr unsigned kShortType = 3;
        if (number(entry, 2) == kOrientationTag && number(entry + 2, 2) == kShortType
            && number(entry + 4, 4) == 1) {
            std::uint64_t value = number(entry + 8, 2);
            return value >= 1 && value <= 8 ? static_cast<unsigned>(value) : 0;
        }
    }
    return 0;
}

// An APP1 segment holding an Exif structure with only IFD0's Orientation.
std::string minimal_exif_app1(unsigned orientation) {
    std::string segment(
        "\xFF\xE1\x00\x22"
        "Exif\0\0"                                          // marker, length 34, Exif id
        "MM\x00\x2A\x00\x00\x00\x08"                        // big-endian TIFF, IFD0 at 8
        "\x00\x01"                                          // one entry:
        "\x01\x12\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00"  // Orientation SHORT
        "\x00\x00\x00\x00",                                 // no next IFD
        36);
    segment[29] = static_cast<char>(orientation);  // the low byte of the SHORT value
    return segment;
}

// ---- HEIF: where the Exif and XMP items of a top-level meta box are ---------------------------

// Reads big-endian fields from a box's payload; a read past the end makes it fail for good.
class Reader {
public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}
    std::uint64_t number(std::size_t size) {
        if (!ok_ || size > bytes_.size() - pos_) {
            ok_ = false;
            return 0;
        }
        std::uint64_t value = big_endian(bytes_, pos_, size);
        pos_ += size;
        return value;
    }
    std::string_view take(std::size_t size) {
        if (!ok_ || size > bytes_.size() - pos_) {
            ok_ = false;
            return {};
        }
        std::string_view taken = bytes_.substr(pos_, size);
        pos_ += size;
        return taken;
    }
    std::string_view c_string() {
        std::size_t end = ok_ ? bytes_.find('\0', pos_) : std::string_view::npos;
        if (end == std::string_view::npos) {
            ok_ = false;
            return {};
        }
        std::string_view text = bytes_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return text;
    }
    bool ok() const { return ok_; }
    std::size_t pos() const { return pos_; }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

struct Box {
    std::string_view type;
    std::string_view payload;
    std::size_t payload_offset;  // in the bytes the box was found in
};

// The child boxes of a payload (no 64-bit or to-the-end sizes: none belong inside meta).
std::vector<Box> children(std::string_view payload, std::size_t offset) {
    std::vector<Box> boxes;
    Reader reader(payload);
    while (reader.ok() && reader.pos() + 8 <= payload.size()) {
        std::size_t start = reader.pos();
        std::uint64_t size = reader.number(4);
        std::string_view type = reader.take(4);
        if (size < 8 || size - 8 > payload.size() - reader.pos()) break;
        boxes.push_back(Box{type, reader.take(size - 8), offset + start + 8});
    }
    return boxes;
}

// The item IDs of iinf's Exif items and XMP (mime application/rdf+xml) items.
std::vector<std::uint64_t> metadata_items(std::string_view iinf) {
    std::vector<std::uint64_t> items;
    Reader reader(iinf);
    std::uint64_t version = reader.number(1);
    reader.number(3);
    reader.number(version == 0 ? 2 : 4);  // entry count: the boxes themselves say it
    for (const Box& infe : children(iinf.substr(std::min(reader.pos(), iinf.size())), 0)) {
        if (infe.type != "infe") continue;
        Reader entry(infe.payload);
        std::uint64_t infe_version = entry.number(1);
        entry.number(3);
        if (infe_version < 2) continue;  // no item types before version 2
        std::uint64_t id = entry.number(infe_version == 2 ? 2 : 4);
        entry.number(2);  // protection index
        std::string_view type = entry.take(4);
        if (type == "mime") {
            entry.c_string();  // name
            if (entry.c_string() != "application/rdf+xml") continue;
        } else if (type != "Exif") {
            continue;
        }
        if (entry.ok()) items.push_back(id);
    }
    return items;
}

struct ItemExtent {
    bool in_idat;  // construction method 1: an offset into idat's payload, else into the file
    std::uint64_t offset;
    std::uint64_t length;
};

// iloc's extents of the given items (construction methods 0 and 1; 2, references, are left).
std::vector<ItemExtent> item_extents(std::string_view iloc, const std::vector<std::uint64_t>& ids) {
    std::vector<ItemExtent> extents;
    Reader reader(iloc);
    std::uint64_t version = reader.number(1);
    reader.number(3);
    std::uint64_t sizes = reader.number(1);
    std::uint64_t more_sizes = reader.number(1);
    std::size_t offset_size = sizes >> 4, length_size = sizes & 0xF;
    std::size_t base_offset_size = more_sizes >> 4;
    std::size_t index_size = version == 1 || version == 2 ? more_sizes & 0xF : 0;
    std::uint64_t count = reader.number(version < 2 ? 2 : 4);
    for (std::uint64_t i = 0; i < count && reader.ok(); ++i) {
        std::uint64_t id = reader.number(version < 2 ? 2 : 4);
        std::uint64_t method = version == 1 || version == 2 ? reader.number(2) & 0xF : 0;
        reader.number(2);  // data reference index
        std::uint64_t base = reader.number(base_offset_size);
        std::uint64_t extent_count = reader.number(2);
        bool wanted = std::find(ids.begin(), ids.end(), id) != ids.end() && method < 2;
        for (std::uint64_t e = 0; e < extent_count && reader.ok(); ++e) {
            reader.number(index_size);
            std::uint64_t offset = reader.number(offset_size);
            std::uint64_t length = reader.number(length_size);
            // A length of 0 means "to the end": nothing we could bound, so nothing is zeroed.
            if (wanted && reader.ok() && length != 0 && offset <= kToTheEnd - base
                && length <= kToTheEnd - base - offset)
                extents.push_back(ItemExtent{method == 1, base + offset, length});
        }
    }
    return reader.ok() ? extents : std::vector<ItemExtent>();
}

}  // namespace

// ---- the engine ------------------------------------------------------------------------------

bool MediaScrubber::feed(std::string_view bytes) {
    while (ok_ && mode_ == Mode::read && held_.size() >= need_) step();
    while (ok_ && !bytes.empty()) {
        std::size_t n = bytes.size();
        if (mode_ != Mode::passthrough && mode_ != Mode::read)
            n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, n));
        if (mode_ == Mode::read) n = std::min(n, need_ - held_.size());
        std::string_view piece = bytes.substr(0, n);
        switch (mode_) {
        case Mode::read: held_.append(piece); break;
        case Mode::passthrough: emit(piece); break;
        case Mode::copy: copy_out(piece); break;
        case Mode::skip: removed_ += n; break;
        case Mode::zero:
            emit_zeros(n);
            blanked_ += n;
            break;
        }
        in_pos_ += n;
        bytes.remove_prefix(n);
        if (mode_ != Mode::read && mode_ != Mode::passthrough && (left_ -= n) == 0)
            read(next_total_, next_step_);
        while (ok_ && mode_ == Mode::read && held_.size() >= need_) step();
    }
    return ok_;
}

bool MediaScrubber::finish() {
    // Whatever is held is an unfinished header or segment: not parsed, so not left out.
    if (mode_ == Mode::read) give_up();
    return ok_;
}

void MediaScrubber::read(std::size_t total, Step next) {
    mode_ = Mode::read;
    need_ = total;
    step_ = next;
}

void MediaScrubber::then(Mode mode, std::uint64_t count, std::size_t next_total, Step next) {
    next_total_ = next_total;
    next_step_ = next;
    if (count == 0) return read(next_total, next);
    mode_ = mode;
    left_ = count;
}

void MediaScrubber::give_up() {
    emit_held();
    mode_ = Mode::passthrough;
}

bool MediaScrubber::emit(std::string_view bytes) {
    if (ok_ && !bytes.empty()) ok_ = write_(bytes);
    return ok_;
}

bool MediaScrubber::emit_held() {
    if (held_fill_ > 0) emit(std::string(held_fill_, '\xFF'));
    held_fill_ = 0;
    emit(held_);
    held_.clear();
    return ok_;
}

void MediaScrubber::drop_held() {
    removed_ += held_fill_ + held_.size();
    held_fill_ = 0;
    held_.clear();
}

bool MediaScrubber::emit_zeros(std::uint64_t count) {
    static const char kZeros[4096] = {};
    while (ok_ && count > 0) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(count, sizeof kZeros));
        emit(std::string_view(kZeros, n));
        count -= n;
    }
    return ok_;
}

// Copies bytes that start at input offset in_pos_, zeroing those inside blank_ranges_.
bool MediaScrubber::copy_out(std::string_view bytes) {
    std::uint64_t pos = in_pos_;
    while (ok_ && !bytes.empty()) {
        std::uint64_t end = pos + bytes.size();
        const std::pair<std::uint64_t, std::uint64_t>* first = nullptr;
        for (const auto& range : blank_ranges_) {
            if (range.first < end && range.second > pos && (!first || range.first < first->first))
                first = &range;
        }
        if (!first) return emit(bytes);
        if (first->first > pos) {
            std::size_t clear = static_cast<std::size_t>(first->first - pos);
            emit(bytes.substr(0, clear));
            bytes.remove_prefix(clear);
            pos += clear;
        }
        std::size_t blank = static_cast<std::size_t>(std::min(first->second, end) - pos);
        emit_zeros(blank);
        blanked_ += blank;
        bytes.remove_prefix(blank);
        pos += blank;
    }
    return ok_;
}

void MediaScrubber::step() {
    switch (step_) {
    case Step::sniff: return sniff();
    case Step::jpeg_marker: return jpeg_marker();
    case Step::jpeg_segment: return jpeg_segment();
    case Step::jpeg_app2_id: return jpeg_app2_id();
    case Step::jpeg_exif: return jpeg_exif();
    case Step::png_chunk: return png_chunk();
    case Step::webp_chunk: return webp_chunk();
    case Step::webp_vp8x_flags: return webp_vp8x_flags();
    case Step::bmff_box:
        if (big_endian(held_, 0, 4) == 1) return read(16, Step::bmff_large_box);
        return bmff_box(big_endian(held_, 0, 4), 8);
    case Step::bmff_large_box: return bmff_box(big_endian(held_, 8, 8), 16);
    case Step::bmff_boundary: return bmff_boundary();
    case Step::bmff_heif_meta: return bmff_heif_meta();
    case Step::bmff_uuid: return bmff_uuid();
    case Step::gif_screen: return gif_screen();
    case Step::gif_block: return gif_block();
    case Step::gif_extension: return gif_extension();
    case Step::gif_application: return gif_application();
    case Step::gif_image: return gif_image();
    case Step::gif_code_size: emit_held(); return read(1, Step::gif_sub_block);
    case Step::gif_sub_block: return gif_sub_block();
    }
}

// The first 12 bytes say the container; the parse then starts over on them.
ScrubEffect scrub_effect(std::string_view extension) {
    for (std::string_view shrinking : {"jpeg", "png", "gif"}) {
        if (extension == shrinking) return ScrubEffect::shrinks;
    }
    for (std::string_view same_size : {"mp4", "mov", "3gp", "heic", "avif", "webp"}) {
        if (extension == same_size) return ScrubEffect::same_size;
    }
    return ScrubEffect::none;
}

void MediaScrubber::sniff() {
    std::string_view head(held_);
    std::size_t header = 0;
    Step first = Step::sniff;
    if (head.substr(0, 3) == "\xFF\xD8\xFF") {
        header = 2;  // SOI
        first = Step::jpeg_marker;
    } else if (head.substr(0, 8) == "\x89PNG\r\n\x1A\n") {
        header = 8;
        first = Step::png_chunk;
    } else if (head.substr(0, 4) == "RIFF" && head.substr(8, 4) == "WEBP") {
        header = 12;
        first = Step::webp_chunk;
    } else if (head.substr(4, 4) == "ftyp") {
        first = Step::bmff_box;
    } else if (head.substr(0, 6) == "GIF87a" || head.substr(0, 6) == "GIF89a") {
        first = Step::gif_screen;
    } else {
        return give_up();
    }
    emit(head.substr(0, header));
    std::string rest = held_.substr(header);
    held_.clear();
    in_pos_ -= rest.size();
    constexpr std::size_t kGifHeaderAndScreen = 13;
    read(first == Step::jpeg_marker  ? 2
         : first == Step::gif_screen ? kGifHeaderAndScreen
                                     : 8,
         first);
    feed(rest);
}

// ---- JPEG ------------------------------------------------------------------------------------

void MediaScrubber::jpeg_marker() {
    if (byte_at(held_, 0) != 0xFF) return give_up();
    unsigned marker = byte_at(held_, 1);
    if (marker == 0xFF) {  // a fill byte: it goes where its marker's segment goes
        ++held_fill_;
        held_.erase(0, 1);
        return read(2, Step::jpeg_marker);
    }
    constexpr unsigned kSos = 0xDA, kEoi = 0xD9;
    if (marker == kSos || marker == kEoi) {
        // From the first scan on, entropy-coded data and what follows pass unchanged.
        emit_held();
        mode_ = Mode::passthrough;
        return;
    }
    // Markers without a length (TEM, RSTn, SOI) have no place here.
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) return give_up();
    read(4, Step::jpeg_segment);
}

void MediaScrubber::jpeg_segment() {
    std::uint64_t length = big_endian(held_, 2, 2);
    if (length < 2) return give_up();
    std::uint64_t body = length - 2;
    switch (byte_at(held_, 1)) {
    case 0xE1:  // Exif, XMP, extended XMP: held whole (at most 64 KiB) for the orientation
        return read(static_cast<std::size_t>(4 + body), Step::jpeg_exif);
    case 0xED:  // APP13: Photoshop, IPTC
    case 0xFE:  // COM
        if (jpeg_mpf_seen_) {
            jpeg_blank_segment(0);
            return then(Mode::zero, body, 2, Step::jpeg_marker);
        }
        drop_held();
        return then(Mode::skip, body, 2, Step::jpeg_marker);
    case 0xE2:
        if (body >= 4) return read(8, Step::jpeg_app2_id);
        break;
    default: break;
    }
    emit_held();
    then(Mode::copy, body, 2, Step::jpeg_marker);
}

// APP2 may hold the MPF index of images after this one, at offsets from that index.
void MediaScrubber::jpeg_app2_id() {
    if (held_.compare(4, 4, std::string_view("MPF\0", 4)) == 0) jpeg_mpf_seen_ = true;
    std::uint64_t rest = big_endian(held_, 2, 2) - 6;
    emit_held();
    then(Mode::copy, rest, 2, Step::jpeg_marker);
}

void MediaScrubber::jpeg_exif() {
    if (jpeg_mpf_seen_) {
        std::uint64_t body = held_.size() - 4;
        jpeg_blank_segment(body);
        return read(2, Step::jpeg_marker);
    }
    unsigned orientation = exif_orientation(std::string_view(held_).substr(4));
    std::string app1 = minimal_exif_app1(orientation);
    if (orientation != 0 && held_.size() <= app1.size()) {
        // No room for anything but the orientation: kept as it is.
        emit_held();
        jpeg_orientation_written_ = true;
        return read(2, Step::jpeg_marker);
    }
    drop_held();
    if (orientation != 0 && !jpeg_orientation_written_) {
        removed_ -= app1.size();
        emit(app1);
        jpeg_orientation_written_ = true;
    }
    read(2, Step::jpeg_marker);
}

// Past an MPF index nothing may move: the held segment header becomes a comment's, and `body`
// zeros follow it here (the caller zeroes the rest as it arrives).
void MediaScrubber::jpeg_blank_segment(std::uint64_t body) {
    emit(std::string(held_fill_, '\xFF') + std::string("\xFF\xFE", 2) + held_.substr(2, 2));
    held_fill_ = 0;
    blanked_ += 2 + body;  // the marker and the zeros
    held_.clear();
    emit_zeros(body);
}

// ---- PNG -------------------------------------------------------------------------------------

void MediaScrubber::png_chunk() {
    std::uint64_t length = big_endian(held_, 0, 4);
    std::string_view type = std::string_view(held_).substr(4, 4);
    if (length > 0x7FFFFFFF || !png_chunk_type(type)) return give_up();
    constexpr std::uint64_t kCrcSize = 4;
    if (type == "eXIf" || type == "tEXt" || type == "zTXt" || type == "iTXt") {
        drop_held();
        return then(Mode::skip, length + kCrcSize, 8, Step::png_chunk);
    }
    bool end = type == "IEND";
    emit_held();
    if (end) {
        mode_ = Mode::passthrough;
        return;
    }
    then(Mode::copy, length + kCrcSize, 8, Step::png_chunk);
}

// ---- WebP ------------------------------------------------------------------------------------

void MediaScrubber::webp_chunk() {
    std::string_view fourcc = std::string_view(held_).substr(0, 4);
    std::uint64_t size = little_endian_u32(held_, 4);
    std::uint64_t padded = size + (size & 1);
    if (!printable_fourcc(fourcc)) return give_up();
    if (fourcc == "VP8X" && size >= 1) return read(9, Step::webp_vp8x_flags);
    if (fourcc == "EXIF" || fourcc == "XMP ") {
        // A chunk of the same size that every reader skips: the RIFF size stays right.
        held_.replace(0, 4, "JUNK");
        emit_held();
        return then(Mode::zero, padded, 8, Step::webp_chunk);
    }
    emit_held();
    then(Mode::copy, padded, 8, Step::webp_chunk);
}

void MediaScrubber::webp_vp8x_flags() {
    constexpr unsigned kExifFlag = 0x08, kXmpFlag = 0x04;
    held_[8] = static_cast<char>(byte_at(held_, 8) & ~(kExifFlag | kXmpFlag));
    std::uint64_t size = little_endian_u32(held_, 4);
    emit_held();
    then(Mode::copy, size + (size & 1) - 1, 8, Step::webp_chunk);
}

// ---- ISO-BMFF --------------------------------------------------------------------------------

void MediaScrubber::bmff_box(std::uint64_t size, std::size_t header) {
    std::string_view type = std::string_view(held_).substr(4, 4);
    std::string_view parent =
        bmff_parents_.empty() ? std::string_view() : std::string_view(bmff_parents_.back().second);
    std::uint64_t start = in_pos_ - held_.size();
    if (size == 0) {  // to the end of the file: only the last top-level box (an mdat)
        if (!parent.empty()) return give_up();
        emit_held();
        return then(Mode::copy, kToTheEnd, 0, Step::bmff_boundary);
    }
    if (size < header || size > kToTheEnd - start) return give_up();
    std::uint64_t end = start + size;
    if (!parent.empty() && end > bmff_parents_.back().first) return give_up();
    std::uint64_t payload = size - header;
    if ((type == "moov" && parent.empty()) || (type == "trak" && parent == "moov")) {
        bmff_parents_.emplace_back(end, std::string(type));
        emit_held();
        return read(0, Step::bmff_boundary);
    }
    if ((type == "udta" || type == "meta") && (parent == "moov" || parent == "trak")) {
        // User data and metadata: location, make, model, software, dates.
        held_.replace(4, 4, "free");
        blanked_ += 4;
        emit_held();
        return then(Mode::zero, payload, 0, Step::bmff_boundary);
    }
    constexpr std::size_t kUuidSize = 16;
    if (type == "uuid" && parent.empty() && header == 8 && payload >= kUuidSize)
        return read(header + kUuidSize, Step::bmff_uuid);
    if (type == "meta" && parent.empty() && header == 8 && size <= kMaxHeldBox)
        return read(static_cast<std::size_t>(size), Step::bmff_heif_meta);
    emit_held();
    then(Mode::copy, payload, 0, Step::bmff_boundary);
}

// A top-level uuid box: the XMP one (Adobe's, exiftool's, some cameras') goes.
void MediaScrubber::bmff_uuid() {
    constexpr std::string_view kXmpUuid(
        "\xBE\x7A\xCF\xCB\x97\xA9\x42\xE8\x9C\x71\x99\x94\x91\xE3\xAF\xAC", 16);
    std::uint64_t rest = big_endian(held_, 0, 4) - held_.size();
    if (held_.compare(8, kXmpUuid.size(), kXmpUuid) != 0) {
        emit_held();
        return then(Mode::copy, rest, 0, Step::bmff_boundary);
    }
    held_.replace(4, 4, "free");
    held_.replace(8, kXmpUuid.size(), kXmpUuid.size(), '\0');
    blanked_ += 4 + kXmpUuid.size();
    emit_held();
    then(Mode::zero, rest, 0, Step::bmff_boundary);
}

// A box has ended: so may the boxes around it.
void MediaScrubber::bmff_boundary() {
    while (!bmff_parents_.empty() && bmff_parents_.back().first <= in_pos_)
        bmff_parents_.pop_back();
    read(8, Step::bmff_box);
}

// A HEIF file's meta box, held whole: its Exif and XMP items are zeroed where they lie, inside
// it (idat) now, further on in the file as they pass.
void MediaScrubber::bmff_heif_meta() {
    std::uint64_t start = in_pos_ - held_.size();
    std::size_t header = 8 + 4;   // size, type, FullBox version and flags
    if (held_.size() < header) {  // not a meta box a HEIF reader could use: nothing to find
        emit_held();
        return read(0, Step::bmff_boundary);
    }
    std::vector<Box> boxes = children(std::string_view(held_).substr(header), header);
    std::string_view iinf, iloc;
    std::size_t idat_offset = 0, idat_size = 0;
    for (const Box& box : boxes) {
        if (box.type == "iinf") iinf = box.payload;
        if (box.type == "iloc") iloc = box.payload;
        if (box.type == "idat") {
            idat_offset = box.payload_offset;
            idat_size = box.payload.size();
        }
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const ItemExtent& extent : item_extents(iloc, metadata_items(iinf))) {
        if (!extent.in_idat) {
            ranges.emplace_back(extent.offset, extent.offset + extent.length);
        } else if (extent.offset < idat_size && extent.length <= idat_size - extent.offset) {
            ranges.emplace_back(start + idat_offset + extent.offset,
                                start + idat_offset + extent.offset + extent.length);
        }
    }
    for (const auto& [begin, end] : ranges) {
        // Inside this box: zeroed now. Behind it: gone already, left. Ahead: zeroed as it passes.
        std::uint64_t from = std::max(begin, start), to = std::min(end, in_pos_);
        if (from < to) {
            held_.replace(static_cast<std::size_t>(from - start),
                          static_cast<std::size_t>(to - from), static_cast<std::size_t>(to - from),
                          '\0');
            blanked_ += to - from;
        }
        if (end > in_pos_) blank_ranges_.emplace_back(std::max(begin, in_pos_), end);
    }
    emit_held();
    read(0, Step::bmff_boundary);
}

// ---- GIF -------------------------------------------------------------------------------------

namespace {

// The size of the color table a GIF packed field announces (its bit 7 says there is one).
std::uint64_t gif_color_table(unsigned packed) {
    return (packed & 0x80) ? 3u << ((packed & 0x07) + 1) : 0;
}

}  // namespace

void MediaScrubber::gif_screen() {
    std::uint64_t table = gif_color_table(byte_at(held_, 10));
    emit_held();
    then(Mode::copy, table, 1, Step::gif_block);
}

void MediaScrubber::gif_block() {
    constexpr unsigned kExtension = 0x21, kImage = 0x2C, kTrailer = 0x3B;
    switch (byte_at(held_, 0)) {
    case kExtension: return read(2, Step::gif_extension);
    case kImage: return read(10, Step::gif_image);
    case kTrailer:
        emit_held();
        mode_ = Mode::passthrough;
        return;
    default: return give_up();
    }
}

void MediaScrubber::gif_extension() {
    constexpr unsigned kComment = 0xFE, kApplication = 0xFF;
    unsigned label = byte_at(held_, 1);
    if (label == kApplication) return read(2 + 1 + 11, Step::gif_application);
    gif_dropping_ = label == kComment;
    if (gif_dropping_) {
        drop_held();
    } else {
        emit_held();
    }
    read(1, Step::gif_sub_block);
}

// An application extension's first sub-block names it: XMP's goes, NETSCAPE2.0's (looping) and
// others stay.
void MediaScrubber::gif_application() {
    constexpr std::string_view kXmpId("\x0BXMP DataXMP", 12);
    gif_dropping_ = held_.compare(2, kXmpId.size(), kXmpId) == 0;
    if (gif_dropping_) {
        drop_held();
    } else if (byte_at(held_, 2) != 11) {
        // No 11-byte identifier: kept, and its sub-blocks walked from the first one's size on.
        std::string sub_blocks = held_.substr(2);
        held_.resize(2);
        in_pos_ -= sub_blocks.size();
        emit_held();
        read(1, Step::gif_sub_block);
        feed(sub_blocks);
        return;
    } else {
        emit_held();
    }
    read(1, Step::gif_sub_block);
}

void MediaScrubber::gif_image() {
    std::uint64_t table = gif_color_table(byte_at(held_, 9));
    emit_held();
    gif_dropping_ = false;
    then(Mode::copy, table, 1, Step::gif_code_size);
}

void MediaScrubber::gif_sub_block() {
    std::uint64_t size = byte_at(held_, 0);
    if (gif_dropping_) {
        drop_held();
    } else {
        emit_held();
    }
    if (size == 0) return read(1, Step::gif_block);  // the terminator
    then(gif_dropping_ ? Mode::skip : Mode::copy, size, 1, Step::gif_sub_block);
}

}  // namespace chatterd
