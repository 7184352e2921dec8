#include "core/pg_copy.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;

const std::string kHeader = "PGCOPY\n\377\r\n\0"s + "\0\0\0\0"s + "\0\0\0\0"s;
const std::string kTrailer = "\xff\xff"s;

std::string be16(int value) {
    return {static_cast<char>((value >> 8) & 0xFF), static_cast<char>(value & 0xFF)};
}

std::string be32(std::int64_t value) {
    std::string bytes;
    for (int shift = 24; shift >= 0; shift -= 8) {
        bytes.push_back(static_cast<char>((value >> shift) & 0xFF));
    }
    return bytes;
}

// One row as binary COPY writes it; std::nullopt-like: a field spelled "NULL" is SQL NULL.
std::string row(const std::vector<std::string>& fields) {
    std::string bytes = be16(static_cast<int>(fields.size()));
    for (const std::string& field : fields) {
        bytes += field == "NULL" ? be32(-1) : be32(static_cast<std::int64_t>(field.size())) + field;
    }
    return bytes;
}

// Every row of the messages, each row's fields joined with "|" ("<null>" for NULL); "<malformed>"
// ends the list when the reader refused the bytes, "<end>" when it saw the trailer.
std::vector<std::string> read_all(std::size_t columns, const std::vector<std::string>& messages) {
    CopyBinaryRows reader(columns);
    std::vector<std::string> out;
    std::vector<Cell> cells(columns);
    for (const std::string& message : messages) {
        reader.feed(message);
        while (true) {
            CopyBinaryRows::Next next = reader.next(cells.data());
            if (next == CopyBinaryRows::Next::message_done) {
                break;
            }
            if (next == CopyBinaryRows::Next::malformed) {
                out.push_back("<malformed>");
                return out;
            }
            if (next == CopyBinaryRows::Next::end_of_data) {
                out.push_back("<end>");
                break;
            }
            std::string joined;
            for (std::size_t i = 0; i < columns; ++i) {
                joined +=
                    (i ? "|" : "")
                    + (cells[i].is_null ? "<null>" : std::string(cells[i].data, cells[i].len));
            }
            out.push_back(joined);
        }
    }
    return out;
}

using Rows = std::vector<std::string>;

// As PostgreSQL sends it: the header with the first row, one row per message, the trailer alone.
TEST(CopyBinaryRows, RowsAsPostgresSendsThem) {
    EXPECT_EQ(read_all(2, {kHeader + row({"alice", "hi"}), row({"bob", "NULL"}), kTrailer}),
              (Rows{"alice|hi", "bob|<null>", "<end>"}));
}

TEST(CopyBinaryRows, NoRowsIsHeaderAndTrailer) {
    EXPECT_EQ(read_all(3, {kHeader + kTrailer}), (Rows{"<end>"}));
}

TEST(CopyBinaryRows, EmptyValuesAreNotNull) {
    EXPECT_EQ(read_all(2, {kHeader + row({"", "x"}) + kTrailer}), (Rows{"|x", "<end>"}));
}

TEST(CopyBinaryRows, SeveralRowsInOneMessageAndBinaryBytes) {
    std::string binary = "\0\xff\n\r"s;
    EXPECT_EQ(read_all(1, {kHeader + row({binary}) + row({"b"}) + kTrailer}),
              (Rows{binary, "b", "<end>"}));
}

TEST(CopyBinaryRows, HeaderExtensionIsSkipped) {
    std::string header = "PGCOPY\n\377\r\n\0"s + be32(0) + be32(3) + "ext";
    EXPECT_EQ(read_all(1, {header + row({"a"}), kTrailer}), (Rows{"a", "<end>"}));
}

TEST(CopyBinaryRows, MalformedInput) {
    const std::string good_row = row({"a", "b"});
    const std::vector<std::vector<std::string>> cases = {
        {"PGCOPY\n\377\r\n"s + good_row},                              // signature cut short
        {"PGCOPY\n\377\r\n\1"s + be32(0) + be32(0) + good_row},        // wrong signature
        {"PGCOPY\n\377\r\n\0"s + be32(1 << 16) + be32(0) + good_row},  // rows with OIDs
        {"PGCOPY\n\377\r\n\0"s + be32(0) + be32(100) + good_row},      // extension past the end
        {kHeader + row({"a"})},                                        // too few fields
        {kHeader + row({"a", "b", "c"})},                              // too many fields
        {kHeader + be16(2) + be32(5) + "ab"},                          // value cut short
        {kHeader + be16(2) + be32(1) + "a" + be32(1)},                 // length without its value
        {kHeader + be16(2) + be32(1)},                                 // second field missing
        {kHeader + be16(-2)},                                          // negative field count
        {kHeader + "\x00"s},                                           // half a field count
        {kHeader + kTrailer + "x"},                                    // bytes after the trailer
        {kHeader + kTrailer, good_row},                                // a row after the trailer
    };
    for (const auto& messages : cases) {
        Rows rows = read_all(2, messages);
        ASSERT_FALSE(rows.empty());
        EXPECT_EQ(rows.back(), "<malformed>") << ::testing::PrintToString(messages);
    }
}

TEST(CopyBinaryRows, CompleteOnlyAfterTheTrailer) {
    CopyBinaryRows reader(1);
    Cell cell{};
    std::string first = kHeader + row({"a"});
    reader.feed(first);
    EXPECT_EQ(reader.next(&cell), CopyBinaryRows::Next::row);
    EXPECT_EQ(reader.next(&cell), CopyBinaryRows::Next::message_done);
    EXPECT_FALSE(reader.complete());
    reader.feed(kTrailer);
    EXPECT_EQ(reader.next(&cell), CopyBinaryRows::Next::end_of_data);
    EXPECT_TRUE(reader.complete());
    std::string late = row({"b"});
    reader.feed(late);
    EXPECT_EQ(reader.next(&cell), CopyBinaryRows::Next::malformed);
    EXPECT_FALSE(reader.complete());
}

TEST(CopyBinaryRows, StaysMalformedOnceRefused) {
    CopyBinaryRows reader(1);
    Cell cell{};
    std::string bad = "not a copy";
    reader.feed(bad);
    EXPECT_EQ(reader.next(&cell), CopyBinaryRows::Next::malformed);
    std::string good = kHeader + row({"a"});
    reader.feed(good);
    EXPECT_EQ(reader.next(&cell), CopyBinaryRows::Next::malformed);
}

}  // namespace
}  // namespace chatterd
