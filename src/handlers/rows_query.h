// GET endpoints: one query whose rows become the JSON array of arrays of API.md.
#pragma once

#include "core/json.h"
#include "ngx/pg_pool.h"
#include "ngx/reply.h"

#include <new>
#include <utility>

namespace chatterd {

// A GET endpoint's query: a `COPY (SELECT ...) TO STDOUT (FORMAT binary)` of at most 8
// columns, each converted to JSON as kinds says. Requests that wait for a connection together
// share one run of it (PgBatch, shared).
struct RowsQuery {
    const char* copy_sql;
    const ColumnKind* kinds;
    std::size_t column_count;
    PgBatch shared{PgBatch::Kind::shared, nullptr, nullptr};
};

// Runs query and answers 200 with its rows as JSON. Rows are taken as libpq reads them
// (core/pg_copy.h) and written straight into nginx buffers (the worker's answer blocks,
// ngx/answer_blocks.h), so the table is held in memory once per answer, as JSON. Returns the
// content handler's code (NGX_DONE, or an error status).
ngx_int_t answer_with_rows(ngx_http_request_t* r, const RowsQuery& query) noexcept;

// 503 for an answer refused by chatterd_answer_memory_max (RowsJson::create), told at info.
ngx_int_t refuse_over_memory_bound(ngx_http_request_t* r);

// A reading statement that failed (statement: what it was, for the log line): logged with the
// server's message, 503 when the database is not available, else 500.
ngx_int_t answer_read_failed(ngx_http_request_t* r, const PGresult* result, const char* statement);

// The start of a GET or HEAD that reads chatts: 405 for another method, the body discarded,
// and a Context made as the request's context, in request-pool cleanup storage (destroyed with
// the request). Null, with the content handler's code in rc, when the request is answered.
template <typename Context, typename... Args>
Context* start_read(ngx_http_request_t* r, ngx_int_t& rc, Args&&... args) {
    rc = require_method(r, NGX_HTTP_GET | NGX_HTTP_HEAD);
    if (rc != NGX_DECLINED) return nullptr;
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) return nullptr;
    rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(r->pool, sizeof(Context));
    if (cleanup == nullptr) return nullptr;
    auto* context = new (cleanup->data) Context(std::forward<Args>(args)...);
    cleanup->handler = [](void* data) noexcept { static_cast<Context*>(data)->~Context(); };
    ngx_http_set_ctx(r, context, ngx_http_chatterd_module);
    // A client that leaves while the query runs is noticed and its request released.
    r->read_event_handler = ngx_http_test_reading;
    return context;
}

}  // namespace chatterd
