#include "core/list_cursor.h"

#include "core/base64url.h"

#include <limits>

namespace chatterd {

namespace {

// The cursor's bytes: a format byte, the seen snapshot, and for a pinned cursor the pinned
// snapshot, last's xact and its 16 id bytes. A snapshot is xmin, xmax - xmin, the number of
// transactions in progress, then each one's distance from the previous (from xmin for the
// first; minus one after that, since they ascend strictly): LEB128 varints, so that the usual
// snapshot of a busy server, whose numbers are close together, takes a few bytes.
enum Format : unsigned char { kSeen = 1, kPinned = 2 };

void put_varint(std::string& out, std::uint64_t value) {
    while (value >= 0x80) {
        out += static_cast<char>((value & 0x7f) | 0x80);
        value >>= 7;
    }
    out += static_cast<char>(value);
}

// Reads the bytes in order; every read fails (and keeps failing) past the end or on a varint
// that is longer than needed or beyond 64 bits.
class Reader {
public:
    explicit Reader(std::string_view bytes) : rest_(bytes) {}

    bool varint(std::uint64_t& value) {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (rest_.empty()) return false;
            auto byte = static_cast<unsigned char>(rest_.front());
            rest_.remove_prefix(1);
            if (shift == 63 && byte > 1) return false;  // beyond 64 bits
            value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) return byte != 0 || shift == 0;  // no overlong zero tail
        }
        return false;
    }
    bool byte(unsigned char& value) {
        if (rest_.empty()) return false;
        value = static_cast<unsigned char>(rest_.front());
        rest_.remove_prefix(1);
        return true;
    }
    bool bytes(unsigned char* out, std::size_t count) {
        if (rest_.size() < count) return false;
        for (std::size_t i = 0; i < count; i++) out[i] = static_cast<unsigned char>(rest_[i]);
        rest_.remove_prefix(count);
        return true;
    }
    bool at_end() const { return rest_.empty(); }

private:
    std::string_view rest_;
};

// xmin >= 1 and xmax >= xmin, each xip ascending in [xmin, xmax): what PostgreSQL's
// pg_snapshot_in requires (it also takes repeated xips, which it drops; a cursor has none).
bool valid_snapshot(const PgSnapshot& s) {
    if (s.xmin == 0 || s.xmax < s.xmin) return false;
    std::uint64_t floor = s.xmin;
    for (std::uint64_t xid : s.xip) {
        if (xid < floor || xid >= s.xmax) return false;
        floor = xid + 1;
    }
    return true;
}

void put_snapshot(std::string& out, const PgSnapshot& s) {
    put_varint(out, s.xmin);
    put_varint(out, s.xmax - s.xmin);
    put_varint(out, s.xip.size());
    std::uint64_t floor = s.xmin;
    for (std::uint64_t xid : s.xip) {
        put_varint(out, xid - floor);
        floor = xid + 1;
    }
}

bool read_snapshot(Reader& in, PgSnapshot& s) {
    std::uint64_t span = 0;
    std::uint64_t count = 0;
    if (!in.varint(s.xmin) || !in.varint(span) || !in.varint(count)) return false;
    if (s.xmin == 0 || span > std::numeric_limits<std::uint64_t>::max() - s.xmin) return false;
    s.xmax = s.xmin + span;
    // Each xip takes a byte at least: a count beyond the bytes left is a lie, not a reservation.
    if (count > kMaxCursorText) return false;
    s.xip.clear();
    std::uint64_t floor = s.xmin;
    for (std::uint64_t i = 0; i < count; i++) {
        std::uint64_t gap = 0;
        if (!in.varint(gap) || gap >= s.xmax - floor) return false;
        s.xip.push_back(floor + gap);
        floor += gap + 1;
    }
    return true;
}

bool parse_u64(std::string_view digits, std::uint64_t& value) {
    if (digits.empty() || digits.size() > 20) return false;
    value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return false;
        std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
        value = value * 10 + digit;
    }
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX escapes decoded; false on a '%' not followed by two hex digits.
bool percent_decode(std::string_view text, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < text.size(); i++) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) return false;
        int high = hex_value(text[i + 1]);
        int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0) return false;
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return true;
}

bool parse_limit(std::string_view text, unsigned& limit) {
    std::uint64_t value = 0;
    if (!parse_u64(text, value) || value < 1 || value > kMaxPageLimit) return false;
    limit = static_cast<unsigned>(value);
    return true;
}

}  // namespace

std::string snapshot_text(const PgSnapshot& snapshot) {
    std::string text = std::to_string(snapshot.xmin) + ':' + std::to_string(snapshot.xmax) + ':';
    for (std::size_t i = 0; i < snapshot.xip.size(); i++) {
        if (i > 0) text += ',';
        text += std::to_string(snapshot.xip[i]);
    }
    return text;
}

