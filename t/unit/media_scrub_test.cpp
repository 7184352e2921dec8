#include "core/media_scrub.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;  // "..."s keeps embedded NULs

std::string be16(unsigned v) {
    return {static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string be32(std::uint32_t v) {
    return be16(v >> 16) + be16(v & 0xFFFF);
}
std::string le32(std::uint32_t v) {
    return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
            static_cast<char>(v >> 24)};
}

// Bytes that stand for image or video data: every value, 0xFF included.
std::string data_bytes(std::size_t n, unsigned seed) {
    std::string bytes;
    for (std::size_t i = 0; i < n; ++i) bytes += static_cast<char>((i * 167 + seed * 31) & 0xFF);
    return bytes;
}

// The filter's output for input cut at the given offsets (ascending).
std::string scrub(std::string_view input, const std::vector<std::size_t>& cuts = {}) {
    std::string out;
    MediaScrubber scrubber([&](std::string_view bytes) {
        out.append(bytes);
        return true;
    });
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
        EXPECT_TRUE(scrubber.feed(input.substr(from, cut - from)));
        from = cut;
    }
    EXPECT_TRUE(scrubber.feed(input.substr(from)));
    EXPECT_TRUE(scrubber.finish());
    EXPECT_EQ(scrubber.consumed(), input.size());
    EXPECT_EQ(scrubber.removed(), input.size() - out.size());
    return out;
}

// The whole input at once, cut at every offset, cut at every pair of offsets (small inputs) and
// byte by byte all give the same output, which is returned.
std::string scrub_every_split(std::string_view input) {
    std::string whole = scrub(input);
    for (std::size_t i = 0; i <= input.size(); ++i) {
        EXPECT_EQ(scrub(input, {i}), whole) << "cut at " << i;
    }
    if (input.size() <= 400) {
        for (std::size_t i = 0; i <= input.size(); ++i) {
            for (std::size_t j = i; j <= input.size(); j += 3) {
                if (scrub(input, {i, j}) != whole) {
                    ADD_FAILURE() << "cut at " << i << " and " << j;
                    return whole;
                }
            }
        }
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t i = 1; i < input.size(); ++i) every_byte.push_back(i);
    EXPECT_EQ(scrub(input, every_byte), whole);
    return whole;
}

// ---- JPEG --------------------------------------------------------------------------------

std::string segment(unsigned marker, const std::string& body) {
    return "\xFF"s + static_cast<char>(marker) + be16(body.size() + 2) + body;
}

// An Exif APP1 body as a phone writes it: IFD0 with Make, Orientation and a GPS IFD pointer, the
// GPS IFD with a latitude reference.
std::string exif_body(unsigned orientation, bool little_endian = false) {
    auto u16 = [&](unsigned v) {
        std::string s = be16(v);
        return little_endian ? std::string{s[1], s[0]} : s;
    };
    auto u32 = [&](std::uint32_t v) {
        return u16(little_endian ? v & 0xFFFF : v >> 16)
               + u16(little_endian ? v >> 16 : v & 0xFFFF);
    };
    std::string tiff = (little_endian ? "II"s : "MM"s) + u16(42) + u32(8);
    tiff += u16(3);                                                       // IFD0: 3 entries
    tiff += u16(0x010F) + u16(2) + u32(6) + u32(8 + 2 + 3 * 12 + 4);      // Make -> "Phone"
    tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0);    // Orientation
    tiff += u16(0x8825) + u16(4) + u32(1) + u32(8 + 2 + 3 * 12 + 4 + 6);  // GPS IFD
    tiff += u32(0);
    tiff += "Phone\0"s;
    tiff += u16(1) + u16(0x0001) + u16(2) + u32(2) + "N\0\0\0"s + u32(0);  // GPSLatitudeRef
    return "Exif\0\0"s + tiff;
}

const std::string kSoi = "\xFF\xD8"s;
const std::string kApp0 = segment(0xE0, "JFIF\0\x01\x01\0\0\x01\0\x01\0\0"s);
const std::string kXmp =
    segment(0xE1, "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPSLatitude</x:xmpmeta>"s);
const std::string kApp13 = segment(0xED,
                                   "Photoshop 3.0\0"
                                   "8BIM IPTC city"s);
const std::string kComment = segment(0xFE, "1 Main Street, Springfield");
const std::string kDqt = segment(0xDB, "\0"s + data_bytes(64, 1));
const std::string kSof = segment(0xC0, "\x08\x00\x10\x00\x10\x01\x01\x11\x00"s);
const std::string kScan = segment(0xDA, "\x01\x01\x00\x00\x3F\x00"s) + data_bytes(300, 2)
                          + "\xFF\x00\xFF\xD0" + data_bytes(40, 3) + "\xFF\xD9"s;

