// GET /getchatts: [[username, message, id, time], ...], oldest first.
#include "handlers/handlers.h"
#include "handlers/select_rows.h"

namespace chatterd {

ngx_int_t getchatts_handler(ngx_http_request_t* r) noexcept {
    static const ColumnKind kinds[] = {ColumnKind::text, ColumnKind::text, ColumnKind::text,
                                       ColumnKind::timestamp};
    return answer_with_rows(r, "chatterd_getchatts",
                            "SELECT username, message, id, time FROM chatts ORDER BY time ASC",
                            kinds, sizeof(kinds) / sizeof(kinds[0]));
}

}  // namespace chatterd
