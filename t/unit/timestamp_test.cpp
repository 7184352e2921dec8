#include "core/timestamp.h"

#include <string>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

std::string iso(std::string_view pg_text)
{
    char out[kIsoTimestampMax];
    std::size_t len = iso_timestamp(pg_text, out);
    return std::string(out, len);
}

// Expected values checked against Python:
//   datetime.fromisoformat("2025-01-29 19:03:12.12").isoformat() == "2025-01-29T19:03:12.120000"
TEST(TimestampIso, FractionBecomesSixDigits)
{
    EXPECT_EQ(iso("2025-01-29 19:03:12.12"), "2025-01-29T19:03:12.120000");
    EXPECT_EQ(iso("2025-01-29 19:03:12.1"), "2025-01-29T19:03:12.100000");
    EXPECT_EQ(iso("2025-01-29 19:03:12.123456"), "2025-01-29T19:03:12.123456");
    EXPECT_EQ(iso("2025-01-29 19:03:12.000001"), "2025-01-29T19:03:12.000001");
    EXPECT_EQ(iso("2025-01-29 19:03:12.05"), "2025-01-29T19:03:12.050000");
}

TEST(TimestampIso, NoOrZeroFractionIsDropped)
{
    EXPECT_EQ(iso("2025-01-29 19:03:12"), "2025-01-29T19:03:12");
    EXPECT_EQ(iso("2025-01-29 19:03:12.000000"), "2025-01-29T19:03:12");
    EXPECT_EQ(iso("2025-01-29 19:03:12.0"), "2025-01-29T19:03:12");
}

TEST(TimestampIso, EdgesOfTheRange)
{
    EXPECT_EQ(iso("0001-01-01 00:00:00"), "0001-01-01T00:00:00");
    EXPECT_EQ(iso("9999-12-31 23:59:59.999999"), "9999-12-31T23:59:59.999999");
}

// Python: datetime(2025,1,29,19,3,12,120000,tzinfo=timezone(timedelta(hours=-3,minutes=-30))).isoformat()
//   == "2025-01-29T19:03:12.120000-03:30"
TEST(TimestampIso, TimestamptzOffsetWrittenAsPythonDoes)
{
    EXPECT_EQ(iso("2025-01-29 19:03:12.12+00"), "2025-01-29T19:03:12.120000+00:00");
    EXPECT_EQ(iso("2025-01-29 19:03:12-03:30"), "2025-01-29T19:03:12-03:30");
    EXPECT_EQ(iso("1890-01-01 00:00:00+05:53:28"), "1890-01-01T00:00:00+05:53:28");
    EXPECT_EQ(iso("2025-01-29 19:03:12+05:30:00"), "2025-01-29T19:03:12+05:30");
}

TEST(TimestampIso, OtherFormsAreCopiedUnchanged)
{
    for (std::string_view text : {
             "infinity",
             "-infinity",
             "0044-03-15 12:00:00 BC",
             "0044-03-15 12:00:00+00 BC",
             "10000-01-01 00:00:00",
             "Wed Jan 29 19:03:12.12 2025",   // DateStyle Postgres
             "2025-01-29T19:03:12",
             "2025-01-29 19:03",
             "2025-01-29 19:03:12.",
             "2025-01-29 19:03:12.1234567",
             "2025-01-29 19:03:12+0",
             "2025-01-29 19:03:12+05:3",
             "2025-01-29 19:03:12+05:30:00:00",
             "2025-01-29 19:03:12Z",
             "2025-0a-29 19:03:12",
             "",
         }) {
        EXPECT_EQ(iso(text), text);
    }
}

TEST(TimestampIso, LongUnknownTextIsTruncatedToCapacity)
{
    std::string long_text(200, 'x');
    std::string result = iso(long_text);
    EXPECT_EQ(result, std::string(kIsoTimestampMax, 'x'));
}

TEST(TimestampIso, ReadsOnlyTheGivenLength)
{
    std::string_view with_more = "2025-01-29 19:03:12.5 and more";
    EXPECT_EQ(iso(with_more.substr(0, 21)), "2025-01-29T19:03:12.500000");
}

}  // namespace
}  // namespace chatterd