std::string minimal_orientation_app1(unsigned orientation) {
    return "\xFF\xE1\x00\x22"
           "Exif\0\0MM\x00\x2A\x00\x00\x00\x08\x00\x01"
           "\x01\x12\x00\x03\x00\x00\x00\x01\x00"s
           + static_cast<char>(orientation) + "\0\0\0\0\0\0"s;
}

TEST(MediaScrubJpeg, RemovesExifXmpApp13AndCommentsKeepingTheOrientation) {
    std::string input =
        kSoi + kApp0 + segment(0xE1, exif_body(6)) + kXmp + kApp13 + kComment + kDqt + kSof + kScan;
    EXPECT_EQ(scrub_every_split(input),
              kSoi + kApp0 + minimal_orientation_app1(6) + kDqt + kSof + kScan);
}

TEST(MediaScrubJpeg, ReadsALittleEndianOrientation) {
    std::string input = kSoi + segment(0xE1, exif_body(8, true)) + kDqt + kScan;
    EXPECT_EQ(scrub(input), kSoi + minimal_orientation_app1(8) + kDqt + kScan);
}

TEST(MediaScrubJpeg, WithoutAnOrientationNoExifIsLeft) {
    std::string exif = exif_body(1);
    exif[6 + 8 + 2 + 12 + 1] = 0x13;  // the Orientation entry's tag is another's
    std::string input = kSoi + segment(0xE1, exif) + kDqt + kScan;
    EXPECT_EQ(scrub(input), kSoi + kDqt + kScan);
}

TEST(MediaScrubJpeg, AFileWithoutMetadataIsUnchanged) {
    std::string input =
        kSoi + kApp0 + segment(0xE2, "ICC_PROFILE\0"s + data_bytes(90, 4)) + kDqt + kSof + kScan;
    EXPECT_EQ(scrub_every_split(input), input);
}

TEST(MediaScrubJpeg, MetadataInsideTheScanIsImageDataAndStays) {
    std::string input = kSoi + kDqt + kScan + kComment;
    EXPECT_EQ(scrub(input), input);
}

TEST(MediaScrubJpeg, FillBytesGoWhereTheirSegmentGoes) {
    std::string input = kSoi + "\xFF\xFF"s + kComment + "\xFF"s + kDqt + kScan;
    EXPECT_EQ(scrub_every_split(input), kSoi + "\xFF"s + kDqt + kScan);
}

TEST(MediaScrubJpeg, AfterAnMpfIndexSegmentsAreBlankedInPlace) {
    std::string mpf = segment(0xE2, "MPF\0"s + data_bytes(40, 5));
    std::string input = kSoi + segment(0xE1, exif_body(6)) + mpf + kComment + kDqt + kScan;
    std::string blank_comment =
        "\xFF\xFE"s + kComment.substr(2, 2) + std::string(kComment.size() - 4, '\0');
    EXPECT_EQ(scrub_every_split(input),
              kSoi + minimal_orientation_app1(6) + mpf + blank_comment + kDqt + kScan);
}

TEST(MediaScrubJpeg, TruncatedOrBrokenStructurePassesUnchanged) {
    std::string whole = kSoi + kApp0 + segment(0xE1, exif_body(6)) + kDqt + kScan;
    // Cut inside the Exif segment: nothing after it tells it is a JPEG segment, so it stays.
    std::string cut = whole.substr(0, kSoi.size() + kApp0.size() + 30);
    EXPECT_EQ(scrub_every_split(cut), cut);
    // A marker that is not one: the rest passes, the comment in it included.
    std::string broken = kSoi + kApp0 + "\x12\x34"s + kComment + kScan;
    EXPECT_EQ(scrub_every_split(broken), broken);
    // A length under 2.
    std::string short_length = kSoi + "\xFF\xE1\x00\x01"s + kComment;
    EXPECT_EQ(scrub(short_length), short_length);
}

// ---- PNG ---------------------------------------------------------------------------------

std::string chunk(const std::string& type, const std::string& data) {
    return be32(data.size()) + type + data + "CRC!";
}

const std::string kPngSignature = "\x89PNG\r\n\x1A\n"s;
const std::string kIhdr = chunk("IHDR", "\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0"s);
const std::string kIdat = chunk("IDAT", data_bytes(500, 6));
const std::string kIend = chunk("IEND", "");

