#include "core/media_type.h"

#include "core/media_name.h"

#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;  // "..."s keeps embedded NULs

// The first bytes of real files of each format.
const std::string kJpegJfif =
    "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"s;
const std::string kJpegExif =
    "\xFF\xD8\xFF\xE1\x0F\xFE"
    "Exif\x00\x00MM\x00\x2A"s;  // phone cameras
const std::string kPng =
    "\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06"s;
const std::string kGif89 = "GIF89a\x01\x00\x01\x00\x80\x00\x00"s;
const std::string kGif87 = "GIF87a\x10\x00\x10\x00\x00\x00\x00"s;
const std::string kWebp = "RIFF\x24\x01\x00\x00WEBPVP8 \x18\x01\x00\x00"s;
const std::string kWave = "RIFF\x24\x01\x00\x00WAVEfmt \x10\x00\x00\x00"s;
const std::string kHeicIphone =
    "\x00\x00\x00\x18"
    "ftypheic\x00\x00\x00\x00"
    "mif1heic"
    "\x00\x00\x0B\x2Fmeta"s;
const std::string kHeicMif1 =
    "\x00\x00\x00\x1C"
    "ftypmif1\x00\x00\x00\x00"
    "mif1MiHEmiafheic"s;
const std::string kHeifGenericOnly =
    "\x00\x00\x00\x18"
    "ftypmif1\x00\x00\x00\x00"
    "mif1miaf"s;
const std::string kAvif =
    "\x00\x00\x00\x20"
    "ftypavif\x00\x00\x00\x00"
    "avifmif1miafMA1B"s;
const std::string kAvifMif1 =
    "\x00\x00\x00\x1C"
    "ftypmif1\x00\x00\x00\x00"
    "mif1miafavif"s;
const std::string kAvifSequence =
    "\x00\x00\x00\x20"
    "ftypavis\x00\x00\x00\x00"
    "avisavifmsf1iso8"s;
const std::string kMovIphone =
    "\x00\x00\x00\x14"
    "ftypqt  \x00\x00\x00\x00"
    "qt  \x00\x00\x00\x08wide"s;
const std::string kMp4Android =
    "\x00\x00\x00\x18"
    "ftypmp42\x00\x00\x00\x00"
    "isommp42\x00\x00\x00\x08free"s;
const std::string kMp4Ffmpeg =
    "\x00\x00\x00\x20"
    "ftypisom\x00\x00\x02\x00"
    "isomiso2avc1mp41"s;
const std::string kM4v =
    "\x00\x00\x00\x1C"
    "ftypM4V \x00\x00\x00\x01"
    "M4V M4A mp42isom"s;
const std::string kDash =
    "\x00\x00\x00\x18"
    "ftypdash\x00\x00\x00\x00"
    "iso6dash"s;
const std::string kThreeGp =
    "\x00\x00\x00\x18"
    "ftyp3gp4\x00\x00\x02\x00"
    "isom3gp4"s;
const std::string kThreeG2 =
    "\x00\x00\x00\x14"
    "ftyp3g2a\x00\x00\x00\x00"
    "3g2a"s;
const std::string kUnknownMajorMp4 =
    "\x00\x00\x00\x18"
    "ftypXYZ1\x00\x00\x00\x00"
    "XYZ1mp42"s;
const std::string kM4a =
    "\x00\x00\x00\x1C"
    "ftypM4A \x00\x00\x00\x00"
    "M4A mp42isom\x00\x00\x00\x00"s;
const std::string kWebm =
    "\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08"
    "\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02\x18\x53\x80\x67"s;
// mkvmerge writes the EBML header size as an 8-byte vint.
const std::string kMatroska =
    "\x1A\x45\xDF\xA3\x01\x00\x00\x00\x00\x00\x00\x23\x42\x86\x81\x01\x42\xF7\x81\x01"
    "\x42\xF2\x81\x04\x42\xF3\x81\x08\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02"s;

struct Expectation {
    const std::string* head;
    const char* extension;  // nullptr: not accepted for the field
    const char* mime;
};

// The sniffed extension, or "" when the head is not accepted for the field.
std::string extension_of(MediaField field, std::string_view head) {
    std::optional<MediaType> type = sniff_media_type(field, head);
    return type ? std::string(type->extension) : std::string();
}

void expect_sniffed(MediaField field, const Expectation& expected) {
    std::optional<MediaType> type = sniff_media_type(field, *expected.head);
    if (expected.extension == nullptr) {
        EXPECT_FALSE(type) << "accepted as " << (type ? type->extension : "");
        return;
    }
    ASSERT_TRUE(type);
    EXPECT_EQ(type->extension, expected.extension);
    EXPECT_EQ(type->mime, expected.mime);
}

