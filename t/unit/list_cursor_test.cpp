#include "core/list_cursor.h"

#include <gtest/gtest.h>

#include <limits>

namespace chatterd {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

PgSnapshot snapshot(std::uint64_t xmin, std::uint64_t xmax, std::vector<std::uint64_t> xip = {}) {
    PgSnapshot s;
    s.xmin = xmin;
    s.xmax = xmax;
    s.xip = std::move(xip);
    return s;
}

PageKey key(std::uint64_t xact, unsigned char fill) {
    PageKey k;
    k.xact = xact;
    k.id.fill(fill);
    return k;
}

ListCursor pinned(PgSnapshot seen, PgSnapshot pin, PageKey last) {
    ListCursor c;
    c.seen = std::move(seen);
    c.pinned = std::move(pin);
    c.last = last;
    return c;
}

std::optional<ListCursor> decode(std::string_view text) {
    std::string why;
    std::optional<ListCursor> cursor = decode_cursor(text, why);
    EXPECT_EQ(cursor.has_value(), why.empty()) << why;
    return cursor;
}

std::string refusal(std::string_view text) {
    std::string why;
    EXPECT_FALSE(decode_cursor(text, why).has_value()) << text;
    return why;
}

TEST(ListCursor, SnapshotTextIsPostgresForm) {
    EXPECT_EQ(snapshot_text(snapshot(10, 20, {10, 14, 15})), "10:20:10,14,15");
    EXPECT_EQ(snapshot_text(snapshot(735, 735)), "735:735:");
    EXPECT_EQ(snapshot_text(ListCursor{}.seen), "1:1:");  // nothing given
}

TEST(ListCursor, ParsesPostgresSnapshotText) {
    PgSnapshot s;
    ASSERT_TRUE(parse_snapshot_text("10:20:10,14,15", s));
    EXPECT_EQ(s, snapshot(10, 20, {10, 14, 15}));
    ASSERT_TRUE(parse_snapshot_text("18446744073709551615:18446744073709551615:", s));
    EXPECT_EQ(s, snapshot(kMax, kMax));
    for (const char* bad : {"", "10:20", "10:20:x", "10:20:9", "10:20:20", "10:20:15,14",
                            "10:20:14,14", "0:1:", "20:10:", "10:20:11,", "-1:2:", "1::",
                            "18446744073709551616:18446744073709551616:", " 10:20:"}) {
        EXPECT_FALSE(parse_snapshot_text(bad, s)) << bad;
    }
}

TEST(ListCursor, EmptyTextIsNothingGiven) {
    std::optional<ListCursor> cursor = decode("");
    ASSERT_TRUE(cursor);
    EXPECT_EQ(cursor->seen, snapshot(1, 1));
    EXPECT_FALSE(cursor->pinned);
}

TEST(ListCursor, RoundTripsEveryShape) {
    const ListCursor cursors[] = {
        ListCursor{},
        ListCursor{snapshot(735, 740, {735, 737, 739}), std::nullopt, {}},
        ListCursor{snapshot(kMax, kMax), std::nullopt, {}},
        pinned(snapshot(1, 1), snapshot(900, 905, {901}), key(3, 0xab)),
        pinned(snapshot(700, 710, {700, 709}), snapshot(705, 1u << 30, {705, 1u << 29}),
               key(708, 0x00)),
        pinned(snapshot(1, kMax - 1, {1, kMax - 2}), snapshot(kMax - 1, kMax), key(kMax - 1, 0xff)),
    };
    for (const ListCursor& cursor : cursors) {
        std::string text = encode_cursor(cursor);
        ASSERT_FALSE(text.empty());
        EXPECT_EQ(text.find_first_of(" =+/"), std::string::npos) << text;
        std::optional<ListCursor> back = decode(text);
        ASSERT_TRUE(back) << text;
        EXPECT_EQ(*back, cursor) << text;
        EXPECT_EQ(encode_cursor(*back), text);
    }
}

TEST(ListCursor, UsualCursorIsShort) {
    ListCursor c = pinned(snapshot(123456789, 123456800, {123456789, 123456795}),
                          snapshot(123456790, 123456810, {123456799}), key(123456791, 7));
    EXPECT_LE(encode_cursor(c).size(), 64u);
}

TEST(ListCursor, TooManyTransactionsInProgressMakeNoCursor) {
    PgSnapshot big = snapshot(1000, 1000 + 4 * 10000);
    for (std::uint64_t x = 1000; x < 1000 + 4 * 10000; x += 4) big.xip.push_back(x);
    EXPECT_EQ(encode_cursor(ListCursor{big, std::nullopt, {}}), "");
}

TEST(ListCursor, RefusesWhatIsNotBase64url) {
    std::string good = encode_cursor(ListCursor{snapshot(735, 740, {736}), std::nullopt, {}});
    EXPECT_EQ(refusal(good + "="), "after: the cursor is not unpadded base64url");
    EXPECT_EQ(refusal("AQ+v"), "after: the cursor is not unpadded base64url");
    EXPECT_EQ(refusal("AQ/v"), "after: the cursor is not unpadded base64url");
    EXPECT_EQ(refusal("A"), "after: the cursor is not unpadded base64url");   // 6 bits
    EXPECT_EQ(refusal("AR"), "after: the cursor is not unpadded base64url");  // bits past a byte
    EXPECT_EQ(refusal(std::string(kMaxCursorText + 1, 'A')), "after: the cursor is too long");
}

TEST(ListCursor, RefusesDamagedBytes) {
    EXPECT_EQ(refusal("AA"), "after: not a cursor of this server");  // format 0
    EXPECT_EQ(refusal("Aw"), "after: not a cursor of this server");  // format 3
    EXPECT_EQ(refusal("AQ"), "after: the cursor is damaged");        // no snapshot
}

// Cursors made by hand: the base64url of a format byte, then varints (in the comments).
TEST(ListCursor, RefusesSnapshotsPostgresWouldRefuse) {
    EXPECT_TRUE(decode("AQUEAQI" /* 1, 5, 4, 1, 2 */));                                 // 5:9:7
    EXPECT_EQ(refusal("AQAAAA" /* 1, 0, 0, 0 */), "after: the cursor is damaged");      // xmin 0
    EXPECT_EQ(refusal("AQUEAQQ" /* 1, 5, 4, 1, 4 */), "after: the cursor is damaged");  // xip 9
    EXPECT_EQ(refusal("AQUEAgEC" /* 1, 5, 4, 2, 1, 2 */), "after: the cursor is damaged");  // 6, 9
    EXPECT_EQ(refusal("AQWEAAA" /* 1, 5, 0x84, 0, 0 */),
              "after: the cursor is damaged");  // overlong
    EXPECT_EQ(refusal("Af___________wEBAA" /* 1, 9 x 0xff, 1, 1, 0 */),
              "after: the cursor is damaged");  // xmax past 2^64 - 1
    EXPECT_EQ(refusal("Af___________wIAAA" /* 1, 9 x 0xff, 2, 0, 0 */),
              "after: the cursor is damaged");  // a varint past 64 bits
    EXPECT_EQ(refusal("AQUEfw" /* 1, 5, 4, 0x7f */), "after: the cursor is damaged");  // count lies
    EXPECT_EQ(refusal("AQUEAQEA" /* 1, 5, 4, 1, 1, 0 */),
              "after: the cursor is damaged");                                      // trailing
    EXPECT_EQ(refusal("AQUEAQ" /* 1, 5, 4, 1 */), "after: the cursor is damaged");  // truncated
    EXPECT_EQ(refusal("AgUEAAYEAAcBAg" /* 2, 5, 4, 0, 6, 4, 0, 7, 1, 2 */),
              "after: the cursor is damaged");
}

TEST(ListCursor, RefusesALastRowNoPageCouldHaveGiven) {
    // Seen 100:100:, pinned 200:200:; last must be in [100, 200).
    auto with_last = [](std::uint64_t xact) {
        return encode_cursor(pinned(snapshot(100, 100), snapshot(200, 200), key(xact, 1)));
    };
    EXPECT_TRUE(decode(with_last(100)));
    EXPECT_TRUE(decode(with_last(199)));
    EXPECT_EQ(refusal(with_last(99)), "after: the cursor is damaged");
    EXPECT_EQ(refusal(with_last(200)), "after: the cursor is damaged");
}

// Every change of one character of a cursor is refused or read as a cursor PostgreSQL would
// take: a forged cursor never reaches the database as malformed text.
TEST(ListCursor, EveryOneCharacterChangeIsRefusedOrValid) {
    std::string text = encode_cursor(
        pinned(snapshot(700, 710, {700, 709}), snapshot(705, 800, {705, 790}), key(708, 0x5a)));
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ %";
    for (std::size_t i = 0; i < text.size(); i++) {
        for (const char* c = alphabet; *c; c++) {
            std::string changed = text;
            changed[i] = *c;
            std::string why;
            std::optional<ListCursor> cursor = decode_cursor(changed, why);
            if (!cursor) continue;
            PgSnapshot check;
            EXPECT_TRUE(parse_snapshot_text(snapshot_text(cursor->seen), check)) << changed;
            ASSERT_TRUE(cursor->pinned) << changed;
            EXPECT_TRUE(parse_snapshot_text(snapshot_text(*cursor->pinned), check)) << changed;
        }
    }
}

std::string page_refusal(std::string_view query) {
    std::string why;
    EXPECT_FALSE(parse_page_request(query, why).has_value()) << query;
    return why;
}

TEST(PageRequest, LimitAloneIsTheFirstPage) {
    std::string why;
    std::optional<PageRequest> request = parse_page_request("limit=5", why);
    ASSERT_TRUE(request) << why;
    EXPECT_EQ(request->limit, 5u);
    EXPECT_EQ(request->after, ListCursor{});
}

TEST(PageRequest, AfterAloneTakesTheDefaultLimit) {
    ListCursor cursor{snapshot(735, 740, {736}), std::nullopt, {}};
    std::string why;
    std::optional<PageRequest> request = parse_page_request("after=" + encode_cursor(cursor), why);
    ASSERT_TRUE(request) << why;
    EXPECT_EQ(request->limit, kDefaultPageLimit);
    EXPECT_EQ(request->after, cursor);
    request = parse_page_request("after=", why);
    ASSERT_TRUE(request) << why;
    EXPECT_EQ(request->after, ListCursor{});
}

TEST(PageRequest, EitherOrderEscapesAndEmptyPieces) {
    ListCursor cursor = pinned(snapshot(1, 1), snapshot(900, 905, {901}), key(3, 0xab));
    std::string text = encode_cursor(cursor);
    std::string why;
    for (std::string query : {"limit=7&after=" + text, "&after=" + text + "&&limit=7&",
                              "%61fter=" + text + "&limit=%37"}) {
        std::optional<PageRequest> request = parse_page_request(query, why);
        ASSERT_TRUE(request) << query << ": " << why;
        EXPECT_EQ(request->limit, 7u);
        EXPECT_EQ(request->after, cursor);
    }
}

TEST(PageRequest, LimitBounds) {
    std::string why;
    EXPECT_EQ(parse_page_request("limit=1", why)->limit, 1u);
    EXPECT_EQ(parse_page_request("limit=1000", why)->limit, 1000u);
    EXPECT_EQ(parse_page_request("limit=0010", why)->limit, 10u);
    for (const char* bad : {"limit=0", "limit=1001", "limit=", "limit=-1", "limit=+5", "limit=5x",
                            "limit= 5", "limit=99999999999999999999999", "limit=1e3"}) {
        EXPECT_EQ(page_refusal(bad), "limit must be a whole number from 1 to 1000") << bad;
    }
}

TEST(PageRequest, RefusesRepeatedUnknownAndValuelessParameters) {
    EXPECT_EQ(page_refusal("limit=5&limit=5"), "limit is given twice");
    EXPECT_EQ(page_refusal("after=&after="), "after is given twice");
    EXPECT_EQ(page_refusal("limit=5&wait=30"), "an unknown parameter (pages take after and limit)");
    EXPECT_EQ(page_refusal("Limit=5"), "an unknown parameter (pages take after and limit)");
    EXPECT_EQ(page_refusal("after"), "a parameter without a value (after= is the first page)");
    EXPECT_EQ(page_refusal("limit=%4"), "a malformed %-escape in the query");
    EXPECT_EQ(page_refusal("limit=%zz"), "a malformed %-escape in the query");
    EXPECT_EQ(page_refusal("after=%"), "a malformed %-escape in the query");
    EXPECT_EQ(page_refusal("after=!!"), "after: the cursor is not unpadded base64url");
}

TEST(PageRequest, OnlyAfterOrLimitAskForAPage) {
    for (const char* query : {"after=", "limit=5", "x=1&limit=", "%6cimit=2", "a&after=x"}) {
        EXPECT_TRUE(asks_for_page(query)) << query;
    }
    for (const char* query : {"", "since=0&x=%00", "afterwards=1", "Limit=5", "x=after", "%zz=1",
                              "&&", "_=1700000000", "after", "warm&limit"}) {
        EXPECT_FALSE(asks_for_page(query)) << query;
    }
}

TEST(NextCursor, APageThatIsNotFullSawEverythingVisibleInItsSnapshot) {
    ListCursor after = pinned(snapshot(1, 1), snapshot(10, 12), key(5, 1));
    ListCursor next = next_cursor(after, snapshot(20, 25, {21}), false, PagePart::newer, {});
    EXPECT_EQ(next, (ListCursor{snapshot(20, 25, {21}), std::nullopt, {}}));
}

TEST(NextCursor, CutInThePinnedRestKeepsBothSnapshots) {
    ListCursor after = pinned(snapshot(1, 1), snapshot(10, 12), key(5, 1));
    ListCursor next = next_cursor(after, snapshot(20, 25), true, PagePart::pinned_rest, key(8, 2));
    EXPECT_EQ(next, pinned(snapshot(1, 1), snapshot(10, 12), key(8, 2)));
}

TEST(NextCursor, CutInTheNewerRowsPinsThePageSnapshot) {
    ListCursor seen{snapshot(10, 12), std::nullopt, {}};
    EXPECT_EQ(next_cursor(seen, snapshot(20, 25), true, PagePart::newer, key(15, 3)),
              pinned(snapshot(10, 12), snapshot(20, 25), key(15, 3)));
    ListCursor was_pinned = pinned(snapshot(1, 1), snapshot(10, 12), key(5, 1));
    EXPECT_EQ(next_cursor(was_pinned, snapshot(20, 25), true, PagePart::newer, key(15, 3)),
              pinned(snapshot(10, 12), snapshot(20, 25), key(15, 3)));
}

}  // namespace
}  // namespace chatterd