TEST(MediaScrubPng, RemovesExifAndTextChunks) {
    std::string input = kPngSignature + kIhdr + chunk("eXIf", exif_body(6))
                        + chunk("tEXt",
                                "Comment\0"
                                "1 Main Street"s)
                        + chunk("zTXt", "Raw profile\0\0xyz"s) + kIdat
                        + chunk("iTXt", "XML:com.adobe.xmp\0\0\0\0\0<x/>"s) + kIend;
    EXPECT_EQ(scrub_every_split(input), kPngSignature + kIhdr + kIdat + kIend);
}

TEST(MediaScrubPng, AFileWithoutMetadataOrWithJunkIsUnchanged) {
    std::string plain = kPngSignature + kIhdr + chunk("iCCP", data_bytes(50, 7)) + kIdat + kIend;
    EXPECT_EQ(scrub_every_split(plain), plain);
    std::string after_end = plain + chunk("tEXt", "after the end");
    EXPECT_EQ(scrub(after_end), after_end);
    std::string bad_type = kPngSignature + kIhdr + chunk("t3Xt", "x") + chunk("tEXt", "y");
    EXPECT_EQ(scrub_every_split(bad_type), bad_type);
    std::string huge = kPngSignature + "\x80\0\0\0tEXt"s + data_bytes(40, 8);
    EXPECT_EQ(scrub(huge), huge);
}

// ---- WebP --------------------------------------------------------------------------------

std::string riff_chunk(const std::string& fourcc, const std::string& data) {
    return fourcc + le32(data.size()) + data + (data.size() % 2 ? "\0"s : ""s);
}

std::string webp(const std::string& chunks) {
    return "RIFF" + le32(4 + chunks.size()) + "WEBP" + chunks;
}

TEST(MediaScrubWebp, ExifAndXmpBecomeJunkOfTheSameSizeAndTheFlagsSaySo) {
    std::string vp8x_with =
        riff_chunk("VP8X", "\x1C\0\0\0\x0F\0\0\x0F\0\0"s);  // ICC, alpha, EXIF, XMP
    std::string vp8x_without = riff_chunk("VP8X", "\x10\0\0\0\x0F\0\0\x0F\0\0"s);
    std::string image = riff_chunk("VP8 ", data_bytes(301, 9));
    std::string exif = exif_body(6);
    std::string xmp = "<x:xmpmeta>GPS</x:xmpmeta>";  // odd size: a padding byte
    std::string input = webp(vp8x_with + riff_chunk("ICCP", data_bytes(20, 10)) + image
                             + riff_chunk("EXIF", exif) + riff_chunk("XMP ", xmp));
    std::string expected = webp(vp8x_without + riff_chunk("ICCP", data_bytes(20, 10)) + image
                                + riff_chunk("JUNK", std::string(exif.size(), '\0'))
                                + riff_chunk("JUNK", std::string(xmp.size(), '\0')));
    EXPECT_EQ(scrub_every_split(input), expected);
}

TEST(MediaScrubWebp, ASimpleFileIsUnchanged) {
    std::string input = webp(riff_chunk("VP8L", data_bytes(123, 11)));
    EXPECT_EQ(scrub_every_split(input), input);
}

// ---- ISO-BMFF ----------------------------------------------------------------------------

std::string box(const std::string& type, const std::string& payload) {
    return be32(8 + payload.size()) + type + payload;
}

std::string freed(const std::string& box) {
    return box.substr(0, 4) + "free" + std::string(box.size() - 8, '\0');
}

const std::string kFtypMp4 = box("ftyp", "isom\0\0\x02\0isomiso2mp41"s);
const std::string kMvhd = box("mvhd", data_bytes(100, 12));
const std::string kUdta = box("udta", box("\xA9xyz", "\0\x11\x15\xC7+48.8566+002.3522/"s)
                                          + box("loci", "\0\0\0\0\x15\xC7Home\0"s));
const std::string kAppleMeta =
    box("meta",
        box("hdlr", "\0\0\0\0\0\0\0\0mdta"s + std::string(13, '\0'))
            + box("keys", "\0\0\0\0\0\0\0\x01\0\0\0\x2Cmdtacom.apple.quicktime.location.ISO6709"s)
            + box("ilst", box("\0\0\0\x01"s, box("data", "\0\0\0\x01\0\0\0\0+48.85+002.35/"s))));
