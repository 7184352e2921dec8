#include "ngx/rows_json.h"

#include "core/etag.h"
#include "ngx/answer_blocks.h"
#include "ngx/metrics.h"

#include <new>

namespace chatterd {

namespace {
constexpr std::size_t kMaxColumns = 8;

// Every answer of the worker: a table is held as JSON until its slowest reader has it, so a few
// slow clients of a big table could hold the worker's memory without this bound.
std::size_t worker_bound = 0;
std::size_t worker_held = 0;

// Thrown when the next piece would cross the bound.
struct OverMemoryBound : std::bad_alloc {
    const char* what() const noexcept override {
        return "the answers of this worker would hold more than chatterd_answer_memory_max";
    }
};
}  // namespace

void RowsJson::bound_worker_memory(std::size_t bytes) noexcept {
    worker_bound = bytes;
}

RowsJson* RowsJson::create(const ColumnKind* kinds, std::size_t column_count, ngx_log_t* log,
                           bool& over_memory_bound, Source source) noexcept {
    if (column_count > kMaxColumns) return nullptr;
    try {
        return new RowsJson(kinds, column_count, source);
    } catch (const OverMemoryBound&) {
        over_memory_bound = true;
        return nullptr;
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: cannot start a JSON answer: %s; 503",
                      e.what());
        return nullptr;
    }
}

RowsJson::RowsJson(const ColumnKind* kinds, std::size_t column_count, Source source)
    : kinds_(kinds),
      column_count_(column_count),
      source_(source),
      rows_(column_count),
      writer_(*this) {}

RowsJson::~RowsJson() {
    for (const Piece& piece : pieces_) {
        add_answer_bytes(-(piece.end - piece.start));
        worker_held -= static_cast<std::size_t>(piece.end - piece.start);
        if (piece.answer_block) {
            give_back_answer_block(piece.start);
        } else {
            ngx_free(piece.start);
        }
    }
}

void RowsJson::let_go() noexcept {
    if (--holders_ == 0) delete this;
}

void RowsJson::complete(char* written_end) {
    if (pieces_.empty()) return;
    Piece& current = pieces_.back();
    length_ += reinterpret_cast<u_char*>(written_end) - current.last;
    current.last = reinterpret_cast<u_char*>(written_end);
}

// The rest of the current piece when it is large enough, else a new one: an answer block (a
// row is small, but its room is its longest possible JSON), or for a row that would not fit
// one, memory of its own.
JsonRoom RowsJson::more_room(char* written_end, std::size_t size) {
    if (written_end != nullptr) complete(written_end);
    if (pieces_.empty()
        || static_cast<std::size_t>(pieces_.back().end - pieces_.back().last) < size) {
        pieces_.reserve(pieces_.size() + 1);  // may throw before the memory is taken
        bool answer_block = size <= kAnswerBlockSize;
        std::size_t piece_size = answer_block ? kAnswerBlockSize : size;
        if (worker_bound > 0 && worker_held + piece_size > worker_bound) {
            over_memory_bound_ = true;
            throw OverMemoryBound();
        }
        // The cycle's log: the answer may outlive the request that started it.
        auto* start = answer_block ? take_answer_block(ngx_cycle->log)
                                   : static_cast<u_char*>(ngx_alloc(size, ngx_cycle->log));
        if (start == nullptr) throw std::bad_alloc();
        pieces_.push_back(
            Piece{start, start, start + (answer_block ? kAnswerBlockSize : size), answer_block});
        add_answer_bytes(pieces_.back().end - start);
        worker_held += piece_size;
    }
    Piece& current = pieces_.back();
    return JsonRoom{reinterpret_cast<char*>(current.last), reinterpret_cast<char*>(current.end)};
}

bool RowsJson::refuse(ngx_log_t* log, const char* why) noexcept {
    if (!over_memory_bound_)
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: cannot build JSON: %s", why);
    refused_ = true;
    return false;
}

bool RowsJson::take(std::string_view copy_data, ngx_log_t* log) noexcept {
    if (refused_) return false;
    Cell cells[kMaxColumns];
    rows_.feed(copy_data);
    try {
        while (true) {
            switch (rows_.next(cells)) {
            case CopyBinaryRows::Next::row: writer_.row(cells, kinds_, column_count_); break;
            case CopyBinaryRows::Next::message_done:
            case CopyBinaryRows::Next::end_of_data: return true;
            case CopyBinaryRows::Next::malformed:
                return refuse(log, "PostgreSQL sent rows that are not the binary COPY asked for");
            }
        }
    } catch (const std::exception& e) {
        return refuse(log, e.what());
    }
}

bool RowsJson::take_row(const Cell* cells, ngx_log_t* log) noexcept {
    if (refused_) return false;
    try {
        writer_.row(cells, kinds_, column_count_);
        return true;
    } catch (const std::exception& e) {
        return refuse(log, e.what());
    }
}

bool RowsJson::finish(ngx_log_t* log) noexcept {
    if (refused_) return false;  // logged when refused
    if (finished_) return true;
    if (source_ == Source::copy && !rows_.complete()) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "chatterd: the COPY ended before its end-of-data trailer");
        refused_ = true;
        return false;
    }
    try {
        writer_.finish();
        EtagHasher hasher;
        each_text([&hasher](std::string_view text) {
            hasher.update(text);
            return true;
        });
        etag_ = hasher.finish();
    } catch (const std::exception& e) {
        return refuse(log, e.what());
    }
    finished_ = true;
    return true;
}

ngx_chain_t* RowsJson::body(ngx_pool_t* pool) const noexcept {
    ngx_chain_t* head = nullptr;
    ngx_chain_t** tail = &head;
    for (const Piece& piece : pieces_) {
        if (piece.last == piece.start) continue;
        ngx_chain_t* link = ngx_alloc_chain_link(pool);
        auto* b = static_cast<ngx_buf_t*>(ngx_pcalloc(pool, sizeof(ngx_buf_t)));
        if (link == nullptr || b == nullptr) return nullptr;
        b->start = b->pos = piece.start;
        b->end = b->last = piece.last;
        b->memory = 1;  // read-only: other requests send the same bytes
        link->buf = b;
        link->next = nullptr;
        *tail = link;
        tail = &link->next;
    }
    return head;
}

}  // namespace chatterd
