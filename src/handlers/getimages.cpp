// GET /getimages: [[username, message, id, time, imageurl, videourl], ...], oldest first.
#include "handlers/handlers.h"
#include "handlers/select_rows.h"

namespace chatterd {

ngx_int_t getimages_handler(ngx_http_request_t* r) noexcept {
    static const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::text,      ColumnKind::text,
                                       ColumnKind::timestamp, ColumnKind::text, ColumnKind::text};
    return answer_with_rows(r, "chatterd_getimages",
                            "SELECT username, message, id, time, imageurl, videourl FROM chatts "
                            "ORDER BY time ASC",
                            kinds, sizeof(kinds) / sizeof(kinds[0]));
}

}  // namespace chatterd
