// Pages of new rows: GET /getimages?after=<cursor>&limit=N (and /getchatts), docs/API.md. The
// rows a client has not been given yet, at most N of them, in the JSON of the full listing,
// with the next cursor in Chatter-Cursor and Link. The cursor (core/list_cursor.h) holds
// PostgreSQL snapshots, so a transaction that commits after a later one is still given, once.
#pragma once

#include "core/json.h"
#include "ngx/ngx.h"

#include <string>

namespace chatterd {

// An endpoint's page: its columns as its full listing selects them (the same casts, so the
// same JSON), under its own prepared statement.
struct RowsPage {
    const char* statement_name;  // one of kPreparedNames
    const char* select_list;     // "username::text, message::text, ..."
    const ColumnKind* kinds;
    std::size_t column_count;
    std::string sql = {};  // the statement, made from select_list by the first page asked for
};

// Whether r's query string asks for a page (core/list_cursor.h: asks_for_page).
bool asks_for_page(ngx_http_request_t* r) noexcept;

// Answers a GET or HEAD whose query string asks for a page: 400 with the reason when a parameter is refused,
// else 200 with the page and its cursor (or 503/500 as the full listing). Returns the content
// handler's code.
ngx_int_t answer_with_page(ngx_http_request_t* r, RowsPage& page) noexcept;

}  // namespace chatterd
