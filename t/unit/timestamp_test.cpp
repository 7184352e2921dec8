#include "core/timestamp.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

std::string iso(std::int64_t pg_micros) {
    char out[kIsoTimestampMax];
    std::size_t len = IsoTimestamps().write(pg_micros, out);  // nothing remembered
    return std::string(out, len);
}

// The microsecond counts are what PostgreSQL 15 sends in binary for the timestamps in the comments,
// computed exactly by PostgreSQL: (t::date - date '2000-01-01') * 86400000000 + microseconds of
// t::time. Expected texts are Python's isoformat(): datetime(2025,1,29,19,3,12,120000).isoformat()
// == "2025-01-29T19:03:12.120000".
TEST(TimestampIso, FractionIsSixDigits) {
    EXPECT_EQ(iso(791492592120000), "2025-01-29T19:03:12.120000");  // 2025-01-29 19:03:12.12
    EXPECT_EQ(iso(791492592123456), "2025-01-29T19:03:12.123456");
    EXPECT_EQ(iso(791492592000001), "2025-01-29T19:03:12.000001");
    EXPECT_EQ(iso(791726402000007), "2025-02-01T12:00:02.000007");
}

TEST(TimestampIso, ZeroFractionIsDropped) {
    EXPECT_EQ(iso(791492592000000), "2025-01-29T19:03:12");
    EXPECT_EQ(iso(0), "2000-01-01T00:00:00");
}

TEST(TimestampIso, TimesBefore2000BelongToTheirOwnDay) {
    EXPECT_EQ(iso(-1), "1999-12-31T23:59:59.999999");
    EXPECT_EQ(iso(-946684800000000), "1970-01-01T00:00:00");
    EXPECT_EQ(iso(-3150576000000000), "1900-03-01T00:00:00");  // 1900 is not a leap year
}

TEST(TimestampIso, LeapDaysAndEdgesOfIsoformatsRange) {
    EXPECT_EQ(iso(5140800000000), "2000-02-29T12:00:00");
    EXPECT_EQ(iso(-63082281600000000), "0001-01-01T00:00:00");
    EXPECT_EQ(iso(252455615999999999), "9999-12-31T23:59:59.999999");
}

// Outside what isoformat() can write, the text PostgreSQL itself would have sent.
TEST(TimestampIso, OtherValuesAreWrittenAsPostgresWritesThem) {
    EXPECT_EQ(iso(std::numeric_limits<std::int64_t>::max()), "infinity");
    EXPECT_EQ(iso(std::numeric_limits<std::int64_t>::min()), "-infinity");
    EXPECT_EQ(iso(252455616000000000), "10000-01-01 00:00:00");
    EXPECT_EQ(iso(-64464465599500000), "0044-03-15 12:00:00.5 BC");
    EXPECT_EQ(iso(-63082281600750000), "0001-12-31 23:59:59.25 BC");
    EXPECT_EQ(iso(-211781865600000000), "4713-11-24 00:00:00 BC");        // PostgreSQL's earliest
    EXPECT_EQ(iso(9223371331199999999), "294276-12-31 23:59:59.999999");  // and latest
}

// PostgreSQL never sends these, but a 64-bit value past its range must still give a date, not
// overflow. (Expected: Python's date.fromordinal, shifted by whole 400-year cycles of 146097 days.)
TEST(TimestampIso, AnyValueGivesADate) {
    EXPECT_EQ(iso(std::numeric_limits<std::int64_t>::max() - 1), "294277-01-09 04:00:54.775806");
    EXPECT_EQ(iso(std::numeric_limits<std::int64_t>::min() + 1), "290279-12-22 19:59:05.224193 BC");
}

// One IsoTimestamps through days that repeat, change, go back, and leave isoformat()'s range: each
// result must be what a fresh IsoTimestamps gives for that value alone (the remembered date never
// leaks into another day).
TEST(TimestampIso, RememberedDateIsOnlyUsedForItsOwnDay) {
    const std::int64_t day = 86400000000;
    const std::int64_t values[] = {
        791492592120000,
        791492592120001,
        791492592120000 + day,
        791492592120000,
        -1,
        0,
        -1,
        252455615999999999,
        252455616000000000,
        252455615999999999,
        -64464465599500000,
        -63082281600000000,
        std::numeric_limits<std::int64_t>::max(),
        -63082281600000000,
        791492592000000 - day,
        791492592000000 - day + 1,
        791492592000000,
    };
    IsoTimestamps timestamps;
    for (std::int64_t value : values) {
        char out[kIsoTimestampMax];
        std::size_t len = timestamps.write(value, out);
        EXPECT_EQ(std::string(out, len), iso(value)) << value;
    }
}

}  // namespace
}  // namespace chatterd
