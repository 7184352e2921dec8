// The JSON answer of one run of a rows query (getchatts, getimages): built once, as the binary
// COPY rows arrive, into blocks the worker keeps (ngx/answer_blocks.h), and sent to every
// request that shared the run (PgBatch, shared). Heap memory with a count of the requests that
// hold it: the last one to let go gives the blocks back.
#pragma once

#include "core/json.h"
#include "core/pg_copy.h"
#include "ngx/ngx.h"

#include <string>
#include <vector>

namespace chatterd {

class RowsJson final : JsonSink {
public:
    // Where the rows come from: binary COPY data (take), or a page's cells, row by row, from a
    // PGresult in binary format (take_row).
    enum class Source { copy, cells };
    // A new answer, held once; null when out of memory (logged) or beyond the worker's bound
    // (over_memory_bound set; the caller tells it, at info: it is the client's load, not a
    // fault). kinds must outlive it.
    static RowsJson* create(const ColumnKind* kinds, std::size_t column_count, ngx_log_t* log,
                            bool& over_memory_bound, Source source = Source::copy) noexcept;
    // The bound on the memory all answers of this worker hold together
    // (chatterd_answer_memory_max; 0: none), set when the worker starts.
    static void bound_worker_memory(std::size_t bytes) noexcept;
    // Whether the answer was refused because it would have crossed that bound.
    bool over_memory_bound() const { return over_memory_bound_; }
    void hold() noexcept { holders_++; }
    void let_go() noexcept;

    // One CopyData message: its rows are written as JSON. False when they could not be (logged,
    // but for the memory bound: over_memory_bound()): the answer is refused from then on.
    bool take(std::string_view copy_data, ngx_log_t* log) noexcept;
    // One row (Source::cells), column_count cells; false as take.
    bool take_row(const Cell* cells, ngx_log_t* log) noexcept;
    // Ends the array once the COPY is over (or the last row was taken); false (and logged) when
    // the rows are incomplete or were refused. Every request of the run calls it; the text is
    // finished once.
    bool finish(ngx_log_t* log) noexcept;

    // Buffers over the text for one request (allocated in its pool, the memory not copied), or
    // null when out of memory. The request must hold the answer while they are being sent.
    ngx_chain_t* body(ngx_pool_t* pool) const noexcept;
    off_t length() const { return length_; }
    // The finished text's strong ETag (core/etag.h), computed once by finish().
    const std::string& etag() const { return etag_; }
    // Calls write(text) for each piece of the finished text, in order, while it returns true;
    // whether every call did.
    template <typename Write>
    bool each_text(Write write) const {
        for (const Piece& piece : pieces_) {
            std::string_view text(reinterpret_cast<const char*>(piece.start),
                                  static_cast<std::size_t>(piece.last - piece.start));
            if (!text.empty() && !write(text)) return false;
        }
        return true;
    }

    RowsJson(const RowsJson&) = delete;
    RowsJson& operator=(const RowsJson&) = delete;

private:
    RowsJson(const ColumnKind* kinds, std::size_t column_count, Source source);
    ~RowsJson();

    JsonRoom more_room(char* written_end, std::size_t size) override;
    void complete(char* written_end) override;
    bool refuse(ngx_log_t* log, const char* why) noexcept;

    // A region of text: an answer block, or, for a row that would not fit one, its own memory.
    struct Piece {
        u_char* start;
        u_char* last;
        u_char* end;
        bool answer_block;
    };

    const ColumnKind* kinds_;
    std::size_t column_count_;
    Source source_;
    std::size_t holders_ = 1;
    std::vector<Piece> pieces_;
    off_t length_ = 0;
    CopyBinaryRows rows_;
    bool refused_ = false;
    bool over_memory_bound_ = false;
    bool finished_ = false;
    std::string etag_;
    JsonRowsWriter writer_;  // last: it writes "[" through more_room on construction
};

}  // namespace chatterd
