// GET /getimages: [[username, message, id, time, imageurl, videourl], ...], oldest first;
// with after= or limit= in the query string, a page of new rows (rows_page.h).
#include "handlers/handlers.h"
#include "handlers/rows_page.h"
#include "handlers/rows_query.h"

namespace chatterd {

ngx_int_t getimages_handler(ngx_http_request_t* r) noexcept {
    static const ColumnKind kinds[] = {ColumnKind::text,      ColumnKind::text, ColumnKind::uuid,
                                       ColumnKind::timestamp, ColumnKind::text, ColumnKind::text};
    // As getchatts_handler's query, with the media URLs.
    static const RowsQuery query{
        "COPY (SELECT username::text, message::text, id::uuid, "
        "time::timestamp, imageurl::text, videourl::text FROM chatts "
        "ORDER BY chatts.time ASC) TO STDOUT (FORMAT binary)",
        kinds, sizeof(kinds) / sizeof(kinds[0])};
    static RowsPage page{pg_prepared::page_images,
                         "username::text, message::text, id::uuid, time::timestamp, "
                         "imageurl::text, videourl::text",
                         kinds, sizeof(kinds) / sizeof(kinds[0])};
    if (asks_for_page(r)) return answer_with_page(r, page);
    return answer_with_rows(r, query);
}

}  // namespace chatterd
