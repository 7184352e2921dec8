// libFuzzer target for reading binary COPY rows (core/pg_copy) and writing them as JSON
// (core/json_out). Input: byte 0 gives the column count (1-8), byte 1 the kind of each column (2
// bits each: text, uuid, timestamp); the rest, cut at every 0xFE byte, is the sequence of CopyData
// messages. Whatever the bytes, reading must stop cleanly (rows, end of data or malformed), and the
// JSON written for the rows read must be one well-formed array with one inner array per row.
#include "core/json.h"
#include "core/pg_copy.h"

#include "check.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <yajl/yajl_parse.h>

namespace {

using chatterd::Cell;
using chatterd::ColumnKind;
using chatterd::CopyBinaryRows;
using chatterd::JsonRoom;
using chatterd::JsonRowsWriter;
using chatterd::JsonSink;

using chatterd_fuzz::check;

// Rooms exactly as large as asked, so that every row's bound is tested at its edge.
class TightSink final : public JsonSink {
public:
    JsonRoom more_room(char* written_end, std::size_t size) override {
        take(written_end);
        room_.assign(size, '\0');
        return JsonRoom{room_.data(), room_.data() + room_.size()};
    }
    void complete(char* written_end) override { take(written_end); }

    std::string text;

private:
    void take(char* written_end) {
        if (written_end != nullptr) {
            check(written_end >= room_.data() && written_end <= room_.data() + room_.size(),
                  "wrote past its room");
            text.append(room_.data(), written_end);
        }
    }
    std::string room_;
};

// Counts the inner arrays of a JSON array of arrays; -1 when the text is not one.
struct Shape {
    int depth = 0;
    long inner_arrays = 0;
    bool other = false;
};

int on_start_array(void* ctx) {
    auto* shape = static_cast<Shape*>(ctx);
    if (++shape->depth == 2) {
        ++shape->inner_arrays;
    }
    shape->other |= shape->depth > 2;
    return 1;
}

int on_end_array(void* ctx) {
    --static_cast<Shape*>(ctx)->depth;
    return 1;
}

int on_other(void* ctx) {
    static_cast<Shape*>(ctx)->other = true;
    return 1;
}

int on_scalar(void* ctx) {
    static_cast<Shape*>(ctx)->other |= static_cast<Shape*>(ctx)->depth != 2;
    return 1;
}

long inner_array_count(const std::string& json) {
    static const yajl_callbacks callbacks = {
        on_scalar,
        nullptr,
        nullptr,
        nullptr,
        nullptr,
        [](void* ctx, const unsigned char*, std::size_t) { return on_scalar(ctx); },
        [](void* ctx) { return on_other(ctx); },
        nullptr,
        [](void* ctx) { return on_other(ctx); },
        on_start_array,
        on_end_array,
    };
    Shape shape;
    yajl_handle parser = yajl_alloc(&callbacks, nullptr, &shape);
    yajl_config(parser, yajl_dont_validate_strings,
                1);  // PostgreSQL's text is passed through as it is
    bool ok = yajl_parse(parser, reinterpret_cast<const unsigned char*>(json.data()), json.size())
                  == yajl_status_ok
              && yajl_complete_parse(parser) == yajl_status_ok;
    yajl_free(parser);
    return ok && !shape.other ? shape.inner_arrays : -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const std::size_t columns = 1 + data[0] % 8;
    std::vector<ColumnKind> kinds;
    for (std::size_t i = 0; i < columns; ++i) {
        const int bits = (data[1] >> (2 * (i % 4))) & 3;
        kinds.push_back(bits == 1   ? ColumnKind::uuid
                        : bits == 2 ? ColumnKind::timestamp
                                    : ColumnKind::text);
    }
    std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
    std::vector<std::string> messages;  // kept alive while their rows are written
    while (!rest.empty()) {
        std::size_t cut = rest.find('\xFE');
        messages.emplace_back(rest.substr(0, cut));
        rest.remove_prefix(cut == std::string_view::npos ? rest.size() : cut + 1);
    }

    CopyBinaryRows reader(columns);
    TightSink sink;
    JsonRowsWriter writer(sink);
    std::vector<Cell> cells(columns);
    long rows = 0;
    for (const std::string& message : messages) {
        reader.feed(message);
        CopyBinaryRows::Next next;
        while ((next = reader.next(cells.data())) == CopyBinaryRows::Next::row) {
            try {
                writer.row(cells.data(), kinds.data(), columns);
            } catch (const std::runtime_error&) {
                return 0;  // a uuid or timestamp of the wrong size: refused, as documented
            }
            ++rows;
        }
        if (next == CopyBinaryRows::Next::malformed) {
            check(reader.next(cells.data()) == CopyBinaryRows::Next::malformed,
                  "recovered after malformed");
            return 0;
        }
    }
    writer.finish();
    check(inner_array_count(sink.text) == rows,
          "the JSON is not one array with an inner array per row");
    return 0;
}
