#include "core/json.h"

#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace chatterd {
namespace {

using namespace std::string_literals;  // "..."s keeps embedded NULs

// Collects the writer's text. Every room is as large as asked plus `slack`, so that rows often need
// a new one.
class StringSink final : public JsonSink {
public:
    explicit StringSink(std::size_t slack = 0, int rooms_before_failure = -1)
        : slack_(slack), rooms_before_failure_(rooms_before_failure) {}

    JsonRoom more_room(char* written_end, std::size_t size) override {
        take(written_end);
        if (rooms_before_failure_-- == 0) {
            throw std::runtime_error("out of memory");
        }
        rooms_.emplace_back(size + slack_, '\x7f');
        ++room_count;
        return JsonRoom{rooms_.back().data(), rooms_.back().data() + rooms_.back().size()};
    }

    void complete(char* written_end) override {
        take(written_end);
        completed = true;
    }

    std::string text;
    int room_count = 0;
    bool completed = false;

private:
    void take(char* written_end) {
        if (written_end != nullptr) {
            ASSERT_FALSE(completed);
            text.append(rooms_.back().data(), written_end);
        }
    }

    std::size_t slack_;
    int rooms_before_failure_;
    std::deque<std::string> rooms_;
};

Cell text(std::string_view value) {
    return Cell{value.data(), value.size(), false};
}

constexpr Cell kNull{nullptr, 0, true};

// Binary values as PostgreSQL sends them in COPY BINARY; the strings are kept for the life of the
// test program.
Cell binary(std::string bytes) {
    static std::vector<std::unique_ptr<std::string>> kept;
    kept.push_back(std::make_unique<std::string>(std::move(bytes)));
    return text(*kept.back());
}

// 2025-01-29 19:03:12.12 is 791492592120000 microseconds after 2000-01-01 (see timestamp_test.cpp).
Cell timestamp(std::int64_t pg_micros) {
    std::string bytes(8, '\0');
    for (int i = 7; i >= 0; --i, pg_micros >>= 8) {
        bytes[i] = static_cast<char>(pg_micros & 0xFF);
    }
    return binary(bytes);
}

Cell uuid_with_last_byte(unsigned char last) {
    std::string bytes = "\x5b\x0c\x2f\x6e\x00\x00\x40\x00\x80\x00\x00\x00\x00\x00\x00"s;
    bytes.push_back(static_cast<char>(last));
    return binary(bytes);
}

// The JSON a getchatts-shaped answer produces for these rows (username, message, id, time).
std::string chatts_json(const std::vector<std::vector<Cell>>& rows) {
    const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::text, ColumnKind::uuid,
                                ColumnKind::timestamp};
    StringSink sink;
    JsonRowsWriter writer(sink);
    for (const std::vector<Cell>& row : rows) {
        writer.row(row.data(), kinds, row.size());
    }
    writer.finish();
    EXPECT_TRUE(sink.completed);
    return sink.text;
}

std::string one_string_json(std::string_view value) {
    const ColumnKind kind = ColumnKind::text;
    const Cell cell = text(value);
    StringSink sink;
    JsonRowsWriter writer(sink);
    writer.row(&cell, &kind, 1);
    writer.finish();
    return sink.text;
}

// ---- rows ----

TEST(JsonRows, NoRowsIsAnEmptyArray) {
    EXPECT_EQ(chatts_json({}), "[]");
}

TEST(JsonRows, CompactArrayOfArraysWithIsoTimes) {
    std::string json = chatts_json({
        {text("alice"), text("hello"), uuid_with_last_byte(0x01), timestamp(791492592120000)},
        {text("bob"), text(""), uuid_with_last_byte(0xfe), timestamp(791492593000000)},
    });
    EXPECT_EQ(
        json,
        R"([["alice","hello","5b0c2f6e-0000-4000-8000-000000000001","2025-01-29T19:03:12.120000"],)"
        R"(["bob","","5b0c2f6e-0000-4000-8000-0000000000fe","2025-01-29T19:03:13"]])");
}

