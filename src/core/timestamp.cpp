#include "core/timestamp.h"

#include <algorithm>
#include <optional>

namespace chatterd {

namespace {

constexpr std::string_view kDateTimeShape = "dddd-dd-dd dd:dd:dd";   // 'd' stands for any digit
constexpr std::size_t kDateLength = 10;                               // "2025-01-29"
constexpr std::size_t kMaxFractionDigits = 6;                         // PostgreSQL keeps microseconds

// The pieces of a PostgreSQL ISO timestamp, each still in PostgreSQL's spelling.
struct PgTimestamp {
    std::string_view date_time;   // "2025-01-29 19:03:12"
    std::string_view fraction;    // "12" of ".12"; empty when there is none
    std::string_view zone;        // "+05", "+05:30" or "+05:53:28"; empty when there is none
};

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

// Does text start with shape, where 'd' in shape is any digit and every other character stands for itself?
bool starts_with_shape(std::string_view text, std::string_view shape)
{
    if (text.size() < shape.size()) {
        return false;
    }
    for (std::size_t i = 0; i < shape.size(); ++i) {
        bool matches = shape[i] == 'd' ? is_digit(text[i]) : text[i] == shape[i];
        if (!matches) {
            return false;
        }
    }
    return true;
}

std::size_t leading_digit_count(std::string_view text)
{
    auto first_non_digit = std::find_if_not(text.begin(), text.end(), is_digit);
    return static_cast<std::size_t>(first_non_digit - text.begin());
}

// Length of the UTC offset PostgreSQL writes for a timestamptz at the start of text: "+hh", "+hh:mm" or
// "+hh:mm:ss" (either sign); 0 when text does not start with one.
std::size_t zone_length(std::string_view text)
{
    if (text.empty() || (text.front() != '+' && text.front() != '-') || !starts_with_shape(text.substr(1), "dd")) {
        return 0;
    }
    constexpr std::size_t kLongestZone = 9;   // "+hh:mm:ss"
    std::size_t length = 3;
    while (length < kLongestZone && starts_with_shape(text.substr(length), ":dd")) {
        length += 3;
    }
    return length;
}

std::optional<PgTimestamp> split_pg_timestamp(std::string_view text)
{
    if (!starts_with_shape(text, kDateTimeShape)) {
        return std::nullopt;
    }
    PgTimestamp parts;
    parts.date_time = text.substr(0, kDateTimeShape.size());
    text.remove_prefix(kDateTimeShape.size());

    if (!text.empty() && text.front() == '.') {
        std::size_t digits = leading_digit_count(text.substr(1));
        if (digits == 0 || digits > kMaxFractionDigits) {
            return std::nullopt;
        }
        parts.fraction = text.substr(1, digits);
        text.remove_prefix(1 + digits);
    }

    parts.zone = text.substr(0, zone_length(text));
    text.remove_prefix(parts.zone.size());

    if (!text.empty()) {   // " BC", a sixth-digit year, anything else isoformat() has no form for
        return std::nullopt;
    }
    return parts;
}

// Appends to a buffer whose capacity the caller has checked: the converted form is at most 35 bytes.
class IsoWriter {
public:
    explicit IsoWriter(char* out) : out_(out) {}

    void put(std::string_view text)
    {
        std::copy(text.begin(), text.end(), out_ + length_);
        length_ += text.size();
    }

    void put(char c) { out_[length_++] = c; }

    std::size_t length() const { return length_; }

private:
    char* out_;
    std::size_t length_ = 0;
};

// Python prints a fraction only when microsecond != 0, and then always six digits.
void put_fraction(IsoWriter& iso, std::string_view fraction)
{
    if (fraction.find_first_not_of('0') == std::string_view::npos) {
        return;
    }
    iso.put('.');
    iso.put(fraction);
    for (std::size_t i = fraction.size(); i < kMaxFractionDigits; ++i) {
        iso.put('0');
    }
}

// Python prints an aware datetime's offset as "+hh:mm", adding ":ss" only when the seconds are non-zero.
void put_zone(IsoWriter& iso, std::string_view zone)
{
    if (zone.empty()) {
        return;
    }
    std::string_view sign_and_hours = zone.substr(0, 3);
    std::string_view minutes = zone.size() >= 6 ? zone.substr(4, 2) : "00";
    std::string_view seconds = zone.size() >= 9 ? zone.substr(7, 2) : "00";
    iso.put(sign_and_hours);
    iso.put(':');
    iso.put(minutes);
    if (seconds != "00") {
        iso.put(':');
        iso.put(seconds);
    }
}

}  // namespace

std::size_t iso_timestamp(std::string_view pg_text, char* out)
{
    std::optional<PgTimestamp> parts = split_pg_timestamp(pg_text);
    if (!parts) {
        std::size_t copied = std::min(pg_text.size(), kIsoTimestampMax);
        std::copy_n(pg_text.begin(), copied, out);
        return copied;
    }

    IsoWriter iso(out);
    iso.put(parts->date_time.substr(0, kDateLength));
    iso.put('T');
    iso.put(parts->date_time.substr(kDateLength + 1));
    put_fraction(iso, parts->fraction);
    put_zone(iso, parts->zone);
    return iso.length();
}

}  // namespace chatterd
