// PostgreSQL timestamp text -> the API's ISO-8601 form (what Python's datetime.isoformat() writes).
#pragma once

#include <cstddef>
#include <string_view>

namespace chatterd {

constexpr std::size_t kIsoTimestampMax = 64;

// Converts PostgreSQL's text output of a `timestamp` (DateStyle ISO: "2025-01-29 19:03:12.12", 0-6 fraction digits)
// to Python's isoformat(): "2025-01-29T19:03:12.120000" (exactly six fraction digits when the microseconds are
// non-zero, no fraction when they are zero).
// A `timestamptz` zone suffix ("+00", "-03:30", "+05:53:28") is accepted too and written as Python writes the offset
// of an aware datetime ("+00:00", "-03:30", "+05:53:28"), so a course database whose column is timestamptz still
// yields what the reference would send for it.
// Text of any other form ("infinity", BC dates, years beyond 9999, another DateStyle) is copied unchanged: it has no
// isoformat() equivalent, and showing it as the database gave it beats inventing a date.
// Writes into out (capacity kIsoTimestampMax, not NUL-terminated; unchanged copies are truncated to that capacity)
// and returns the number of bytes written.
std::size_t iso_timestamp(std::string_view pg_text, char* out);

}  // namespace chatterd