TEST(JsonRows, SqlNullIsJsonNullInAnyColumn) {
    const ColumnKind kinds[] = {ColumnKind::text,      ColumnKind::text, ColumnKind::uuid,
                                ColumnKind::timestamp, ColumnKind::text, ColumnKind::text};
    const Cell cells[] = {text("alice"), kNull, kNull, kNull, text("https://h/media/a.jpeg"),
                          kNull};
    StringSink sink;
    JsonRowsWriter writer(sink);
    writer.row(cells, kinds, 6);
    writer.finish();
    EXPECT_EQ(sink.text, R"([["alice",null,null,null,"https://h/media/a.jpeg",null]])");
}

// An empty text may come without memory (data() null): nothing may be copied from it. The fuzzer's
// UBSan found memcpy(out, nullptr, 0); make test-asan runs these tests with UBSan
// (UNIT_SANITIZE=1), where that is fatal.
TEST(JsonRows, EmptyTextWithoutMemory) {
    const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::text};
    const Cell cells[] = {Cell{nullptr, 0, false}, text("x")};
    StringSink sink;
    JsonRowsWriter writer(sink);
    writer.row(cells, kinds, 2);
    writer.finish();
    EXPECT_EQ(sink.text, R"([["","x"]])");
    EXPECT_EQ(json_string(std::string_view()), "\"\"");
}

// Expected bytes are Python's json.dumps(value, ensure_ascii=False, separators=(",", ":")), which
// is what Starlette's JSONResponse sends: UTF-8 as is (emoji, CJK, U+007F, U+2028/U+2029 are not
// escaped), "/" not escaped.
TEST(JsonRows, StringsMatchPythonByteForByte) {
    const std::pair<std::string, std::string> cases[] = {
        {"\xF0\x9F\x98\x80 emoji", "\"\xF0\x9F\x98\x80 emoji\""},
        {"\xE6\xBC\xA2\xE5\xAD\x97\xE3\x81\x8B\xE3\x81\xAA",
         "\"\xE6\xBC\xA2\xE5\xAD\x97\xE3\x81\x8B\xE3\x81\xAA\""},
        {"say \"hi\"", R"("say \"hi\"")"},
        {"back\\slash", R"("back\\slash")"},
        {"a/b </script>", R"("a/b </script>")"},
        {"\x7F", "\"\x7F\""},
        {"\xE2\x80\xA8\xE2\x80\xA9", "\"\xE2\x80\xA8\xE2\x80\xA9\""},
        {"\n\r\t\b\f", R"("\n\r\t\b\f")"},
        {"\x00\x01\x02"s, R"("\u0000\u0001\u0002")"},
        {"\xC3\xA9", "\"\xC3\xA9\""},
    };
    for (const auto& [value, python] : cases) {
        EXPECT_EQ(one_string_json(value), "[[" + python + "]]") << value;
    }
}

// Python writes the hex digits of \u00XX escapes in lower case: json.dumps("\x0b\x1a\x1f") ==
// '"\\u000b\\u001a\\u001f"'.
TEST(JsonRows, ControlCharacterEscapesUseLowerCaseHexAsPython) {
    EXPECT_EQ(one_string_json("\x0B\x1A\x1F\x7F"), "[[\"\\u000b\\u001a\\u001f\x7F\"]]");
}

// What Python's json.dumps(ensure_ascii=False) writes for one byte, byte by byte: the reference for
// the word-at-a-time scan of the writer.
std::string python_escape(unsigned char byte) {
    switch (byte) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default: break;
    }
    if (byte < 0x20) {
        char escape[7];
        std::snprintf(escape, sizeof escape, "\\u%04x", byte);
        return escape;
    }
    return std::string(1, static_cast<char>(byte));
}

