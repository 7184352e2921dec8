#include "core/one_line.h"

#include <gtest/gtest.h>

#include <string>

namespace chatterd {
namespace {

std::string fold(std::string_view text) {
    return std::string(OneLine(text).view());
}

TEST(OneLine, LinesBecomeClausesAndIndentedLinesContinue) {
    EXPECT_EQ(fold("connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such file\n"
                   "\tIs the server running locally?\n"),
              "connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such file Is the "
              "server running locally?");
    // libpq 15 with two hosts: one line per attempt.
    EXPECT_EQ(fold("session is read-only\nconnection to server at \"127.0.0.1\", port 5 failed: "
                   "Connection refused\n\tIs the server running?\n"),
              "session is read-only; connection to server at \"127.0.0.1\", port 5 failed: "
              "Connection refused Is the server running?");
    EXPECT_EQ(fold("ERROR:  relation \"x\" does not exist\nLINE 1: SELECT * FROM x\n"
                   "                      ^\n"),
              "ERROR:  relation \"x\" does not exist; LINE 1: SELECT * FROM x ^");
}

TEST(OneLine, BlankEdgesAndCarriageReturns) {
    EXPECT_EQ(fold(""), "");
    EXPECT_EQ(fold("\n\n"), "");
    EXPECT_EQ(fold("\nfirst\r\nsecond\r\n"), "first; second");
    EXPECT_EQ(fold("spaces  inside stay"), "spaces  inside stay");
}

TEST(OneLine, LongTextIsCut) {
    std::string text(5000, 'a');
    EXPECT_LT(OneLine(text).view().size(), 1024u);
    EXPECT_GT(OneLine(text).view().size(), 1000u);
}

}  // namespace
}  // namespace chatterd
