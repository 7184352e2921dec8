#include "core/timestamp.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

namespace chatterd {

namespace {

constexpr std::int64_t kMicrosPerSecond = 1000000;
constexpr std::int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;
constexpr std::int64_t kDaysFrom1970To2000 = 10957;

struct CivilDate {
    std::int64_t year;  // astronomical: 0 is 1 BC
    unsigned month;
    unsigned day;
};

// The proleptic Gregorian date of a day count from 1970-01-01 (H. Hinnant's civil_from_days
// algorithm).
CivilDate civil_from_days(std::int64_t days) {
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto day_of_era = static_cast<unsigned>(days - era * 146097);
    const unsigned year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const unsigned day_of_year =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const unsigned shifted_month = (5 * day_of_year + 2) / 153;  // March = 0
    const unsigned day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    const unsigned month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
    const std::int64_t year =
        static_cast<std::int64_t>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0);
    return CivilDate{year, month, day};
}

void put_two_digits(char* out, unsigned value) {
    out[0] = static_cast<char>('0' + value / 10);
    out[1] = static_cast<char>('0' + value % 10);
}

std::size_t copy_text(const char* text, char* out) {
    std::size_t length = std::strlen(text);
    std::memcpy(out, text, length);
    return length;
}

// ".ffffff": the six digits of the microseconds.
std::size_t put_fraction(char* out, unsigned micros) {
    out[0] = '.';
    for (int i = 6; i >= 1; --i) {
        out[i] = static_cast<char>('0' + micros % 10);
        micros /= 10;
    }
    return 7;
}

// PostgreSQL's text output for what isoformat() cannot write: a year past 9999 or before 1 AD. At
// most 34 bytes: "294276-12-31 23:59:59.999999" or "4713-11-24 00:00:00.999999 BC".
std::size_t pg_text_form(const CivilDate& date, unsigned hour, unsigned minute, unsigned second,
                         unsigned micros, char* out) {
    const bool bc = date.year <= 0;
    const std::int64_t year = bc ? 1 - date.year : date.year;
    int written = std::snprintf(out, kIsoTimestampMax, "%04" PRId64 "-%02u-%02u %02u:%02u:%02u",
                                year, date.month, date.day, hour % 100, minute % 100, second % 100);
    std::size_t length = written < 0 ? 0 : static_cast<std::size_t>(written);
    if (micros != 0) {
        length += put_fraction(out + length, micros);
        while (out[length - 1] == '0') {
            --length;
        }
    }
    if (bc) {
        std::memcpy(out + length, " BC", 3);
        length += 3;
    }
    return length;
}

}  // namespace

std::size_t IsoTimestamps::write(std::int64_t pg_micros, char* out) {
    if (pg_micros == std::numeric_limits<std::int64_t>::max()) {
        return copy_text("infinity", out);
    }
    if (pg_micros == std::numeric_limits<std::int64_t>::min()) {
        return copy_text("-infinity", out);
    }
    // Times before 2000 are negative and belong to the day that starts before them (floor, not
    // truncation), computed without overflow for any 64-bit value, not only PostgreSQL's range.
    const std::int64_t remainder = pg_micros % kMicrosPerDay;
    const std::int64_t days = pg_micros / kMicrosPerDay - (remainder < 0 ? 1 : 0);
    const std::int64_t micros_of_day = remainder < 0 ? remainder + kMicrosPerDay : remainder;
    const auto seconds_of_day = static_cast<unsigned>(micros_of_day / kMicrosPerSecond);
    const auto micros = static_cast<unsigned>(micros_of_day % kMicrosPerSecond);
    const unsigned hour = seconds_of_day / 3600;
    const unsigned minute = seconds_of_day / 60 % 60;
    const unsigned second = seconds_of_day % 60;
    if (!has_date_ || days != day_) {
        const CivilDate date = civil_from_days(days + kDaysFrom1970To2000);
        if (date.year < 1 || date.year > 9999) {
            return pg_text_form(date, hour, minute, second, micros, out);
        }
        // "YYYY-MM-DD", kept for the next timestamps of the same day.
        const auto year = static_cast<unsigned>(date.year);
        put_two_digits(date_, year / 100);
        put_two_digits(date_ + 2, year % 100);
        date_[4] = '-';
        put_two_digits(date_ + 5, date.month);
        date_[7] = '-';
        put_two_digits(date_ + 8, date.day);
        day_ = days;
        has_date_ = true;
    }

    // "YYYY-MM-DDTHH:MM:SS" then ".ffffff" when the microseconds are not zero, as Python writes it.
    std::memcpy(out, date_, sizeof date_);
    out[10] = 'T';
    put_two_digits(out + 11, hour);
    out[13] = ':';
    put_two_digits(out + 14, minute);
    out[16] = ':';
    put_two_digits(out + 17, second);
    return micros == 0 ? 19 : 19 + put_fraction(out + 19, micros);
}

}  // namespace chatterd
