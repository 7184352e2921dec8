#include "handlers/select_rows.h"

#include "core/pg_copy.h"
#include "ngx/pg_pool.h"
#include "ngx/reply.h"

#include <new>

namespace chatterd {
namespace {

constexpr std::size_t kJsonBufferSize = 64 * 1024;
constexpr std::size_t kMaxColumns = 8;

// The JSON answer being built for one request: nginx buffers filled as rows arrive.
// Lives in request-pool cleanup storage, destroyed with the request.
struct RowsAnswer {
    RowsAnswer(ngx_http_request_t* request, const ColumnKind* column_kinds, std::size_t columns)
        : r(request), kinds(column_kinds), column_count(columns), rows(columns),
          writer(append, this) {}

    static void append(void* self, const char* bytes, std::size_t len);

    ngx_http_request_t* r;
    const ColumnKind* kinds;
    std::size_t column_count;
    CopyBinaryRows rows;
    bool refused = false;   // rows could not be taken: the answer is 500 whatever follows
    ngx_chain_t* head = nullptr;
    ngx_chain_t** tail = &head;
    ngx_buf_t* current = nullptr;
    off_t length = 0;
    JsonRowsWriter writer;  // last: it writes "[" through append on construction
};

void RowsAnswer::append(void* self, const char* bytes, std::size_t len) {
    auto* answer = static_cast<RowsAnswer*>(self);
    answer->length += static_cast<off_t>(len);
    while (len > 0) {
        ngx_buf_t* b = answer->current;
        if (b == nullptr || b->last == b->end) {
            b = ngx_create_temp_buf(answer->r->pool, kJsonBufferSize);
            ngx_chain_t* link = ngx_alloc_chain_link(answer->r->pool);
            if (b == nullptr || link == nullptr) throw std::bad_alloc();
            link->buf = b;
            link->next = nullptr;
            *answer->tail = link;
            answer->tail = &link->next;
            answer->current = b;
        }
        std::size_t n = std::min(len, static_cast<std::size_t>(b->end - b->last));
        b->last = ngx_cpymem(b->last, bytes, n);
        bytes += n;
        len -= n;
    }
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
    try {
        answer->writer.finish();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: cannot build JSON: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_json(r, NGX_HTTP_OK, answer->head, answer->length);
}

}  // namespace

ngx_int_t answer_with_rows(ngx_http_request_t* r, const char* copy_sql, const ColumnKind* kinds,
                           std::size_t column_count) noexcept try {
    ngx_int_t rc = require_method(r, NGX_HTTP_GET | NGX_HTTP_HEAD);
    if (rc != NGX_DECLINED) return rc;
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) return rc;

    if (column_count > kMaxColumns) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(r->pool, sizeof(RowsAnswer));
    if (cleanup == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    auto* answer = new (cleanup->data) RowsAnswer(r, kinds, column_count);
    cleanup->handler = [](void* data) { static_cast<RowsAnswer*>(data)->~RowsAnswer(); };
    ngx_http_set_ctx(r, answer, ngx_http_chatterd_module);

    // A client that leaves while the query runs is noticed and its request released.
    r->read_event_handler = ngx_http_test_reading;
    pg_run(r, PgQuery{nullptr, copy_sql, 0, nullptr, true}, take_rows, answer_rows);
    return NGX_DONE;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
