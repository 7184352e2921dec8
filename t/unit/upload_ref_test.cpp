#include "core/upload_ref.h"

#include <gtest/gtest.h>

namespace chatterd {
namespace {

constexpr std::string_view kId = "0123456789abcdef0123456789abcdef";

TEST(UploadId, IsThirtyTwoLowercaseHexDigits) {
    EXPECT_TRUE(is_upload_id(kId));
    EXPECT_FALSE(is_upload_id("0123456789ABCDEF0123456789abcdef"));
    EXPECT_FALSE(is_upload_id("0123456789abcdef0123456789abcde"));
    EXPECT_FALSE(is_upload_id("0123456789abcdef0123456789abcdef0"));
    EXPECT_FALSE(is_upload_id("0123456789abcdef0123456789abcdeg"));
    EXPECT_FALSE(is_upload_id(""));
}

TEST(UploadId, IsTheLastPathSegmentOfTheUrl) {
    EXPECT_EQ(upload_id_from_url("http://host:8080/uploads/0123456789abcdef0123456789abcdef"), kId);
    EXPECT_EQ(upload_id_from_url("/uploads/0123456789abcdef0123456789abcdef"), kId);
    EXPECT_EQ(upload_id_from_url("/a/b/0123456789abcdef0123456789abcdef?x=1#f"), kId);
    EXPECT_EQ(upload_id_from_url("0123456789abcdef0123456789abcdef"), kId);
}

TEST(UploadId, RefusesAnythingElse) {
    EXPECT_EQ(upload_id_from_url("/uploads/0123456789abcdef0123456789abcdef/"), std::nullopt);
    EXPECT_EQ(upload_id_from_url("/uploads/../0123456789abcdef0123456789abcdef.info"),
              std::nullopt);
    EXPECT_EQ(upload_id_from_url("/uploads/"), std::nullopt);
    EXPECT_EQ(upload_id_from_url(""), std::nullopt);
    EXPECT_EQ(upload_id_from_url("/uploads/%30123456789abcdef0123456789abcdef"), std::nullopt);
}

TEST(UploadInfo, GivesTheUploadLength) {
    EXPECT_EQ(upload_length_from_info("Upload-Length: 9437184\n"), 9437184u);
    EXPECT_EQ(upload_length_from_info("created: 1\nupload-length:12\r\nx: y\n"), 12u);
    EXPECT_EQ(upload_length_from_info("Upload-Length: 0"), 0u);
}

TEST(UploadInfo, RefusesAMissingOrMalformedLength) {
    EXPECT_EQ(upload_length_from_info(""), std::nullopt);
    EXPECT_EQ(upload_length_from_info("Upload-Offset: 3\n"), std::nullopt);
    EXPECT_EQ(upload_length_from_info("Upload-Length: -1\n"), std::nullopt);
    EXPECT_EQ(upload_length_from_info("Upload-Length: 12x\n"), std::nullopt);
    EXPECT_EQ(upload_length_from_info("Upload-Length: 99999999999999999999\n"), std::nullopt);
}

}  // namespace
}  // namespace chatterd
