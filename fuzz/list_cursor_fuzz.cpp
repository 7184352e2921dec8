// libFuzzer target for the pages' query string and cursor (core/list_cursor: parse_page_request,
// decode_cursor), which take a client's bytes and turn them into the text of a database query.
// Input: a query string. An accepted request must have a limit of 1..kMaxPageLimit and cursor
// snapshots that PostgreSQL's pg_snapshot input takes (parse_snapshot_text mirrors its rules),
// and a last row inside the pinned snapshot's range. An accepted non-empty cursor text is
// canonical: encoding what was read gives the same text back.
#include "core/list_cursor.h"

#include "check.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace {

using chatterd::ListCursor;
using chatterd::PgSnapshot;
using chatterd_fuzz::check;

void check_snapshot(const PgSnapshot& snapshot) {
    PgSnapshot back;
    check(chatterd::parse_snapshot_text(chatterd::snapshot_text(snapshot), back),
          "accepted a snapshot PostgreSQL would refuse");
    check(back == snapshot, "a snapshot's text does not read back the same");
}

void check_cursor(const ListCursor& cursor) {
    check_snapshot(cursor.seen);
    if (cursor.pinned) {
        check_snapshot(*cursor.pinned);
        check(cursor.last.xact >= cursor.seen.xmin && cursor.last.xact < cursor.pinned->xmax,
              "accepted a last row no page could have given");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string why;
    if (auto request = chatterd::parse_page_request(input, why)) {
        check(why.empty(), "a reason for an accepted request");
        check(request->limit >= 1 && request->limit <= chatterd::kMaxPageLimit,
              "accepted a limit out of bounds");
        check_cursor(request->after);
    } else {
        check(!why.empty() && why.find('\n') == std::string::npos,
              "a refusal without a one-line reason");
    }
    why.clear();
    if (auto cursor = chatterd::decode_cursor(input, why)) {
        check_cursor(*cursor);
        if (!input.empty()) {
            check(chatterd::encode_cursor(*cursor) == input, "an accepted cursor is not canonical");
        }
    }
    return 0;
}