bool parse_snapshot_text(std::string_view text, PgSnapshot& snapshot) {
    std::size_t first = text.find(':');
    if (first == std::string_view::npos) return false;
    std::size_t second = text.find(':', first + 1);
    if (second == std::string_view::npos) return false;
    PgSnapshot read;
    if (!parse_u64(text.substr(0, first), read.xmin)
        || !parse_u64(text.substr(first + 1, second - first - 1), read.xmax))
        return false;
    std::string_view list = text.substr(second + 1);
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::uint64_t xid = 0;
        if (!parse_u64(list.substr(0, comma), xid)) return false;
        read.xip.push_back(xid);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
        if (list.empty()) return false;  // a trailing comma
    }
    if (!valid_snapshot(read)) return false;
    snapshot = std::move(read);
    return true;
}

std::string encode_cursor(const ListCursor& cursor) {
    std::string bytes;
    bytes += static_cast<char>(cursor.pinned ? kPinned : kSeen);
    put_snapshot(bytes, cursor.seen);
    if (cursor.pinned) {
        put_snapshot(bytes, *cursor.pinned);
        put_varint(bytes, cursor.last.xact);
        bytes.append(reinterpret_cast<const char*>(cursor.last.id.data()), cursor.last.id.size());
    }
    std::string text = base64url(bytes);
    if (text.size() > kMaxCursorText) text.clear();
    return text;
}

std::optional<ListCursor> decode_cursor(std::string_view text, std::string& why) {
    ListCursor cursor;
    if (text.empty()) return cursor;
    if (text.size() > kMaxCursorText) {
        why = "after: the cursor is too long";
        return std::nullopt;
    }
    std::string bytes;
    if (!from_base64url(text, bytes)) {
        why = "after: the cursor is not unpadded base64url";
        return std::nullopt;
    }
    Reader in(bytes);
    unsigned char format = 0;
    if (!in.byte(format) || (format != kSeen && format != kPinned)) {
        why = "after: not a cursor of this server";
        return std::nullopt;
    }
    bool read = read_snapshot(in, cursor.seen);
    if (read && format == kPinned) {
        cursor.pinned.emplace();
        read = read_snapshot(in, *cursor.pinned) && in.varint(cursor.last.xact)
               && in.bytes(cursor.last.id.data(), cursor.last.id.size())
               // last came from a page's rows: not visible in seen, visible in pinned.
               && cursor.last.xact >= cursor.seen.xmin && cursor.last.xact < cursor.pinned->xmax;
    }
    if (!read || !in.at_end()) {
        why = "after: the cursor is damaged";
        return std::nullopt;
    }
    return cursor;
}

bool asks_for_page(std::string_view query) {
    std::string name;
    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view piece = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        std::size_t eq = piece.find('=');
        if (eq != std::string_view::npos && percent_decode(piece.substr(0, eq), name)
            && (name == "after" || name == "limit"))
            return true;
    }
    return false;
}

std::optional<PageRequest> parse_page_request(std::string_view query, std::string& why) {
    PageRequest request;
    bool have_after = false;
    bool have_limit = false;
    std::string name;
    std::string value;
    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view piece = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        if (piece.empty()) continue;
        std::size_t eq = piece.find('=');
        if (eq == std::string_view::npos) {
            why = "a parameter without a value (after= is the first page)";
            return std::nullopt;
        }
        if (!percent_decode(piece.substr(0, eq), name)
            || !percent_decode(piece.substr(eq + 1), value)) {
            why = "a malformed %-escape in the query";
            return std::nullopt;
        }
        if (name == "after") {
            if (have_after) {
                why = "after is given twice";
                return std::nullopt;
            }
            have_after = true;
            std::optional<ListCursor> cursor = decode_cursor(value, why);
            if (!cursor) return std::nullopt;
            request.after = std::move(*cursor);
        } else if (name == "limit") {
            if (have_limit) {
                why = "limit is given twice";
                return std::nullopt;
            }
            have_limit = true;
            if (!parse_limit(value, request.limit)) {
                why = "limit must be a whole number from 1 to 1000";
                return std::nullopt;
            }
        } else {
            why = "an unknown parameter (pages take after and limit)";
            return std::nullopt;
        }
    }
    return request;
}

ListCursor next_cursor(const ListCursor& after, const PgSnapshot& now, bool full, PagePart part,
                       const PageKey& last) {
    ListCursor next;
    if (!full) {
        next.seen = now;
        return next;
    }
    // The rows of the cut part up to last were given; the rest of that part, then whatever
    // became visible since, come next.
    if (part == PagePart::pinned_rest && after.pinned) {
        next.seen = after.seen;
        next.pinned = after.pinned;
    } else {
        next.seen = after.pinned ? *after.pinned : after.seen;
        next.pinned = now;
    }
    next.last = last;
    return next;
}

}  // namespace chatterd
