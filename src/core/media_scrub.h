// A streaming filter that takes location and device identity out of a photo or video while it
// is written, in one pass, without decoding or re-encoding it (SECURITY.md: Metadata).
//   JPEG      every APP1 (Exif, XMP, extended XMP), APP13 and COM segment before the first scan
//             is removed; an Exif Orientation comes back as a minimal APP1 holding only it.
//   PNG       eXIf, tEXt, zTXt and iTXt chunks are removed (whole chunks: no CRC changes).
//   WebP      EXIF and "XMP " chunks become "JUNK" chunks of the same size filled with zeros,
//             and the VP8X flags stop announcing them: the RIFF size at the file's start stays
//             right without holding anything back.
//   ISO-BMFF  (MP4, MOV, 3GP, HEIC, AVIF) udta and meta boxes inside moov and trak, and
//             top-level XMP uuid boxes, become free boxes of the same size filled with zeros,
//             so no offset moves; a HEIF file's Exif and XMP items are zeroed in place where
//             its top-level meta comes before them.
//   GIF       comment extensions and XMP application extensions are removed.
//   others    (WebM, Matroska, anything unknown) pass unchanged.
// Image and video data are never touched. Where a file's structure stops making sense (a
// truncated or unknown header, a length past its parent), the filter writes what it holds
// unchanged and passes the rest through: it only leaves out bytes it parsed as metadata.
// Memory: a few bytes of header at a time, a whole segment only for a JPEG Exif segment (at most
// 64 KiB) and a HEIF top-level meta box (at most kMaxHeldBox).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chatterd {

// What the strip policy can do to a file of a sniffed type (MediaType::extension): nothing
// (WebM, Matroska), only overwrites that keep every byte's offset (ISO-BMFF, WebP), or
// removals that shorten the file (JPEG, PNG, GIF).
enum class ScrubEffect { none, same_size, shrinks };
ScrubEffect scrub_effect(std::string_view extension);

class MediaScrubber {
public:
    // Receives the filtered bytes in order; false stops the filter (feed and finish return false).
    using Write = std::function<bool(std::string_view)>;

    // The largest box held whole for parsing (a HEIF meta box); a larger one passes unchanged.
    static constexpr std::size_t kMaxHeldBox = 1 << 20;

    // keep: every byte passes unchanged (the operator's choice, chatterd_media_metadata keep).
    enum class Policy { strip, keep };

    explicit MediaScrubber(Write write, Policy policy = Policy::strip)
        : write_(std::move(write)),
          mode_(policy == Policy::keep ? Mode::passthrough : Mode::read) {}

    bool feed(std::string_view bytes);
    // The input has ended: writes what is still held (an unfinished header) unchanged.
    bool finish();

    std::uint64_t consumed() const { return in_pos_; }  // input bytes fed so far
    std::uint64_t removed() const { return removed_; }  // bytes left out of the output
    std::uint64_t blanked() const { return blanked_; }  // metadata bytes overwritten in place

private:
    enum class Mode { read, copy, skip, zero, passthrough };
    // What the bytes held are, once need_ of them are there.
    enum class Step {
        sniff,
        jpeg_marker,
        jpeg_segment,
        jpeg_app2_id,
        jpeg_exif,
        png_chunk,
        webp_chunk,
        webp_vp8x_flags,
        bmff_box,
        bmff_large_box,
        bmff_boundary,
        bmff_heif_meta,
        bmff_uuid,
        gif_screen,
        gif_block,
        gif_extension,
        gif_application,
        gif_image,
        gif_code_size,
        gif_sub_block,
    };

    void step();
    void read(std::size_t total, Step next);
    void then(Mode mode, std::uint64_t count, std::size_t next_total, Step next);
    void give_up();
    bool emit(std::string_view bytes);
    bool emit_held();
    void drop_held();
    bool emit_zeros(std::uint64_t count);
    bool copy_out(std::string_view bytes);

    void sniff();
    void jpeg_marker();
    void jpeg_segment();
    void jpeg_app2_id();
    void jpeg_exif();
    void jpeg_blank_segment(std::uint64_t body);
    void png_chunk();
    void webp_chunk();
    void webp_vp8x_flags();
    void bmff_box(std::uint64_t size, std::size_t header);
    void bmff_boundary();
    void bmff_heif_meta();
    void bmff_uuid();
    void gif_screen();
    void gif_block();
    void gif_extension();
    void gif_application();
    void gif_image();
    void gif_sub_block();

    Write write_;
    bool ok_ = true;  // the writer has not failed
    Mode mode_;
    Step step_ = Step::sniff;
    std::size_t need_ = 12;  // bytes held before step_: enough to tell the formats apart
    std::string held_;
    std::size_t held_fill_ = 0;  // JPEG fill bytes (0xFF) before the held marker
    std::uint64_t left_ = 0;     // bytes still to copy, skip or zero
    std::size_t next_total_ = 0;
    Step next_step_ = Step::sniff;

    std::uint64_t in_pos_ = 0;  // input offset of the next byte fed
    std::uint64_t removed_ = 0;
    std::uint64_t blanked_ = 0;

    bool jpeg_orientation_written_ = false;
    bool jpeg_mpf_seen_ = false;  // from here, removing bytes would move MPF's offsets
    // ISO-BMFF: the input offsets where the boxes we are inside end, outermost first, and their
    // types.
    std::vector<std::pair<std::uint64_t, std::string>> bmff_parents_;
    std::uint64_t bmff_box_end_ = 0;  // the box whose header is held
    bool gif_dropping_ = false;       // the sub-blocks being read belong to a removed extension
    // HEIF items to zero as they pass: [begin, end) input offsets.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> blank_ranges_;
};

}  // namespace chatterd