TEST(MediaTypeSniff, Images) {
    for (const Expectation& expected : {
             Expectation{&kJpegJfif, "jpeg", "image/jpeg"},
             Expectation{&kJpegExif, "jpeg", "image/jpeg"},
             Expectation{&kPng, "png", "image/png"},
             Expectation{&kGif89, "gif", "image/gif"},
             Expectation{&kGif87, "gif", "image/gif"},
             Expectation{&kWebp, "webp", "image/webp"},
             Expectation{&kHeicIphone, "heic", "image/heic"},
             Expectation{&kHeicMif1, "heic", "image/heic"},
             Expectation{&kHeifGenericOnly, "heic", "image/heic"},
             Expectation{&kAvif, "avif", "image/avif"},
             Expectation{&kAvifMif1, "avif", "image/avif"},
             Expectation{&kAvifSequence, "avif", "image/avif"},
         }) {
        SCOPED_TRACE(*expected.head);
        expect_sniffed(MediaField::image, expected);
    }
}

TEST(MediaTypeSniff, Videos) {
    for (const Expectation& expected : {
             Expectation{&kMovIphone, "mov", "video/quicktime"},
             Expectation{&kMp4Android, "mp4", "video/mp4"},
             Expectation{&kMp4Ffmpeg, "mp4", "video/mp4"},
             Expectation{&kM4v, "mp4", "video/mp4"},
             Expectation{&kDash, "mp4", "video/mp4"},
             Expectation{&kThreeGp, "3gp", "video/3gpp"},
             Expectation{&kThreeG2, "3gp", "video/3gpp"},
             Expectation{&kUnknownMajorMp4, "mp4", "video/mp4"},
             Expectation{&kWebm, "webm", "video/webm"},
             Expectation{&kMatroska, "mkv", "video/x-matroska"},
         }) {
        SCOPED_TRACE(*expected.head);
        expect_sniffed(MediaField::video, expected);
    }
}

TEST(MediaTypeSniff, ImagesAreNotVideosAndVideosAreNotImages) {
    for (const std::string* image : {&kJpegJfif, &kPng, &kGif89, &kWebp, &kHeicIphone, &kHeicMif1,
                                     &kHeifGenericOnly, &kAvif, &kAvifMif1, &kAvifSequence}) {
        EXPECT_FALSE(sniff_media_type(MediaField::video, *image)) << *image;
    }
    for (const std::string* video : {&kMovIphone, &kMp4Android, &kMp4Ffmpeg, &kM4v, &kDash,
                                     &kThreeGp, &kThreeG2, &kUnknownMajorMp4, &kWebm, &kMatroska}) {
        EXPECT_FALSE(sniff_media_type(MediaField::image, *video)) << *video;
    }
}

TEST(MediaTypeSniff, NeitherImageNorVideo) {
    const std::string not_media[] = {
        "",
        "hello, world",
        "<!DOCTYPE html><html>",
        "%PDF-1.7\n",
        "PK\x03\x04"s,
        kWave,
        kM4a,  // audio-only MP4
        "\x00\x00\x00\x18"
        "ftypabcd\x00\x00\x00\x00"
        "efghijkl"s,                                                  // no brand we know
        "\x1A\x45\xDF\xA3\x93\x42\x82\x88matrosky\x42\x87\x81\x04"s,  // unknown DocType
    };
    for (const std::string& head : not_media) {
        EXPECT_FALSE(sniff_media_type(MediaField::image, head)) << head;
        EXPECT_FALSE(sniff_media_type(MediaField::video, head)) << head;
    }
}

// A known major brand decides even when compatible brands say otherwise; an unknown one defers to
// them (kUnknownMajorMp4).
TEST(MediaTypeSniff, MajorBrandDecidesOverCompatibleBrands) {
    const std::string heic_listing_mp4 =
        "\x00\x00\x00\x1C"
        "ftypheic\x00\x00\x00\x00"
        "mif1heiciso8"s;
    EXPECT_EQ(extension_of(MediaField::image, heic_listing_mp4), "heic");
    EXPECT_FALSE(sniff_media_type(MediaField::video, heic_listing_mp4));

    const std::string mp4_listing_heic =
        "\x00\x00\x00\x18"
        "ftypisom\x00\x00\x00\x00"
        "isomheic"s;
    EXPECT_EQ(extension_of(MediaField::video, mp4_listing_heic), "mp4");
    EXPECT_FALSE(sniff_media_type(MediaField::image, mp4_listing_heic));
}

