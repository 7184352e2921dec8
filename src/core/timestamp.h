// PostgreSQL's binary timestamp -> the API's ISO-8601 form (what Python's datetime.isoformat()
// writes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace chatterd {

constexpr std::size_t kIsoTimestampMax = 40;

// Converts timestamps, one after the other, remembering the date of the last day it wrote: rows
// come sorted by time, so most share their day with the row before, and computing a calendar date
// is the costly part.
class IsoTimestamps {
public:
    // Converts a `timestamp` as PostgreSQL sends it in binary (microseconds since 2000-01-01
    // 00:00:00) to Python's isoformat(): "2025-01-29T19:03:12.120000" (exactly six fraction digits
    // when the microseconds are non-zero, no fraction when they are zero). Values isoformat() has
    // no form for are written as PostgreSQL's text output writes them (DateStyle ISO), rather than
    // inventing a date: "infinity", "-infinity", years past 9999 ("10000-01-01 00:00:00") and
    // BC dates ("0044-03-15 12:00:00 BC"), with a fraction of up to six digits, trailing zeros
    // dropped.
    // Writes into out (capacity kIsoTimestampMax, not NUL-terminated) and returns the number of
    // bytes written.
    std::size_t write(std::int64_t pg_micros, char* out);

private:
    bool has_date_ = false;
    std::int64_t day_ = 0;  // days since 2000-01-01 of date_, a day isoformat() can write
    char date_[10] = {};    // "YYYY-MM-DD"
};

}  // namespace chatterd