// Every byte value at every position of strings of several lengths, among plain ASCII or among
// UTF-8 bytes (high bit set): the 8-bytes-at-a-time scan must find every byte to escape, wherever
// it sits in a word.
TEST(JsonRows, EveryByteAtEveryPositionIsEscapedAsPythonDoes) {
    for (char filler : {'a', '\xE9'}) {
        for (std::size_t size : {1u, 7u, 8u, 9u, 16u, 17u, 23u}) {
            for (std::size_t at = 0; at < size; ++at) {
                for (int byte = 0; byte < 256; ++byte) {
                    std::string value(size, filler);
                    value[at] = static_cast<char>(byte);
                    std::string expected = "\"";
                    for (char c : value) {
                        expected += python_escape(static_cast<unsigned char>(c));
                    }
                    expected += "\"";
                    ASSERT_EQ(json_string(value), expected)
                        << "byte " << byte << " at " << at << " of " << size;
                }
            }
        }
    }
}

// Random strings dense in bytes to escape, several per word (fixed seed: the same strings every
// run).
TEST(JsonRows, RandomStringsAreEscapedAsPythonDoes) {
    const char alphabet[] = {'a', '"',    '\\',   '\n',   '\x01', '\x1f',
                             ' ', '\xC3', '\xA9', '\x7F', '/'};
    std::uint32_t state = 12345;
    for (int round = 0; round < 2000; ++round) {
        std::string value;
        std::string expected = "\"";
        state = state * 1664525u + 1013904223u;
        std::size_t size = state % 40;
        for (std::size_t i = 0; i < size; ++i) {
            state = state * 1664525u + 1013904223u;
            char c = alphabet[(state >> 16) % sizeof alphabet];
            value += c;
            expected += python_escape(static_cast<unsigned char>(c));
        }
        expected += "\"";
        ASSERT_EQ(json_string(value), expected) << "round " << round;
    }
}

// PostgreSQL with a UTF8 database never returns invalid UTF-8; if bytes like these arrive anyway
// they are passed through unchanged rather than rejected (the answer is already under way) or
// crashing.
TEST(JsonRows, InvalidUtf8IsPassedThroughUnchanged) {
    EXPECT_EQ(one_string_json("\xFF\xFE ok \xE2\x80"), "[[\"\xFF\xFE ok \xE2\x80\"]]");
}

TEST(JsonRows, TimestampsIsoformatCannotWriteAreWrittenAsPostgresWritesThem) {
    std::string json =
        chatts_json({{text("a"), text("b"), uuid_with_last_byte(0), timestamp(INT64_MAX)}});
    EXPECT_EQ(json, R"([["a","b","5b0c2f6e-0000-4000-8000-000000000000","infinity"]])");
}

// A binary uuid or timestamp of the wrong size means the columns are not what the query promised:
// refused, not guessed at (the handler answers 500).
TEST(JsonRows, BinaryCellsOfTheWrongSizeAreRefused) {
    EXPECT_THROW(chatts_json({{text("a"), text("b"), text("not 16 bytes"), timestamp(0)}}),
                 std::runtime_error);
    EXPECT_THROW(chatts_json({{text("a"), text("b"), uuid_with_last_byte(0), text("7 bytes")}}),
                 std::runtime_error);
}

TEST(JsonRows, EmptyTextCellWithoutData) {
    std::string json = chatts_json(
        {{Cell{nullptr, 0, false}, text("b"), uuid_with_last_byte(1), timestamp(791492592000000)}});
    EXPECT_EQ(json, R"([["","b","5b0c2f6e-0000-4000-8000-000000000001","2025-01-29T19:03:12"]])");
}

TEST(JsonRows, ExceptionFromTheSinkReachesTheCaller) {
    StringSink sink(0, 1);  // a room for "[", then none
    JsonRowsWriter writer(sink);
    const ColumnKind kind = ColumnKind::text;
    const Cell cell = text("a value");
    EXPECT_THROW(writer.row(&cell, &kind, 1), std::runtime_error);
    EXPECT_EQ(sink.text, "[");
}

