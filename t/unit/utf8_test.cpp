#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace chatterd {
namespace {

TEST(Utf8, WellFormedTextHasNoInvalidByte) {
    for (const char* text :
         {"", "ascii", "caf\xC3\xA9", "\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3", "\xF0\x9F\x98\x80",
          "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"}) {
        EXPECT_EQ(first_invalid_utf8(text), std::nullopt) << text;
    }
    EXPECT_EQ(first_invalid_utf8(std::string("a\0b", 3)),
              std::nullopt);  // NUL is UTF-8; refused elsewhere
}

TEST(Utf8, TheFirstInvalidByteIsFound) {
    EXPECT_EQ(first_invalid_utf8("bad\xFF\xFE"), 3u);
    EXPECT_EQ(first_invalid_utf8("caf\xE9"), 3u);               // Latin-1
    EXPECT_EQ(first_invalid_utf8("ab\xC0\x80"), 2u);            // overlong NUL
    EXPECT_EQ(first_invalid_utf8("\xE0\x80\x80"), 0u);          // overlong
    EXPECT_EQ(first_invalid_utf8("x\xED\xA0\x80"), 1u);         // encoded surrogate
    EXPECT_EQ(first_invalid_utf8("\xF4\x90\x80\x80"), 0u);      // past U+10FFFF
    EXPECT_EQ(first_invalid_utf8("ok\xE3\x82"), 2u);            // cut short
    EXPECT_EQ(first_invalid_utf8("\x80"), 0u);                  // a lone continuation byte
    EXPECT_EQ(first_invalid_utf8("\xE3\x82\xB8\xE3\x41"), 3u);  // a sequence broken by ASCII
}

TEST(Utf8, LengthCountsCharactersNotBytes) {
    EXPECT_EQ(utf8_length(""), 0u);
    EXPECT_EQ(utf8_length("abc"), 3u);
    EXPECT_EQ(utf8_length("caf\xC3\xA9"), 4u);
    EXPECT_EQ(utf8_length("\xE3\x82\xB8\xF0\x9F\x98\x80"), 2u);
    std::string ji;
    for (int i = 0; i < 255; i++) ji += "\xE3\x82\xB8";
    EXPECT_EQ(utf8_length(ji), 255u);
}

}  // namespace
}  // namespace chatterd