const std::string kTkhd = box("tkhd", data_bytes(84, 13));
const std::string kMdia =
    box("mdia", box("mdhd", data_bytes(24, 14)) + box("minf", data_bytes(60, 15)));
const std::string kMdat = box("mdat", data_bytes(700, 16));

TEST(MediaScrubBmff, UserDataAndMetaBecomeFreeBoxesOfTheSameSize) {
    std::string track_udta = box("udta", box("\xA9mak", "\0\x05\0\0Phone"s));
    std::string trak = box("trak", kTkhd + track_udta + kMdia);
    std::string moov = box("moov", kMvhd + kUdta + kAppleMeta + trak);
    std::string scrubbed_moov = box("moov", kMvhd + freed(kUdta) + freed(kAppleMeta)
                                                + box("trak", kTkhd + freed(track_udta) + kMdia));
    // moov before or after mdat.
    EXPECT_EQ(scrub_every_split(kFtypMp4 + moov + kMdat), kFtypMp4 + scrubbed_moov + kMdat);
    EXPECT_EQ(scrub_every_split(kFtypMp4 + kMdat + moov), kFtypMp4 + kMdat + scrubbed_moov);
}

TEST(MediaScrubBmff, LargeSizesAndAnMdatToTheEnd) {
    std::string large_mdat = "\0\0\0\x01mdat"s + "\0\0\0\0\0\0\x01\x00"s + data_bytes(240, 17);
    std::string moov = box("moov", kMvhd + kUdta);
    std::string open_mdat = "\0\0\0\0mdat"s + data_bytes(90, 18) + box("udta", "not a box here");
    EXPECT_EQ(scrub_every_split(kFtypMp4 + large_mdat + moov + open_mdat),
              kFtypMp4 + large_mdat + box("moov", kMvhd + freed(kUdta)) + open_mdat);
}

TEST(MediaScrubBmff, TheTopLevelXmpUuidBoxBecomesFree) {
    std::string xmp_uuid = "\xBE\x7A\xCF\xCB\x97\xA9\x42\xE8\x9C\x71\x99\x94\x91\xE3\xAF\xAC"s;
    std::string xmp = box("uuid", xmp_uuid + "<x:xmpmeta>GPS</x:xmpmeta>");
    std::string other = box("uuid", data_bytes(16, 26) + "PROF");
    std::string input = kFtypMp4 + box("moov", kMvhd) + xmp + other + kMdat;
    EXPECT_EQ(scrub_every_split(input), kFtypMp4 + box("moov", kMvhd) + freed(xmp) + other + kMdat);
}

TEST(MediaScrubBmff, UdtaOutsideMoovAndAFileWithoutMetadataAreUnchanged) {
    std::string input = kFtypMp4 + box("udta", "top-level")
                        + box("moov", kMvhd + box("trak", kTkhd + kMdia)) + kMdat;
    EXPECT_EQ(scrub_every_split(input), input);
}

TEST(MediaScrubBmff, ABoxPastItsParentStopsTheFilter) {
    std::string bad_trak = be32(8 + 500) + "trak" + kTkhd;  // says 500, holds less
    std::string input =
        kFtypMp4 + be32(8 + bad_trak.size() + kUdta.size()) + "moov" + bad_trak + kUdta;
    EXPECT_EQ(scrub_every_split(input), input);
    std::string tiny = kFtypMp4 + "\0\0\0\x04moov"s + kUdta;
    EXPECT_EQ(scrub(tiny), tiny);
}

// A HEIF still: iinf names item 1 Exif, item 2 the image and item 3 XMP; iloc puts 1 and 2 in
// mdat, 3 in idat.
std::string heif(std::uint32_t exif_offset, std::uint32_t exif_length, std::uint32_t image_offset,
                 std::uint32_t image_length, const std::string& idat) {
    std::string infe_exif = box("infe", "\x02\0\0\0\0\x01\0\0Exif\0"s);
    std::string infe_image = box("infe", "\x02\0\0\0\0\x02\0\0hvc1\0"s);
    std::string infe_xmp = box("infe", "\x02\0\0\0\0\x03\0\0mime\0application/rdf+xml\0"s);
    std::string iinf = box("iinf", "\0\0\0\0\0\x03"s + infe_exif + infe_image + infe_xmp);
    std::string iloc =
        box("iloc", "\x01\0\0\0\x44\0\0\x03"s +  // v1, 4-byte offsets and lengths
                        "\0\x01\0\0\0\0\0\x01"s + be32(exif_offset) + be32(exif_length)
                        + "\0\x02\0\0\0\0\0\x01"s + be32(image_offset) + be32(image_length)
                        + "\0\x03\0\x01\0\0\0\x01"s + be32(2) + be32(idat.size() - 2));
    std::string hdlr = box("hdlr", "\0\0\0\0\0\0\0\0pict"s + std::string(13, '\0'));
    return box("meta", "\0\0\0\0"s + hdlr + iinf + iloc + box("idat", idat));
}

