// JSON in and out of chatterd: the rows of getchatts/getimages and error bodies out (json_out.cpp,
// a writer of our own: escaping strings was the largest cost of a big getimages with yajl_gen), the
// postchatt body in (json.cpp, yajl's parser).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/cell.h"
#include "core/timestamp.h"

namespace chatterd {

// Memory that JsonRowsWriter writes its text into directly, a region at a time (getimages: nginx
// buffers).
struct JsonRoom {
    char* begin;
    char* end;
};
class JsonSink {
public:
    // The text so far ends at written_end, in the room last given (null before the first): a room
    // of at least size bytes for what follows. May throw; the writer must not be used again after
    // that.
    virtual JsonRoom more_room(char* written_end, std::size_t size) = 0;
    // The text is complete and ends at written_end, in the room last given.
    virtual void complete(char* written_end) = 0;

protected:
    ~JsonSink() = default;
};

// Writes a JSON array of arrays into a JsonSink, byte for byte as Python's JSONResponse writes it
// (json.dumps with ensure_ascii=False and separators "," and ":"): UTF-8 left as is, "/" not
// escaped, '"' and '\\' escaped, \n \r \t \b \f as such and the other control characters as \u00xx
// (lower-case hex). SQL NULL becomes null; uuid cells are written in their usual form
// ("5b0c2f6e-0000-4000-8000-000000000001"), timestamp cells with IsoTimestamps; a uuid or timestamp
// cell of the wrong length throws std::runtime_error. Strings are not UTF-8-validated: PostgreSQL
// with a UTF8 database only returns valid UTF-8, and anything else is passed through byte for byte.
// Each row is written straight into the sink's memory, in one room that holds its longest possible
// JSON (6 bytes per text byte): no copy of a row or of the answer is made.
class JsonRowsWriter {
public:
    explicit JsonRowsWriter(JsonSink& sink);  // starts with "["
    JsonRowsWriter(const JsonRowsWriter&) = delete;
    JsonRowsWriter& operator=(const JsonRowsWriter&) = delete;

    void row(const Cell* cells, const ColumnKind* kinds,
             std::size_t count);  // writes one inner array
    void finish();                // writes "]", completes the sink

private:
    void reserve(std::size_t size);
    void refuse_after_finish() const;

    char* write_cell(char* out, const Cell& cell, ColumnKind kind);

    JsonSink& sink_;
    IsoTimestamps timestamps_;
    char* next_ = nullptr;  // where the next byte goes, in the current room
    char* room_end_ = nullptr;
    bool any_row_ = false;
    bool finished_ = false;
};

// The postchatt body: a JSON object with string values for "username" and "message"; other keys are
// ignored and, as with Python's json.loads, the last of duplicate keys wins.
struct ChattFields {
    std::string username;
    std::string message;
};

// Returns the fields, or std::nullopt with why set to a short operator-readable reason: "malformed
// JSON: <yajl's message>" (also for invalid UTF-8 and trailing garbage), "not a JSON object",
// "missing key \"message\"",
// "\"username\" is not a string", "\"username\" contains a NUL character" (libpq takes text
// parameters as NUL-terminated strings, so such a value could not be stored as sent), "\"username\"
// contains an unpaired surrogate escape" (PostgreSQL would refuse the UTF-8 it decodes to). UTF-8
// is checked strictly (no overlong forms, surrogates or code points past U+10FFFF), as PostgreSQL
// checks it.
std::optional<ChattFields> parse_chatt_json(std::string_view body, std::string& why);

// A JSON string literal for an error body, escaped as JsonRowsWriter escapes:
// json_string("Unprocessable entity") == "\"Unprocessable entity\"".
std::string json_string(std::string_view text);

}  // namespace chatterd
