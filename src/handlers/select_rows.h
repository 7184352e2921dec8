// GET endpoints: one query whose rows become the JSON array of arrays of API.md.
#pragma once

#include "core/json.h"
#include "ngx/ngx.h"

namespace chatterd {

// Runs copy_sql, a `COPY (SELECT ...) TO STDOUT (FORMAT binary)` of at most 8 columns, and
// answers 200 with its rows as JSON, converting each column as kinds says. Rows are taken as
// libpq reads them (core/pg_copy.h) and written straight into nginx buffers (the worker's
// answer blocks, ngx/answer_blocks.h), so the table is held in memory once, as JSON. Returns the content handler's code (NGX_DONE, or an error
// status).
ngx_int_t answer_with_rows(ngx_http_request_t* r, const char* copy_sql, const ColumnKind* kinds,
                           std::size_t column_count) noexcept;

}  // namespace chatterd
