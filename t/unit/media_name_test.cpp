#include "core/media_name.h"

#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;   // "..."s keeps embedded NULs

// The first bytes of real files of each format.
const std::string kJpegJfif = "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"s;
const std::string kJpegExif = "\xFF\xD8\xFF\xE1\x0F\xFE" "Exif\x00\x00MM\x00\x2A"s;   // phone cameras
const std::string kPng = "\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06"s;
const std::string kGif89 = "GIF89a\x01\x00\x01\x00\x80\x00\x00"s;
const std::string kGif87 = "GIF87a\x10\x00\x10\x00\x00\x00\x00"s;
const std::string kWebp = "RIFF\x24\x01\x00\x00WEBPVP8 \x18\x01\x00\x00"s;
const std::string kWave = "RIFF\x24\x01\x00\x00WAVEfmt \x10\x00\x00\x00"s;
const std::string kHeicIphone = "\x00\x00\x00\x18" "ftypheic\x00\x00\x00\x00" "mif1heic" "\x00\x00\x0B\x2Fmeta"s;
const std::string kHeicMif1 = "\x00\x00\x00\x1C" "ftypmif1\x00\x00\x00\x00" "mif1MiHEmiafheic"s;
const std::string kHeifGenericOnly = "\x00\x00\x00\x18" "ftypmif1\x00\x00\x00\x00" "mif1miaf"s;
const std::string kAvif = "\x00\x00\x00\x20" "ftypavif\x00\x00\x00\x00" "avifmif1miafMA1B"s;
const std::string kAvifMif1 = "\x00\x00\x00\x1C" "ftypmif1\x00\x00\x00\x00" "mif1miafavif"s;
const std::string kAvifSequence = "\x00\x00\x00\x20" "ftypavis\x00\x00\x00\x00" "avisavifmsf1iso8"s;
const std::string kMovIphone = "\x00\x00\x00\x14" "ftypqt  \x00\x00\x00\x00" "qt  \x00\x00\x00\x08wide"s;
const std::string kMp4Android = "\x00\x00\x00\x18" "ftypmp42\x00\x00\x00\x00" "isommp42\x00\x00\x00\x08free"s;
const std::string kMp4Ffmpeg = "\x00\x00\x00\x20" "ftypisom\x00\x00\x02\x00" "isomiso2avc1mp41"s;
const std::string kM4v = "\x00\x00\x00\x1C" "ftypM4V \x00\x00\x00\x01" "M4V M4A mp42isom"s;
const std::string kDash = "\x00\x00\x00\x18" "ftypdash\x00\x00\x00\x00" "iso6dash"s;
const std::string kThreeGp = "\x00\x00\x00\x18" "ftyp3gp4\x00\x00\x02\x00" "isom3gp4"s;
const std::string kThreeG2 = "\x00\x00\x00\x14" "ftyp3g2a\x00\x00\x00\x00" "3g2a"s;
const std::string kUnknownMajorMp4 = "\x00\x00\x00\x18" "ftypXYZ1\x00\x00\x00\x00" "XYZ1mp42"s;
const std::string kM4a = "\x00\x00\x00\x1C" "ftypM4A \x00\x00\x00\x00" "M4A mp42isom\x00\x00\x00\x00"s;
const std::string kWebm = "\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08"
                          "\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02\x18\x53\x80\x67"s;
// mkvmerge writes the EBML header size as an 8-byte vint.
const std::string kMatroska = "\x1A\x45\xDF\xA3\x01\x00\x00\x00\x00\x00\x00\x23\x42\x86\x81\x01\x42\xF7\x81\x01"
                              "\x42\xF2\x81\x04\x42\xF3\x81\x08\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02"s;

struct Expectation {
    const std::string* head;
    const char* extension;   // nullptr: not accepted for the field
    const char* mime;
};

// The sniffed extension, or "" when the head is not accepted for the field.
std::string extension_of(MediaField field, std::string_view head)
{
    std::optional<MediaType> type = sniff_media_type(field, head);
    return type ? std::string(type->extension) : std::string();
}

void expect_sniffed(MediaField field, const Expectation& expected)
{
    std::optional<MediaType> type = sniff_media_type(field, *expected.head);
    if (expected.extension == nullptr) {
        EXPECT_FALSE(type) << "accepted as " << (type ? type->extension : "");
        return;
    }
    ASSERT_TRUE(type);
    EXPECT_EQ(type->extension, expected.extension);
    EXPECT_EQ(type->mime, expected.mime);
}

