#include "handlers/select_rows.h"

#include "core/pg_copy.h"
#include "ngx/answer_blocks.h"
#include "ngx/pg_pool.h"
#include "ngx/reply.h"

#include <new>

namespace chatterd {
namespace {

constexpr std::size_t kMaxColumns = 8;

// The JSON answer being built for one request: nginx buffers that the writer fills as rows
// arrive. Lives in request-pool cleanup storage, destroyed with the request, when its buffers
// have been sent (or the client has gone) and their blocks can serve the next answer.
struct RowsAnswer final : JsonSink {
    RowsAnswer(ngx_http_request_t* request, const ColumnKind* column_kinds, std::size_t columns)
        : r(request), kinds(column_kinds), column_count(columns), rows(columns), writer(*this) {}
    ~RowsAnswer() {
        for (ngx_chain_t* link = head; link != nullptr; link = link->next) {
            give_back_answer_block(link->buf);
        }
    }
    RowsAnswer(const RowsAnswer&) = delete;
    RowsAnswer& operator=(const RowsAnswer&) = delete;

    JsonRoom more_room(char* written_end, std::size_t size) override;
    void complete(char* written_end) override;

    ngx_http_request_t* r;
    const ColumnKind* kinds;
    std::size_t column_count;
    CopyBinaryRows rows;
    bool refused = false;   // rows could not be taken: the answer is 500 whatever follows
    ngx_chain_t* head = nullptr;
    ngx_chain_t** tail = &head;
    ngx_buf_t* current = nullptr;
    off_t length = 0;
    JsonRowsWriter writer;  // last: it writes "[" through more_room on construction
};

void RowsAnswer::complete(char* written_end) {
    if (current == nullptr) return;
    length += reinterpret_cast<u_char*>(written_end) - current->last;
    current->last = reinterpret_cast<u_char*>(written_end);
}

// The rest of the current buffer when it is large enough, else a new one: an answer block (a
// row is small, but its room is its longest possible JSON), or for a row that would not fit
// one, a buffer of its own from the request pool.
JsonRoom RowsAnswer::more_room(char* written_end, std::size_t size) {
    if (written_end != nullptr) complete(written_end);
    if (current == nullptr || static_cast<std::size_t>(current->end - current->last) < size) {
        ngx_chain_t* link = ngx_alloc_chain_link(r->pool);
        if (link == nullptr) throw std::bad_alloc();
        ngx_buf_t* b = size <= kAnswerBlockSize ? take_answer_block(r->pool)
                                                : ngx_create_temp_buf(r->pool, size);
        if (b == nullptr) throw std::bad_alloc();
        link->buf = b;
        link->next = nullptr;
        *tail = link;
        tail = &link->next;
        current = b;
    }
    return JsonRoom{reinterpret_cast<char*>(current->last), reinterpret_cast<char*>(current->end)};
}

RowsAnswer* rows_answer(ngx_http_request_t* r) {
    return static_cast<RowsAnswer*>(ngx_http_get_module_ctx(r, ngx_http_chatterd_module));
}

bool refuse_rows(RowsAnswer* answer, const char* why) {
    ngx_log_error(NGX_LOG_ERR, answer->r->connection->log, 0, "chatterd: cannot build JSON: %s", why);
    answer->refused = true;
    return false;
}

// One CopyData message: its rows go into the JSON answer.
bool take_rows(ngx_http_request_t* r, std::string_view copy_data) {
    RowsAnswer* answer = rows_answer(r);
    Cell cells[kMaxColumns];
    answer->rows.feed(copy_data);
    try {
        while (true) {
            switch (answer->rows.next(cells)) {
            case CopyBinaryRows::Next::row:
                answer->writer.row(cells, answer->kinds, answer->column_count);
                break;
            case CopyBinaryRows::Next::message_done:
            case CopyBinaryRows::Next::end_of_data:
                return true;
            case CopyBinaryRows::Next::malformed:
                return refuse_rows(answer, "PostgreSQL sent rows that are not the binary COPY asked for");
            }
        }
    } catch (const std::exception& e) {
        return refuse_rows(answer, e.what());
    }
}

ngx_int_t answer_rows(ngx_http_request_t* r, const PgOutcome& outcome) {
    RowsAnswer* answer = rows_answer(r);
    if (answer->refused) return NGX_HTTP_INTERNAL_SERVER_ERROR;   // logged by refuse_rows
    if (outcome.result == nullptr) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: SELECT failed: %s", outcome.reason);
        return send_failure(r, Failure::unavailable);
    }
    if (PQresultStatus(outcome.result) != PGRES_COMMAND_OK) {
        OneLine line = pg_error_message(outcome.result);
        std::string_view message = line.view();
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: SELECT failed: %*s",
                      message.size(), message.data());
        if (pg_result_means_unavailable(outcome.result)) return send_failure(r, Failure::unavailable);
        return send_failure(r, Failure::internal, "Database error while reading chatts");
    }
    if (!answer->rows.complete()) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chatterd: the COPY ended before its end-of-data trailer");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    try {
        answer->writer.finish();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: cannot build JSON: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_json(r, NGX_HTTP_OK, answer->head, answer->length);
}

}  // namespace

ngx_int_t answer_with_rows(ngx_http_request_t* r, const RowsQuery& query) noexcept try {
    ngx_int_t rc = require_method(r, NGX_HTTP_GET | NGX_HTTP_HEAD);
    if (rc != NGX_DECLINED) return rc;
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) return rc;

    if (query.column_count > kMaxColumns) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(r->pool, sizeof(RowsAnswer));
    if (cleanup == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    auto* answer = new (cleanup->data) RowsAnswer(r, query.kinds, query.column_count);
    cleanup->handler = [](void* data) { static_cast<RowsAnswer*>(data)->~RowsAnswer(); };
    ngx_http_set_ctx(r, answer, ngx_http_chatterd_module);

    // A client that leaves while the query runs is noticed and its request released.
    r->read_event_handler = ngx_http_test_reading;
    pg_run(r, PgQuery{nullptr, query.copy_sql, 0, nullptr, &query.shared}, take_rows, answer_rows);
    return NGX_DONE;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