TEST(JsonRows, RowAfterFinishIsRefused) {
    StringSink sink;
    JsonRowsWriter writer(sink);
    writer.finish();
    const ColumnKind kind = ColumnKind::text;
    const Cell cell = text("late");
    EXPECT_THROW(writer.row(&cell, &kind, 1), std::logic_error);
    EXPECT_EQ(sink.text, "[]");
}

// Rooms of 16 KiB, as nginx buffers would be: a room is asked for only when a row's longest JSON
// does not fit.
TEST(JsonRows, ManyRowsFillRoomsInOrder) {
    const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::text, ColumnKind::uuid,
                                ColumnKind::timestamp};
    const Cell cells[] = {text("u"), text("m"), uuid_with_last_byte(0xab),
                          timestamp(791492592500000)};
    StringSink sink(16 * 1024);
    JsonRowsWriter writer(sink);
    for (int i = 0; i < 10000; ++i) {
        writer.row(cells, kinds, 4);
    }
    writer.finish();
    const std::string one_row =
        R"(["u","m","5b0c2f6e-0000-4000-8000-0000000000ab","2025-01-29T19:03:12.500000"])";
    EXPECT_EQ(sink.text.size(), 2 + 10000 * one_row.size() + 9999);
    EXPECT_EQ(sink.text.substr(0, 1 + one_row.size() + 1), "[" + one_row + ",");
    EXPECT_EQ(sink.text.substr(sink.text.size() - one_row.size() - 2), "," + one_row + "]");
    EXPECT_LT(sink.room_count, 70);  // 10000 rows of 79 bytes in 16 KiB rooms: about 50
}

// Rooms just as large as asked: every row needs a new one, and rows whose escaped text is as long
// as it can be (6 bytes per byte) still fit.
TEST(JsonRows, RowsFitTheRoomTheyAskForEvenWhenFullyEscaped) {
    const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::uuid, ColumnKind::timestamp,
                                ColumnKind::text};
    const std::string controls(300, '\x01');
    const Cell cells[] = {text(controls), uuid_with_last_byte(0), timestamp(-211781865600000000),
                          kNull};
    StringSink sink;
    JsonRowsWriter writer(sink);
    writer.row(cells, kinds, 4);
    writer.row(cells, kinds, 4);
    writer.finish();
    std::string escaped;
    for (int i = 0; i < 300; ++i) {
        escaped += "\\u0001";
    }
    const std::string one_row =
        "[\"" + escaped
        + R"(","5b0c2f6e-0000-4000-8000-000000000000","4713-11-24 00:00:00 BC",null])";
    EXPECT_EQ(sink.text, "[" + one_row + "," + one_row + "]");
    EXPECT_EQ(sink.room_count,
              3);  // "[", then one per row ("]" fits where the timestamp's bound was not used)
}

// ---- error bodies ----

TEST(JsonString, ErrorBodies) {
    EXPECT_EQ(json_string("Unprocessable entity"), "\"Unprocessable entity\"");
    EXPECT_EQ(json_string(""), "\"\"");
    EXPECT_EQ(json_string(std::string_view()), "\"\"");
    EXPECT_EQ(json_string("bad \"part\" \\ /media/\n"), R"("bad \"part\" \\ /media/\n")");
    EXPECT_EQ(json_string("\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3"),
              "\"\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3\"");
}

// ---- postchatt body ----

std::optional<ChattFields> parse(std::string_view body, std::string& why) {
    why = "unset";
    return parse_chatt_json(body, why);
}

void expect_fields(std::string_view body, std::string_view username, std::string_view message) {
    std::string why;
    std::optional<ChattFields> fields = parse(body, why);
    ASSERT_TRUE(fields) << body << ": " << why;
    EXPECT_EQ(fields->username, username);
    EXPECT_EQ(fields->message, message);
}

void expect_rejected(std::string_view body, std::string_view reason) {
    std::string why;
    EXPECT_FALSE(parse(body, why)) << body;
    EXPECT_EQ(why, reason) << body;
}