TEST(MediaNameSniff, Images)
{
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

TEST(MediaNameSniff, Videos)
{
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

TEST(MediaNameSniff, ImagesAreNotVideosAndVideosAreNotImages)
{
    for (const std::string* image : {&kJpegJfif, &kPng, &kGif89, &kWebp, &kHeicIphone, &kHeicMif1, &kHeifGenericOnly,
                                      &kAvif, &kAvifMif1, &kAvifSequence}) {
        EXPECT_FALSE(sniff_media_type(MediaField::video, *image)) << *image;
    }
    for (const std::string* video : {&kMovIphone, &kMp4Android, &kMp4Ffmpeg, &kM4v, &kDash, &kThreeGp, &kThreeG2,
                                      &kUnknownMajorMp4, &kWebm, &kMatroska}) {
        EXPECT_FALSE(sniff_media_type(MediaField::image, *video)) << *video;
    }
}

TEST(MediaNameSniff, NeitherImageNorVideo)
{
    const std::string not_media[] = {
        "",
        "hello, world",
        "<!DOCTYPE html><html>",
        "%PDF-1.7\n",
        "PK\x03\x04"s,
        kWave,
        kM4a,                                                                      // audio-only MP4
        "\x00\x00\x00\x18" "ftypabcd\x00\x00\x00\x00" "efghijkl"s,                 // no brand we know
        "\x1A\x45\xDF\xA3\x93\x42\x82\x88matrosky\x42\x87\x81\x04"s,               // unknown DocType
    };
    for (const std::string& head : not_media) {
        EXPECT_FALSE(sniff_media_type(MediaField::image, head)) << head;
        EXPECT_FALSE(sniff_media_type(MediaField::video, head)) << head;
    }
}

// A known major brand decides even when compatible brands say otherwise; an unknown one defers to them
// (kUnknownMajorMp4).
TEST(MediaNameSniff, MajorBrandDecidesOverCompatibleBrands)
{
    const std::string heic_listing_mp4 = "\x00\x00\x00\x1C" "ftypheic\x00\x00\x00\x00" "mif1heiciso8"s;
    EXPECT_EQ(extension_of(MediaField::image, heic_listing_mp4), "heic");
    EXPECT_FALSE(sniff_media_type(MediaField::video, heic_listing_mp4));

    const std::string mp4_listing_heic = "\x00\x00\x00\x18" "ftypisom\x00\x00\x00\x00" "isomheic"s;
    EXPECT_EQ(extension_of(MediaField::video, mp4_listing_heic), "mp4");
    EXPECT_FALSE(sniff_media_type(MediaField::image, mp4_listing_heic));
}

TEST(MediaNameSniff, FtypBoxBoundsAreRespected)
{
    // A 16-byte ftyp box has no compatible brands; the "mp42" after it belongs to the next box.
    const std::string box_without_compatible = "\x00\x00\x00\x10" "ftypabcd\x00\x00\x00\x00" "mp42"s;
    EXPECT_FALSE(sniff_media_type(MediaField::video, box_without_compatible));

    // Size 0 means the box runs to the end of the file.
    const std::string box_to_end = "\x00\x00\x00\x00" "ftypabcd\x00\x00\x00\x00" "mp42"s;
    EXPECT_EQ(extension_of(MediaField::video, box_to_end), "mp4");

    // A 64-bit size (1) or a size too small for the brands is not an ftyp box any encoder writes.
    EXPECT_FALSE(sniff_media_type(MediaField::video, "\x00\x00\x00\x01" "ftypmp42\x00\x00\x00\x00" "isom"s));
    EXPECT_FALSE(sniff_media_type(MediaField::video, "\x00\x00\x00\x08" "ftypmp42\x00\x00\x00\x00" "isom"s));
}

// Every prefix of every head must be handled without reading past it; those too short to show the signature are
// rejected.
TEST(MediaNameSniff, TruncatedHeads)
{
    for (const std::string* head : {&kJpegJfif, &kPng, &kGif89, &kWebp, &kHeicIphone, &kAvif, &kMovIphone,
                                     &kMp4Android, &kThreeGp, &kWebm, &kMatroska}) {
        for (std::size_t length = 0; length < head->size(); ++length) {
            std::string prefix = head->substr(0, length);   // a copy, so that ASan sees a read past it
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
    EXPECT_FALSE(sniff_media_type(MediaField::video, kWebm.substr(0, 26)));       // DocType cut short
    EXPECT_FALSE(sniff_media_type(MediaField::video, kMatroska.substr(0, 30)));
}

TEST(MediaNameSniff, ShortestSufficientHeads)
{
    EXPECT_EQ(extension_of(MediaField::image, "\xFF\xD8\xFF"), "jpeg");
    EXPECT_EQ(extension_of(MediaField::image, kHeicIphone.substr(0, 16)), "heic");
    EXPECT_EQ(extension_of(MediaField::video, kMovIphone.substr(0, 16)), "mov");
    EXPECT_EQ(extension_of(MediaField::video, kWebm.substr(0, 28)), "webm");
}

TEST(MediaNameSniff, SignaturesFitInTheSniffWindow)
{
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

TEST(MediaNamePrefix, KeepsPortableFileNameCharacters)
{
    EXPECT_EQ(sanitized_username_prefix("alice"), "alice");
    EXPECT_EQ(sanitized_username_prefix("Alice_B.Smith-2"), "Alice_B.Smith-2");
    EXPECT_EQ(sanitized_username_prefix("John Smith"), "John_Smith");
    EXPECT_EQ(sanitized_username_prefix(" lead"), "_lead");
    EXPECT_EQ(sanitized_username_prefix("a..b"), "a..b");
}

TEST(MediaNamePrefix, DropsEverythingElse)
{
    EXPECT_EQ(sanitized_username_prefix("\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3"), "");   // "ジョン"
    EXPECT_EQ(sanitized_username_prefix("\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3 john"), "_john");
    EXPECT_EQ(sanitized_username_prefix("../../etc/passwd"), "etcpasswd");
    EXPECT_EQ(sanitized_username_prefix("a/b\\c:d*e?f\"g<h>i|j"), "abcdefghij");
    EXPECT_EQ(sanitized_username_prefix("nul\0byte\n\t"s), "nulbyte");
    EXPECT_EQ(sanitized_username_prefix(""), "");
}

TEST(MediaNamePrefix, NoLeadingDotOrDash)
{
    EXPECT_EQ(sanitized_username_prefix(".hidden"), "hidden");
    EXPECT_EQ(sanitized_username_prefix(".."), "");
    EXPECT_EQ(sanitized_username_prefix("--rf"), "rf");
    EXPECT_EQ(sanitized_username_prefix("-./-.x.y"), "x.y");
    EXPECT_EQ(sanitized_username_prefix("/.hidden"), "hidden");
}

TEST(MediaNamePrefix, AtMost64Characters)
{
    EXPECT_EQ(sanitized_username_prefix(std::string(255, 'a')), std::string(64, 'a'));
    EXPECT_EQ(sanitized_username_prefix(std::string(200, '.') + std::string(100, 'b')), std::string(64, 'b'));
    EXPECT_EQ(sanitized_username_prefix(std::string(255, '.')), "");
}

bool all_of_chars(std::string_view text, std::string_view allowed)
{
    return text.find_first_not_of(allowed) == std::string_view::npos;
}

// "<prefix>-<32 lowercase hex>.<extension>" or "<32 lowercase hex>.<extension>", with a prefix as
// sanitized_username_prefix makes it.
void expect_safe_name(std::string_view name)
{
    constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const std::string kPrefixChars = std::string(kAlnum) + "_.-";
    SCOPED_TRACE(name);
    ASSERT_LT(name.size(), 255u);
    std::size_t dot = name.rfind('.');
    ASSERT_NE(dot, std::string_view::npos);
    std::string_view extension = name.substr(dot + 1);
    std::string_view stem = name.substr(0, dot);
    EXPECT_FALSE(extension.empty());
    EXPECT_TRUE(all_of_chars(extension, kAlnum));
    ASSERT_GE(stem.size(), 32u);
    EXPECT_TRUE(all_of_chars(stem.substr(stem.size() - 32), "0123456789abcdef"));
    std::string_view prefix_and_dash = stem.substr(0, stem.size() - 32);
    if (!prefix_and_dash.empty()) {
        ASSERT_EQ(prefix_and_dash.back(), '-');
        std::string_view prefix = prefix_and_dash.substr(0, prefix_and_dash.size() - 1);
        ASSERT_FALSE(prefix.empty());
        EXPECT_LE(prefix.size(), 64u);
        EXPECT_TRUE(all_of_chars(prefix, kPrefixChars));
        EXPECT_NE(prefix.front(), '.');
        EXPECT_NE(prefix.front(), '-');
    }
}

TEST(MediaNameRandom, PrefixRandomHexAndExtension)
{
    std::string name = random_media_name("alice", "jpeg");
    expect_safe_name(name);
    EXPECT_EQ(name.rfind("alice-", 0), 0u) << name;
    EXPECT_EQ(name.size(), std::string("alice-").size() + 32 + std::string(".jpeg").size());
    EXPECT_EQ(name.substr(name.size() - 5), ".jpeg");
}

TEST(MediaNameRandom, UsernamesThatSanitiseToNothing)
{
    for (std::string_view username : {"\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3", "", "..", "///"}) {
        std::string name = random_media_name(username, "mp4");
        expect_safe_name(name);
        EXPECT_EQ(name.size(), 32 + std::string(".mp4").size()) << name;
    }
}

TEST(MediaNameRandom, HostileUsernames)
{
    for (std::string_view username : {"../../etc/passwd", ".hidden", "-rf", "a/b"}) {
        expect_safe_name(random_media_name(username, "png"));
    }
    std::string name = random_media_name(std::string(255, 'x'), "webm");
    expect_safe_name(name);
    EXPECT_EQ(name.size(), 64 + 1 + 32 + 1 + 4u);
}

TEST(MediaNameRandom, ExtensionOfTheSniffedBytes)
{
    std::optional<MediaType> type = sniff_media_type(MediaField::video, kMovIphone);
    ASSERT_TRUE(type);
    std::string name = random_media_name("bob", type->extension);
    EXPECT_EQ(name.substr(name.size() - 4), ".mov");
}

TEST(MediaNameRandom, ExtensionMustBeAlphanumeric)
{
    for (std::string_view extension : {"", ".jpeg", "../x", "jp/g", "a b"}) {
        EXPECT_THROW(random_media_name("alice", extension), std::invalid_argument) << extension;
    }
}

TEST(MediaNameRandom, TenThousandNamesAreDistinct)
{
    std::unordered_set<std::string> names;
    for (int i = 0; i < 10000; ++i) {
        names.insert(random_media_name("alice", "jpeg"));
    }
    EXPECT_EQ(names.size(), 10000u);
}

}  // namespace
}  // namespace chatterd

namespace chatterd {
namespace {

TEST(IsMediaName, TheNamesRandomMediaNameMakes) {
    EXPECT_TRUE(is_media_name(random_media_name("alice", "jpeg")));
    EXPECT_TRUE(is_media_name(random_media_name("ジョン", "mp4")));
    EXPECT_TRUE(is_media_name(random_media_name("a.b_c-d", "webm")));
    EXPECT_TRUE(is_media_name("." + random_media_name("", "upload")));
}

TEST(IsMediaName, NotAnOperatorsFiles) {
    EXPECT_FALSE(is_media_name("index.html"));
    EXPECT_FALSE(is_media_name("README"));
    EXPECT_FALSE(is_media_name(".htaccess"));
    EXPECT_FALSE(is_media_name("0123456789abcdef0123456789abcdef"));          // no extension
    EXPECT_FALSE(is_media_name("0123456789abcdef0123456789abcdef."));
    EXPECT_FALSE(is_media_name("0123456789ABCDEF0123456789abcdef.jpeg"));     // upper-case hex
    EXPECT_FALSE(is_media_name("alice0123456789abcdef0123456789abcdef.jpeg")); // no dash
    EXPECT_FALSE(is_media_name("-0123456789abcdef0123456789abcdef.jpeg"));     // empty prefix
    EXPECT_FALSE(is_media_name("a b-0123456789abcdef0123456789abcdef.jpeg"));  // not sanitized
    EXPECT_FALSE(is_media_name(".0123456789abcdef0123456789abcdef.jpeg"));     // hidden, not a temp
    EXPECT_FALSE(is_media_name("x-0123456789abcdef0123456789abcdef.jp/eg"));
    EXPECT_TRUE(is_media_name("x-0123456789abcdef0123456789abcdef.jpeg"));
}

}  // namespace
}  // namespace chatterd
