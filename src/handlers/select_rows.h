// GET endpoints: one SELECT whose rows become the JSON array of arrays of API.md.
#pragma once

#include "core/json.h"
#include "ngx/ngx.h"

namespace chatterd {

// Runs sql (no parameters; prepared per connection as `statement`) and answers 200 with its
// rows as JSON, converting each column as kinds says. Rows are read one at a time (libpq
// single-row mode) and written straight into nginx buffers, so the table is held in memory
// once, as JSON. Returns the content handler's code (NGX_DONE, or an error status).
ngx_int_t answer_with_rows(ngx_http_request_t* r, const char* statement, const char* sql,
                           const ColumnKind* kinds, std::size_t column_count) noexcept;

}  // namespace chatterd
