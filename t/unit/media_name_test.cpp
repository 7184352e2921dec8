#include "core/media_name.h"

#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;  // "..."s keeps embedded NULs

TEST(MediaNamePrefix, KeepsPortableFileNameCharacters) {
    EXPECT_EQ(sanitized_username_prefix("alice"), "alice");
    EXPECT_EQ(sanitized_username_prefix("Alice_B.Smith-2"), "Alice_B.Smith-2");
    EXPECT_EQ(sanitized_username_prefix("John Smith"), "John_Smith");
    EXPECT_EQ(sanitized_username_prefix(" lead"), "_lead");
    EXPECT_EQ(sanitized_username_prefix("a..b"), "a..b");
}

TEST(MediaNamePrefix, DropsEverythingElse) {
    EXPECT_EQ(sanitized_username_prefix("\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3"), "");  // "ジョン"
    EXPECT_EQ(sanitized_username_prefix("\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3 john"), "_john");
    EXPECT_EQ(sanitized_username_prefix("../../etc/passwd"), "etcpasswd");
    EXPECT_EQ(sanitized_username_prefix("a/b\\c:d*e?f\"g<h>i|j"), "abcdefghij");
    EXPECT_EQ(sanitized_username_prefix("nul\0byte\n\t"s), "nulbyte");
    EXPECT_EQ(sanitized_username_prefix(""), "");
}

TEST(MediaNamePrefix, NoLeadingDotOrDash) {
    EXPECT_EQ(sanitized_username_prefix(".hidden"), "hidden");
    EXPECT_EQ(sanitized_username_prefix(".."), "");
    EXPECT_EQ(sanitized_username_prefix("--rf"), "rf");
    EXPECT_EQ(sanitized_username_prefix("-./-.x.y"), "x.y");
    EXPECT_EQ(sanitized_username_prefix("/.hidden"), "hidden");
}

TEST(MediaNamePrefix, AtMost64Characters) {
    EXPECT_EQ(sanitized_username_prefix(std::string(255, 'a')), std::string(64, 'a'));
    EXPECT_EQ(sanitized_username_prefix(std::string(200, '.') + std::string(100, 'b')),
              std::string(64, 'b'));
    EXPECT_EQ(sanitized_username_prefix(std::string(255, '.')), "");
}

bool all_of_chars(std::string_view text, std::string_view allowed) {
    return text.find_first_not_of(allowed) == std::string_view::npos;
}

// "<prefix>-<32 lowercase hex>.<extension>" or "<32 lowercase hex>.<extension>", with a prefix as
// sanitized_username_prefix makes it.
void expect_safe_name(std::string_view name) {
    constexpr std::string_view kAlnum =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
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

TEST(MediaNameRandom, PrefixRandomHexAndExtension) {
    std::string name = random_media_name("alice", "jpeg");
    expect_safe_name(name);
    EXPECT_EQ(name.rfind("alice-", 0), 0u) << name;
    EXPECT_EQ(name.size(), std::string("alice-").size() + 32 + std::string(".jpeg").size());
    EXPECT_EQ(name.substr(name.size() - 5), ".jpeg");
}

TEST(MediaNameRandom, UsernamesThatSanitiseToNothing) {
    for (std::string_view username : {"\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3", "", "..", "///"}) {
        std::string name = random_media_name(username, "mp4");
        expect_safe_name(name);
        EXPECT_EQ(name.size(), 32 + std::string(".mp4").size()) << name;
    }
}

TEST(MediaNameRandom, HostileUsernames) {
    for (std::string_view username : {"../../etc/passwd", ".hidden", "-rf", "a/b"}) {
        expect_safe_name(random_media_name(username, "png"));
    }
    std::string name = random_media_name(std::string(255, 'x'), "webm");
    expect_safe_name(name);
    EXPECT_EQ(name.size(), 64 + 1 + 32 + 1 + 4u);
}

TEST(MediaNameRandom, ExtensionMustBeAlphanumeric) {
    for (std::string_view extension : {"", ".jpeg", "../x", "jp/g", "a b"}) {
        EXPECT_THROW(random_media_name("alice", extension), std::invalid_argument) << extension;
    }
}

TEST(MediaNameRandom, TenThousandNamesAreDistinct) {
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
    EXPECT_FALSE(is_media_name("0123456789abcdef0123456789abcdef"));  // no extension
    EXPECT_FALSE(is_media_name("0123456789abcdef0123456789abcdef."));
    EXPECT_FALSE(is_media_name("0123456789ABCDEF0123456789abcdef.jpeg"));       // upper-case hex
    EXPECT_FALSE(is_media_name("alice0123456789abcdef0123456789abcdef.jpeg"));  // no dash
    EXPECT_FALSE(is_media_name("-0123456789abcdef0123456789abcdef.jpeg"));      // empty prefix
    EXPECT_FALSE(is_media_name("a b-0123456789abcdef0123456789abcdef.jpeg"));   // not sanitized
    EXPECT_FALSE(is_media_name(".0123456789abcdef0123456789abcdef.jpeg"));  // hidden, not a temp
    EXPECT_FALSE(is_media_name("x-0123456789abcdef0123456789abcdef.jp/eg"));
    EXPECT_TRUE(is_media_name("x-0123456789abcdef0123456789abcdef.jpeg"));
}

}  // namespace
}  // namespace chatterd