void expect_malformed(std::string_view body) {
    std::string why;
    EXPECT_FALSE(parse(body, why)) << body;
    EXPECT_EQ(why.rfind("malformed JSON: ", 0), 0u) << body << ": " << why;
    EXPECT_GT(why.size(), std::string_view("malformed JSON: ").size()) << body;
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
}

TEST(JsonChatt, ReadsUsernameAndMessage) {
    expect_fields(R"({"username":"alice","message":"hello"})", "alice", "hello");
    expect_fields(" {\n\t\"message\" : \"hi\" , \"username\" : \"bob\" }\r\n", "bob", "hi");
    expect_fields(R"({"username":"","message":""})", "", "");
}

TEST(JsonChatt, OtherKeysAndNestedKeysAreIgnored) {
    expect_fields(R"({"meta":{"username":"x","message":["y"]},"username":"a","n":1e400,)"
                  R"("big":123456789012345678901234567890,"t":true,"z":null,"message":"b"})",
                  "a", "b");
}

TEST(JsonChatt, LastOfDuplicateKeysWinsAsInPython) {
    expect_fields(R"({"username":"first","message":"m","username":"last"})", "last", "m");
    expect_rejected(R"({"username":"a","message":"m","username":7})",
                    "\"username\" is not a string");
}

TEST(JsonChatt, EscapesAndUtf8AreDecoded) {
    expect_fields(R"({"username":"\u00e9\n\"\\\/","message":"\ud83d\ude00"})", "\xC3\xA9\n\"\\/",
                  "\xF0\x9F\x98\x80");
    expect_fields(
        "{\"username\":\"\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3\",\"message\":\"\xE2\x80\xA8\"}",
        "\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3", "\xE2\x80\xA8");
}

// Python keeps a lone surrogate escape as is (the reference's INSERT then fails to encode it). yajl
// decodes a lone high surrogate to "?" and a lone low one to bytes PostgreSQL would refuse, which
// we reject.
TEST(JsonChatt, LoneSurrogateEscapes) {
    expect_rejected(R"({"username":"a\ud800b","message":"m"})",
                    "unpaired surrogate escape at byte 14");
    expect_rejected(R"({"username":"a\udc00b","message":"m"})",
                    "\"username\" contains an unpaired surrogate escape");
}

TEST(JsonChatt, MalformedBodies) {
    for (std::string_view body : {
             "",
             " ",
             "{",
             R"({"username":"a","message":"b")",
             R"({"username":"a","message":"b",})",
             R"({'username':'a','message':'b'})",
             R"({"username":"a" "message":"b"})",
             R"({username:"a"})",
             R"({"username":"a","message":"b"} x)",
             R"({"username":"a","message":"b"}{})",
             R"({"username":"a","message":"b"} /* comment */)",
             "{\"username\":\"\xFF\",\"message\":\"b\"}",              // invalid UTF-8
             "{\"username\":\"\xC3\",\"message\":\"b\"}",              // truncated UTF-8 sequence
             "{\"username\":\"\xED\xA0\x80\",\"message\":\"b\"}",      // UTF-8-encoded surrogate
             "{\"username\":\"\xC0\x80\",\"message\":\"b\"}",          // overlong NUL
             "{\"username\":\"\xE0\x80\xAF\",\"message\":\"b\"}",      // overlong "/"
             "{\"username\":\"\xF4\x90\x80\x80\",\"message\":\"b\"}",  // past U+10FFFF
             "{\"username\":\"\xF8\x88\x80\x80\x80\",\"message\":\"b\"}",  // 5-byte form
             "{\"username\":\"\x80\",\"message\":\"b\"}",  // stray continuation byte
             "{\"username\":\"a\tb\",\"message\":\"b\"}",  // raw control character in a string
             R"({"username":"\x41","message":"b"})",
             "[1,",
             "nul",
         }) {
        expect_malformed(body);
    }
}