TEST(MediaScrubBmff, HeifExifAndXmpItemsAreZeroedInPlace) {
    std::string ftyp = box("ftyp", "heic\0\0\0\0mif1heic"s);
    std::string exif = "\0\0\0\x06"s + exif_body(6);
    std::string image = data_bytes(400, 19);
    std::string idat = "ab<x:xmpmeta>GPS</x:xmpmeta>";
    std::size_t meta_size = heif(0, 0, 0, 0, idat).size();
    std::uint32_t mdat_data = ftyp.size() + meta_size + 8;
    std::string meta = heif(mdat_data, exif.size(), mdat_data + exif.size(), image.size(), idat);
    std::string input = ftyp + meta + box("mdat", exif + image);
    std::string clean_meta = meta;
    clean_meta.replace(meta.size() - idat.size() + 2, idat.size() - 2, idat.size() - 2, '\0');
    EXPECT_EQ(scrub_every_split(input),
              ftyp + clean_meta + box("mdat", std::string(exif.size(), '\0') + image));
}

// ---- GIF ---------------------------------------------------------------------------------

std::string sub_blocks(const std::string& data) {
    std::string out;
    for (std::size_t pos = 0; pos < data.size(); pos += 255) {
        std::string piece = data.substr(pos, 255);
        out += static_cast<char>(piece.size()) + piece;
    }
    return out + "\0"s;
}

// XMP as Adobe writes it into a GIF: raw, then a "magic trailer" that makes a sub-block reader
// hop to the terminator whatever byte it lands on.
std::string gif_xmp(const std::string& xmp) {
    std::string trailer = "\x01"s;
    for (int b = 0xFF; b >= 0; --b) trailer += static_cast<char>(b);
    return "\x21\xFF\x0BXMP DataXMP"s + xmp + trailer + "\0"s;
}

TEST(MediaScrubGif, RemovesCommentsAndXmpKeepingEverythingElse) {
    std::string screen = "GIF89a\x10\x00\x10\x00\x81\x00\x00"s + data_bytes(12, 23);  // 4 colors
    std::string loop = "\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00"s;
    std::string control = "\x21\xF9\x04\x04\x0A\x00\x00\x00"s;
    std::string image = "\x2C\0\0\0\0\x10\0\x10\0\x80"s + data_bytes(6, 24) + "\x02"s
                        + sub_blocks(data_bytes(600, 25));
    std::string comment = "\x21\xFE"s + sub_blocks("1 Main Street");
    std::string odd_application =
        "\x21\xFF\x03"
        "abc\x00"s;  // no 11-byte identifier: kept
    std::string input = screen + comment + loop + gif_xmp("<x:xmpmeta>GPS</x:xmpmeta>") + control
                        + odd_application + image + comment + "\x3B"s + "after";
    EXPECT_EQ(scrub_every_split(input),
              screen + loop + control + odd_application + image + "\x3B"s + "after");
}

TEST(MediaScrubGif, AnUnknownBlockStopsTheFilter) {
    std::string input = "GIF87a\x10\x00\x10\x00\x00\x00\x00"s + "\x99"s + "\x21\xFE\x01x\0"s;
    EXPECT_EQ(scrub_every_split(input), input);
}

// ---- any input -----------------------------------------------------------------------------

TEST(MediaScrubAnyInput, TheSuitesPseudoMediaStayByteExact) {
    std::string filler = data_bytes(3000, 20);
    for (
        const std::string& head :
        {"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"s,
         "\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"s,
         "GIF89a\x10\x00\x10\x00\x80\x00\x00"s,
         "\0\0\0\x20"
         "ftypisom\0\0\x02\0isomiso2avc1mp41"s,
         "\0\0\0\x14"
         "ftypqt  \0\0\0\0qt  \0\0\0\x08wide"s,
         "\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\x82\x84webm"s, ""s, "\xFF"s}) {
        EXPECT_EQ(scrub(head + filler), head + filler);
        EXPECT_EQ(scrub(head), head);
    }
}