TEST(MediaTypeSniff, FtypBoxBoundsAreRespected) {
    // A 16-byte ftyp box has no compatible brands; the "mp42" after it belongs to the next box.
    const std::string box_without_compatible =
        "\x00\x00\x00\x10"
        "ftypabcd\x00\x00\x00\x00"
        "mp42"s;
    EXPECT_FALSE(sniff_media_type(MediaField::video, box_without_compatible));

    // Size 0 means the box runs to the end of the file.
    const std::string box_to_end =
        "\x00\x00\x00\x00"
        "ftypabcd\x00\x00\x00\x00"
        "mp42"s;
    EXPECT_EQ(extension_of(MediaField::video, box_to_end), "mp4");

    // A 64-bit size (1) or a size too small for the brands is not an ftyp box any encoder writes.
    EXPECT_FALSE(sniff_media_type(MediaField::video,
                                  "\x00\x00\x00\x01"
                                  "ftypmp42\x00\x00\x00\x00"
                                  "isom"s));
    EXPECT_FALSE(sniff_media_type(MediaField::video,
                                  "\x00\x00\x00\x08"
                                  "ftypmp42\x00\x00\x00\x00"
                                  "isom"s));

    // A JPEG whose bytes 4-7 read "ftyp" (its box size would be about 4 GB) stays a JPEG: it is not
    // taken as a video too.
    const std::string jpeg_reading_ftyp =
        "\xFF\xD8\xFF\xE0"
        "ftypmp42\x00\x00\x00\x00"
        "isom"s;
    EXPECT_EQ(extension_of(MediaField::image, jpeg_reading_ftyp), "jpeg");
    EXPECT_FALSE(sniff_media_type(MediaField::video, jpeg_reading_ftyp));
    // The largest box taken, and one byte more.
    EXPECT_EQ(extension_of(MediaField::video,
                           "\x00\x00\x04\x00"
                           "ftypmp42\x00\x00\x00\x00"
                           "isom"s),
              "mp4");
    EXPECT_FALSE(sniff_media_type(MediaField::video,
                                  "\x00\x00\x04\x01"
                                  "ftypmp42\x00\x00\x00\x00"
                                  "isom"s));
}

// Every prefix of every head must be handled without reading past it; those too short to show the
// signature are rejected.
TEST(MediaTypeSniff, TruncatedHeads) {
    for (const std::string* head : {&kJpegJfif, &kPng, &kGif89, &kWebp, &kHeicIphone, &kAvif,
                                    &kMovIphone, &kMp4Android, &kThreeGp, &kWebm, &kMatroska}) {
        for (std::size_t length = 0; length < head->size(); ++length) {
            std::string prefix =
                head->substr(0, length);  // a copy, so that ASan sees a read past it
            sniff_media_type(MediaField::image, prefix);
            sniff_media_type(MediaField::video, prefix);
        }
    }
    EXPECT_FALSE(sniff_media_type(MediaField::image, "\xFF\xD8"));
    EXPECT_FALSE(sniff_media_type(MediaField::image, "\x89PNG\r\n\x1A"));
    EXPECT_FALSE(sniff_media_type(MediaField::image, "GIF89"));
    EXPECT_FALSE(sniff_media_type(MediaField::image, kWebp.substr(0, 11)));
    EXPECT_FALSE(sniff_media_type(MediaField::image, kHeicIphone.substr(0, 15)));
    EXPECT_FALSE(sniff_media_type(MediaField::video, kMovIphone.substr(0, 15)));
    EXPECT_FALSE(sniff_media_type(MediaField::video, kWebm.substr(0, 26)));  // DocType cut short
    EXPECT_FALSE(sniff_media_type(MediaField::video, kMatroska.substr(0, 30)));
}

TEST(MediaTypeSniff, ShortestSufficientHeads) {
    EXPECT_EQ(extension_of(MediaField::image, "\xFF\xD8\xFF"), "jpeg");
    EXPECT_EQ(extension_of(MediaField::image, kHeicIphone.substr(0, 16)), "heic");
    EXPECT_EQ(extension_of(MediaField::video, kMovIphone.substr(0, 16)), "mov");
    EXPECT_EQ(extension_of(MediaField::video, kWebm.substr(0, 28)), "webm");
}

TEST(MediaTypeSniff, SignaturesFitInTheSniffWindow) {
    for (const std::string* head : {&kJpegJfif, &kPng, &kGif89, &kWebp, &kHeicIphone, &kAvif}) {
        std::string padded = *head + std::string(2 * kSniffBytes, '\0');
        EXPECT_TRUE(sniff_media_type(MediaField::image, padded.substr(0, kSniffBytes)));
    }
    for (const std::string* head : {&kMovIphone, &kMp4Android, &kThreeGp, &kWebm, &kMatroska}) {
        std::string padded = *head + std::string(2 * kSniffBytes, '\0');
        EXPECT_TRUE(sniff_media_type(MediaField::video, padded.substr(0, kSniffBytes)));
    }
}

// ---- names ----

TEST(MediaTypeSniff, ExtensionOfTheSniffedBytes) {
    std::optional<MediaType> type = sniff_media_type(MediaField::video, kMovIphone);
    ASSERT_TRUE(type);
    std::string name = random_media_name("bob", type->extension);
    EXPECT_EQ(name.substr(name.size() - 4), ".mov");
}

}  // namespace
}  // namespace chatterd