TEST(JsonChatt, MalformedReasonsNameTheProblem) {
    expect_rejected("", "malformed JSON: parse error: premature EOF");
    expect_rejected("{\"username\":\"\xFF\"}", "malformed JSON: invalid UTF-8 at byte 13");
    expect_rejected(R"({"username":"a","message":"b"} x)",
                    "malformed JSON: parse error: trailing garbage");
    expect_rejected("{'a':1}", "malformed JSON: lexical error: invalid char in json text.");
}

TEST(JsonChatt, EmbeddedNulBytesAreMalformed) {
    expect_malformed("{\"username\":\"a\0b\",\"message\":\"m\"}"s);
    expect_malformed("{\"username\":\"a\",\"message\":\"m\"}\0"s);
    expect_malformed("\0{\"username\":\"a\",\"message\":\"m\"}"s);
}

TEST(JsonChatt, ReadsOnlyTheGivenBytes) {
    std::string buffer = R"({"username":"a","message":"b"}GARBAGE)";
    std::string why;
    EXPECT_TRUE(parse(std::string_view(buffer).substr(0, buffer.find('G')), why)) << why;
    expect_malformed(std::string_view());
}

TEST(JsonChatt, NotAnObject) {
    for (std::string_view body :
         {"[]", R"(["username","message"])", R"("username")", "42", "null", "true"}) {
        expect_rejected(body, "not a JSON object");
    }
}

TEST(JsonChatt, MissingKeys) {
    expect_rejected("{}", "missing key \"username\"");
    expect_rejected(R"({"username":"a"})", "missing key \"message\"");
    expect_rejected(R"({"message":"m","nested":{"username":"a"}})", "missing key \"username\"");
    expect_rejected(R"({"Username":"a","message":"m"})", "missing key \"username\"");
}

TEST(JsonChatt, ValuesThatAreNotStrings) {
    for (std::string_view value :
         {"1", "-0.5", "null", "true", "false", "[]", R"(["a"])", "{}", R"({"a":"b"})"}) {
        expect_rejected(R"({"username":)" + std::string(value) + R"(,"message":"m"})",
                        "\"username\" is not a string");
        expect_rejected(R"({"username":"a","message":)" + std::string(value) + "}",
                        "\"message\" is not a string");
    }
}

TEST(JsonChatt, EscapedNulCannotBeStored) {
    expect_rejected(R"({"username":"a\u0000b","message":"m"})",
                    "\"username\" contains a NUL character");
    expect_rejected(R"({"username":"a","message":"\u0000"})",
                    "\"message\" contains a NUL character");
}

// yajl's parser keeps its nesting on a heap stack, not the C stack, so a hostile body cannot
// overflow it.
TEST(JsonChatt, DeepNestingIsHandled) {
    const std::size_t depth = 100000;
    std::string body = R"({"deep":)" + std::string(depth, '[') + std::string(depth, ']')
                       + R"(,"username":"a","message":"b"})";
    std::string why;
    EXPECT_TRUE(parse(body, why)) << why;
    expect_malformed(std::string(depth, '['));
}

}  // namespace
}  // namespace chatterd

TEST(JsonChatt, LoneSurrogateEscapesAreRefused) {
    std::string why;
    for (const char* body :
         {R"({"username":"a","message":"\ud800"})", R"({"username":"a","message":"a\ud83d"})",
          R"({"username":"a","message":"\ud800\u0041bc"})",
          R"({"username":"\udc00","message":""})"}) {
        EXPECT_FALSE(chatterd::parse_chatt_json(body, why)) << body;
        EXPECT_NE(why.find("surrogate"), std::string::npos) << why;
    }
    std::optional<chatterd::ChattFields> fields =
        chatterd::parse_chatt_json(R"({"username":"\ud83d\ude00 \\ud800","message":"\\"})", why);
    ASSERT_TRUE(fields) << why;
    EXPECT_EQ(fields->username, "\xF0\x9F\x98\x80 \\ud800");
    EXPECT_EQ(fields->message, "\\");
}