TEST(MediaScrubAnyInput, RandomBytesAfterEachSignatureNeverGrowAndOnlyLoseParsedMetadata) {
    std::mt19937 random(21);
    for (const std::string& head :
         {kSoi, kPngSignature, "RIFF\0\0\0\0WEBP"s, kFtypMp4, "GIF89a\x01\0\x01\0\x80\0\0"s}) {
        for (int round = 0; round < 2000; ++round) {
            std::string input = head;
            std::size_t n = random() % 200;
            for (std::size_t i = 0; i < n; ++i) input += static_cast<char>(random());
            std::string out = scrub(input, {random() % (input.size() + 1)});
            ASSERT_LE(out.size(), input.size());
            ASSERT_EQ(out.substr(0, head.size()), head);
        }
    }
}

TEST(MediaScrubAnyInput, KeepPassesEveryByte) {
    std::string input = kSoi + segment(0xE1, exif_body(6)) + kComment + kDqt + kScan;
    std::string out;
    MediaScrubber scrubber(
        [&](std::string_view bytes) {
            out.append(bytes);
            return true;
        },
        MediaScrubber::Policy::keep);
    EXPECT_TRUE(scrubber.feed(std::string_view(input).substr(0, 9)));
    EXPECT_TRUE(scrubber.feed(std::string_view(input).substr(9)));
    EXPECT_TRUE(scrubber.finish());
    EXPECT_EQ(out, input);
    EXPECT_EQ(scrubber.removed(), 0u);
}

TEST(MediaScrubAnyInput, AWriterThatFailsStopsTheFilter) {
    int calls = 0;
    MediaScrubber scrubber([&](std::string_view) { return ++calls > 1 ? false : true; });
    std::string input = kSoi + kApp0 + kDqt + kScan;
    EXPECT_FALSE(scrubber.feed(input));
    EXPECT_EQ(calls, 2);
    EXPECT_FALSE(scrubber.feed(input));
    EXPECT_EQ(calls, 2);
}

// Not a speed test (nothing is asserted): prints, for the report, how long a 64 MiB video and a
// 4 MiB photo take to pass in 16 KiB reads into a buffer, through the filter and without it.
// MEDIA_SCRUB_BENCH=1 runs it.
double seconds_to_copy(const std::string& file, bool filtered) {
    std::string sink(64 << 10, '\0');
    std::size_t at = 0;
    auto write = [&](std::string_view bytes) {
        for (std::size_t n; !bytes.empty(); bytes.remove_prefix(n), at = (at + n) % sink.size()) {
            n = std::min(bytes.size(), sink.size() - at);
            bytes.copy(sink.data() + at, n);
        }
        return true;
    };
    auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < 5; ++round) {
        MediaScrubber scrubber(write);
        for (std::size_t pos = 0; pos < file.size(); pos += 16384) {
            std::string_view read = std::string_view(file).substr(pos, 16384);
            filtered ? scrubber.feed(read) : write(read);
        }
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 5;
}

TEST(MediaScrubAnyInput, Throughput) {
    if (!std::getenv("MEDIA_SCRUB_BENCH")) GTEST_SKIP();
    std::string video =
        kFtypMp4 + box("moov", kMvhd + kUdta) + box("mdat", data_bytes(64 << 20, 22));
    std::string photo = kSoi + kApp0 + segment(0xE1, exif_body(6) + std::string(30000, 'x')) + kDqt
                        + kSof + segment(0xDA, "\x01\x01\x00\x00\x3F\x00"s)
                        + data_bytes(4 << 20, 27);
    for (const auto& [name, file] : {std::pair{"video", &video}, std::pair{"photo", &photo}}) {
        double plain = seconds_to_copy(*file, false), filtered = seconds_to_copy(*file, true);
        std::printf("media_scrub %s: %.0f MB/s filtered, %.0f MB/s copied alone\n", name,
                    file->size() / filtered / 1e6, file->size() / plain / 1e6);
    }
}

}  // namespace
}  // namespace chatterd

namespace chatterd {
namespace {

TEST(ScrubEffect, SaysWhetherTheStripPolicyMovesBytes) {
    for (const char* extension : {"jpeg", "png", "gif"})
        EXPECT_EQ(scrub_effect(extension), ScrubEffect::shrinks) << extension;
    for (const char* extension : {"mp4", "mov", "3gp", "heic", "avif", "webp"})
        EXPECT_EQ(scrub_effect(extension), ScrubEffect::same_size) << extension;
    for (const char* extension : {"webm", "mkv"})
        EXPECT_EQ(scrub_effect(extension), ScrubEffect::none) << extension;
}

}  // namespace
}  // namespace chatterd
