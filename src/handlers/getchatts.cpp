// GET /getchatts: [[username, message, id, time], ...], oldest first; with after= or limit= in
// the query string, a page of new rows (rows_page.h).
#include "handlers/handlers.h"
#include "handlers/rows_page.h"
#include "handlers/rows_query.h"

namespace chatterd {

ngx_int_t getchatts_handler(ngx_http_request_t* r) noexcept {
    static const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::text, ColumnKind::uuid,
                                       ColumnKind::timestamp};
    // The casts pin the binary form of each column (they cost nothing on schema.sql's types);
    // ORDER BY names the table's column, not the cast of the same name.
    static const RowsQuery query{
        "COPY (SELECT username::text, message::text, id::uuid, "
        "time::timestamp FROM chatts ORDER BY chatts.time ASC) "
        "TO STDOUT (FORMAT binary)",
        kinds, sizeof(kinds) / sizeof(kinds[0])};
    static RowsPage page{pg_prepared::page_chatts,
                         "username::text, message::text, id::uuid, time::timestamp", kinds,
                         sizeof(kinds) / sizeof(kinds[0])};
    if (asks_for_page(r)) return answer_with_page(r, page);
    return answer_with_rows(r, query);
}

}  // namespace chatterd
