#include "core/pg_array.h"

#include <gtest/gtest.h>

namespace chatterd {
namespace {

std::string array_of(std::initializer_list<const char*> values) {
    std::string out = "{";
    for (const char* v : values) {
        if (out.size() > 1) out += ',';
        append_pg_array_element(out, v);
    }
    return out + "}";
}

TEST(PgArray, QuotesEveryElementSoCommasBracesAndSpacesStayText) {
    EXPECT_EQ(array_of({"a,b", "{x}", " padded "}), R"({"a,b","{x}"," padded "})");
}

TEST(PgArray, EscapesQuotesAndBackslashes) {
    EXPECT_EQ(array_of({R"(say "hi")", R"(C:\dir\)", R"(\")"}),
              R"({"say \"hi\"","C:\\dir\\","\\\""})");
}

TEST(PgArray, NullPointerIsTheNullElementAndTheWordNullIsText) {
    EXPECT_EQ(array_of({nullptr, "NULL", ""}), R"({NULL,"NULL",""})");
}

TEST(PgArray, MultibyteTextIsCopiedAsIs) {
    EXPECT_EQ(array_of({"ジョン 😀"}), "{\"ジョン 😀\"}");
}

}  // namespace
}  // namespace chatterd
