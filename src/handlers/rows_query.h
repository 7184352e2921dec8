// GET endpoints: one query whose rows become the JSON array of arrays of API.md.
#pragma once

#include "core/json.h"
#include "ngx/pg_pool.h"

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

}  // namespace chatterd
