#include "core/etag.h"

#include <gtest/gtest.h>

namespace chatterd {
namespace {

std::string tag_of(std::initializer_list<std::string_view> parts) {
    EtagHasher hasher;
    for (std::string_view part : parts) hasher.update(part);
    return hasher.finish();
}

TEST(Etag, IsTheBase64urlOfTheFirst128BitsOfTheSha256Quoted) {
    // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...
    EXPECT_EQ(tag_of({"abc"}), "\"ungWv48Bz-pBQUDeXa4iIw\"");
    EXPECT_EQ(tag_of({"abc"}).size(), EtagHasher::kLength);
}

TEST(Etag, DependsOnTheBytesNotOnHowTheyWereCut) {
    EXPECT_EQ(tag_of({"[[\"a\",", "\"b\"]]"}), tag_of({"[[\"a\",\"b\"]]"}));
    EXPECT_NE(tag_of({"[]"}), tag_of({"[ ]"}));
}

}  // namespace
}  // namespace chatterd
