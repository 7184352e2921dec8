#include "core/media_name.h"
#include "core/tus_checksum.h"
#include "core/tus_headers.h"
#include "core/upload_info.h"

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;

TEST(UploadId, IsThirtyTwoLowercaseHexDigits) {
    EXPECT_TRUE(is_upload_id("0123456789abcdef0123456789abcdef"));
    EXPECT_FALSE(is_upload_id("0123456789ABCDEF0123456789abcdef"));
    EXPECT_FALSE(is_upload_id("0123456789abcdef0123456789abcde"));
    EXPECT_FALSE(is_upload_id("0123456789abcdef0123456789abcdef0"));
    EXPECT_FALSE(is_upload_id("0123456789abcdef0123456789abcdeg"));
    EXPECT_FALSE(is_upload_id(""));
    EXPECT_TRUE(is_upload_id(random_hex()));
}

TEST(UploadId, IsTheLastSegmentOfThePath) {
    const std::string id = "00112233445566778899aabbccddeeff";
    EXPECT_EQ(upload_id_of_path("/files/" + id), id);
    EXPECT_EQ(upload_id_of_path("/a/b/" + id), id);
    EXPECT_EQ(upload_id_of_path("/files/" + id + "/"), std::nullopt);
    EXPECT_EQ(upload_id_of_path("/files/"), std::nullopt);
    EXPECT_EQ(upload_id_of_path("/files/" + id + ".info"), std::nullopt);
    EXPECT_EQ(upload_id_of_path("/files/../" + id.substr(1)), std::nullopt);
}

TEST(TusSize, DigitsOnlyWithinInt64) {
    EXPECT_EQ(parse_tus_size("0"), 0);
    EXPECT_EQ(parse_tus_size("1048576"), 1048576);
    EXPECT_EQ(parse_tus_size("9223372036854775807"), INT64_MAX);
    EXPECT_EQ(parse_tus_size("9223372036854775808"), std::nullopt);
    EXPECT_EQ(parse_tus_size("99999999999999999999"), std::nullopt);
    EXPECT_EQ(parse_tus_size(""), std::nullopt);
    EXPECT_EQ(parse_tus_size("-1"), std::nullopt);
    EXPECT_EQ(parse_tus_size("+1"), std::nullopt);
    EXPECT_EQ(parse_tus_size(" 1"), std::nullopt);
    EXPECT_EQ(parse_tus_size("1e3"), std::nullopt);
}

TEST(Base64, DecodesPaddedText) {
    EXPECT_EQ(decode_base64(""), "");
    EXPECT_EQ(decode_base64("Zg=="), "f");
    EXPECT_EQ(decode_base64("Zm8="), "fo");
    EXPECT_EQ(decode_base64("Zm9v"), "foo");
    EXPECT_EQ(decode_base64("AP8A"), "\0\xff\0"s);
    EXPECT_EQ(decode_base64("Zg"), std::nullopt);
    EXPECT_EQ(decode_base64("Z==="), std::nullopt);
    EXPECT_EQ(decode_base64("Zm9v!A=="), std::nullopt);
    EXPECT_EQ(decode_base64("Zg==Zg=="), std::nullopt);
}

TEST(UploadMetadata, PairsOfKeyAndBase64Value) {
    EXPECT_TRUE(valid_upload_metadata(""));
    EXPECT_TRUE(
        valid_upload_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential"));
    EXPECT_TRUE(valid_upload_metadata("a Zg==, b Zm8="));
    EXPECT_FALSE(valid_upload_metadata("a Zg==,a Zm8="));  // repeated key
    EXPECT_FALSE(valid_upload_metadata("a not-base64"));
    EXPECT_FALSE(valid_upload_metadata("a Zg==,,b"));         // empty key
    EXPECT_FALSE(valid_upload_metadata("k\xc3\xa9 Zg=="));    // not ASCII
    EXPECT_FALSE(valid_upload_metadata("a Zg==\nlength 1"));  // no line break reaches the info
    EXPECT_FALSE(valid_upload_metadata("a " + std::string(kMaxUploadMetadata, 'A')));
}

TEST(UploadChecksum, ParsesAnnouncedAlgorithms) {
    auto sha1 = parse_upload_checksum("sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    ASSERT_TRUE(sha1);
    EXPECT_EQ(sha1->algorithm, "sha1");
    EXPECT_EQ(sha1->digest.size(), 20u);
    EXPECT_TRUE(parse_upload_checksum("md5 XrY7u+Ae7tCTyyK7j1rNww=="));
    EXPECT_TRUE(parse_upload_checksum("sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="));
    EXPECT_FALSE(parse_upload_checksum("crc32 AAAAAA=="));                 // not announced
    EXPECT_FALSE(parse_upload_checksum("sha1 XrY7u+Ae7tCTyyK7j1rNww=="));  // md5's length
    EXPECT_FALSE(parse_upload_checksum("sha1"));
    EXPECT_FALSE(parse_upload_checksum("sha1 !!!!"));
}

TEST(ChecksumHasher, ComparesTheDigestOfWhatWasFed) {
    // sha1("hello world"), md5("hello world"), fed in pieces.
    auto sha1 = parse_upload_checksum("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
    ASSERT_TRUE(sha1);
    ChecksumHasher hasher("sha1");
    hasher.feed("hello ");
    hasher.feed("world");
    EXPECT_TRUE(hasher.matches(sha1->digest));
    auto md5 = parse_upload_checksum("md5 XrY7u+Ae7tCTyyK7j1rNww==");
    ASSERT_TRUE(md5);
    ChecksumHasher other("md5");
    other.feed("hello world!");
    EXPECT_FALSE(other.matches(md5->digest));
}

TEST(UploadInfo, RoundTrips) {
    UploadInfo info{10485760, "filename Zm9v,type dmlkZW8vbXA0"};
    std::string text = format_upload_info(info);
    EXPECT_EQ(text, "tus-upload 1\nlength 10485760\nmetadata filename Zm9v,type dmlkZW8vbXA0\n");
    auto back = parse_upload_info(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->length, info.length);
    EXPECT_EQ(back->metadata, info.metadata);
    auto empty = parse_upload_info(format_upload_info({0, ""}));
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->length, 0);
    EXPECT_EQ(empty->metadata, "");
}

TEST(UploadInfo, RefusesAnythingElse) {
    std::string text = format_upload_info({42, "a Zg=="});
    for (std::size_t cut = 0; cut < text.size(); cut++)
        EXPECT_FALSE(parse_upload_info(text.substr(0, cut))) << cut;
    EXPECT_FALSE(parse_upload_info(text + "x"));
    EXPECT_FALSE(parse_upload_info("tus-upload 2\nlength 42\nmetadata \n"));
    EXPECT_FALSE(parse_upload_info("tus-upload 1\nlength -1\nmetadata \n"));
    EXPECT_FALSE(parse_upload_info("tus-upload 1\nmetadata \nlength 42\n"));
    EXPECT_FALSE(parse_upload_info("tus-upload 1\nlength 42\nmetadata a a\n"));
}

}  // namespace
}  // namespace chatterd
