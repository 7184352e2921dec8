#include "handlers/select_rows.h"

#include "ngx/pg_pool.h"
#include "ngx/reply.h"

#include <new>

namespace chatterd {
namespace {

constexpr std::size_t kJsonBufferSize = 64 * 1024;

// The JSON answer being built for one request: nginx buffers filled by yajl as rows arrive.
// Lives in request-pool cleanup storage, destroyed with the request.
struct RowsAnswer {
    RowsAnswer(ngx_http_request_t* request, const ColumnKind* column_kinds, std::size_t columns)
        : r(request), kinds(column_kinds), column_count(columns), writer(append, this) {}

    static void append(void* self, const char* bytes, std::size_t len);

    ngx_http_request_t* r;
    const ColumnKind* kinds;
    std::size_t column_count;
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

bool take_row(ngx_http_request_t* r, const PGresult* row) {
    RowsAnswer* answer = rows_answer(r);
    Cell cells[8];
    std::size_t count = std::min<std::size_t>(answer->column_count, 8);
    for (std::size_t i = 0; i < count; i++) {
        int col = static_cast<int>(i);
        cells[i] = Cell{PQgetvalue(row, 0, col), static_cast<std::size_t>(PQgetlength(row, 0, col)),
                        PQgetisnull(row, 0, col) != 0};
    }
    try {
        answer->writer.row(cells, answer->kinds, count);
        return true;
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: cannot build JSON: %s", e.what());
        return false;
    }
}

ngx_int_t answer_rows(ngx_http_request_t* r, const PgOutcome& outcome) {
    if (outcome.result == nullptr) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: SELECT failed: %s", outcome.reason);
        return send_failure(r, Failure::unavailable);
    }
    if (PQresultStatus(outcome.result) != PGRES_TUPLES_OK) {
        OneLine line = pg_error_message(outcome.result);
        std::string_view message = line.view();
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: SELECT failed: %*s",
                      message.size(), message.data());
        if (pg_result_means_unavailable(outcome.result)) return send_failure(r, Failure::unavailable);
        return send_failure(r, Failure::internal, "Database error while reading chatts");
    }
    RowsAnswer* answer = rows_answer(r);
    try {
        answer->writer.finish();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: cannot build JSON: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_json(r, NGX_HTTP_OK, answer->head, answer->length);
}

}  // namespace

ngx_int_t answer_with_rows(ngx_http_request_t* r, const char* statement, const char* sql,
                           const ColumnKind* kinds, std::size_t column_count) noexcept try {
    ngx_int_t rc = require_method(r, NGX_HTTP_GET | NGX_HTTP_HEAD);
    if (rc != NGX_DECLINED) return rc;
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) return rc;

    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(r->pool, sizeof(RowsAnswer));
    if (cleanup == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    auto* answer = new (cleanup->data) RowsAnswer(r, kinds, column_count);
    cleanup->handler = [](void* data) { static_cast<RowsAnswer*>(data)->~RowsAnswer(); };
    ngx_http_set_ctx(r, answer, ngx_http_chatterd_module);

    // A client that leaves while the query runs is noticed and its request released.
    r->read_event_handler = ngx_http_test_reading;
    pg_run(r, PgQuery{statement, sql, 0, nullptr, true}, take_row, answer_rows);
    return NGX_DONE;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
