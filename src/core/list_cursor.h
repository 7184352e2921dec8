// The cursor of the pages of new rows (GET /getimages?after=<cursor>&limit=N, docs/API.md):
// which rows a client has been given, as PostgreSQL snapshots. A row's transaction (its xact
// column, an xid8) is visible in a snapshot when it had committed before the snapshot was
// taken; a row was given when its transaction is visible in the snapshot of the page that gave
// it. Times and serials are assigned before the commit, so they cannot say this: a transaction
// that started first may commit last.
//
// The cursor travels as opaque base64url text. Everything here is pure and checks every byte it
// is given: a cursor a client forged or mangled is refused with a reason, and what reaches the
// database is text this file wrote (snapshot_text, decimal numbers, a UUID).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatterd {

// PostgreSQL's pg_snapshot: transactions below xmin are visible, from xmax on invisible, and
// between them visible unless listed in xip (in progress when the snapshot was taken).
struct PgSnapshot {
    std::uint64_t xmin = 1;
    std::uint64_t xmax = 1;
    std::vector<std::uint64_t> xip;  // ascending, each in [xmin, xmax)

    bool operator==(const PgSnapshot& other) const {
        return xmin == other.xmin && xmax == other.xmax && xip == other.xip;
    }
};

// pg_snapshot's text form, "xmin:xmax:xip,xip", as PostgreSQL reads it.
std::string snapshot_text(const PgSnapshot& snapshot);
// PostgreSQL's text of pg_current_snapshot(); false when it is not one.
bool parse_snapshot_text(std::string_view text, PgSnapshot& snapshot);

// A row's place in a page's order.
struct PageKey {
    std::uint64_t xact = 0;
    std::array<unsigned char, 16> id{};  // the uuid's bytes

    bool operator==(const PageKey& other) const { return xact == other.xact && id == other.id; }
};

// The rows given so far: every row whose transaction is visible in seen and, when pinned is set,
// the rows visible in pinned but not in seen up to last in (xact, id) order (a page that
// stopped at its limit).
struct ListCursor {
    PgSnapshot seen;  // the default, 1:1:, sees no transaction: nothing was given
    std::optional<PgSnapshot> pinned;
    PageKey last;

    bool operator==(const ListCursor& other) const {
        return seen == other.seen && pinned == other.pinned && (!pinned || last == other.last);
    }
};

// The longest cursor text accepted (and made): a request line with it stays well within
// nginx's default large_client_header_buffers (8k).
constexpr std::size_t kMaxCursorText = 4096;

// The cursor's text; empty when it would be longer than kMaxCursorText (a snapshot with
// hundreds of transactions in progress), which the caller must refuse to send.
std::string encode_cursor(const ListCursor& cursor);
// Reads a cursor text; the empty text is the cursor of nothing given. Nullopt with why (one
// line, for the client) when the text is not a cursor encode_cursor could have made.
std::optional<ListCursor> decode_cursor(std::string_view text, std::string& why);

// The most rows a page may ask for, and how many it gets when it does not say.
constexpr unsigned kMaxPageLimit = 1000;
constexpr unsigned kDefaultPageLimit = 100;

// A page request: GET ...?after=<cursor>&limit=N (either may be left out, in any order).
struct PageRequest {
    ListCursor after;
    unsigned limit = kDefaultPageLimit;
};

// Whether a query string (without the "?") asks for a page: it has an after= or a limit=
// parameter. Other query strings ("?after", "?_=1700000000") are ignored, as the reference
// chatterd ignores them: the full listing.
bool asks_for_page(std::string_view query);

// Reads a request's query string (without the "?"). Nullopt with why (one line, for the
// client) on an unknown, repeated or valueless parameter, a limit other than 1..kMaxPageLimit,
// a malformed %-escape or a cursor decode_cursor refuses. Empty pieces ("a=1&&b=2", a trailing
// "&") are skipped.
std::optional<PageRequest> parse_page_request(std::string_view query, std::string& why);

// The part of a page's statement a row came from.
enum class PagePart {
    pinned_rest,  // visible in the cursor's pinned snapshot, not in seen, after last
    newer,        // visible in the page's own snapshot, not in the cursor's newest
};

// The cursor after a page. now: the snapshot the page's statement ran in. full: the page
// stopped at its limit with rows left; then part and last say where its last row came from.
// A page that was not full gave every row visible in now.
ListCursor next_cursor(const ListCursor& after, const PgSnapshot& now, bool full, PagePart part,
                       const PageKey& last);

}  // namespace chatterd
