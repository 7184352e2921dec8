#include "handlers/rows_page.h"

#include "core/list_cursor.h"
#include "handlers/rows_query.h"
#include "ngx/list_cache.h"
#include "ngx/pg_pool.h"
#include "ngx/reply.h"
#include "ngx/rows_json.h"

#include <cstring>
#include <new>

namespace chatterd {
namespace {

// The page's statement: a first row holding the statement's own snapshot (pg_current_snapshot()
// is the active snapshot, which in READ COMMITTED is the one this statement reads with), then
// the rows of two parts, each in (xact, id) order and each bounded by the index on (xact, id):
//   1: when the cursor pins a snapshot ($2): visible in it, not in seen ($1), after last ($3,
//      $4), the rest of the part a full page stopped in;
//   2: visible now, not in the cursor's newest snapshot.
// $5 is the limit plus one: a row beyond the limit says the page stopped with rows left. Every
// transaction not visible in a snapshot is at or after its xmin, so the scan starts there: the
// cost is that of the new rows, not of the table.
std::string page_sql(const char* columns, std::size_t column_count) {
    std::string nulls;
    for (std::size_t i = 0; i < column_count; i++) nulls += ", NULL";
    const std::string rows =
        std::string("xact, id::uuid, NULL, ") + columns + " FROM chatts WHERE ";
    return "SELECT 0, NULL::xid8, NULL::uuid, pg_current_snapshot()::text" + nulls
           + " UNION ALL (SELECT 1, " + rows
           + "$2::pg_snapshot IS NOT NULL AND xact >= $3::xid8 "
             "AND xact < pg_snapshot_xmax($2::pg_snapshot) "
             "AND (xact, id::uuid) > ($3::xid8, $4::uuid) "
             "AND pg_visible_in_snapshot(xact, $2::pg_snapshot) "
             "AND NOT pg_visible_in_snapshot(xact, $1::pg_snapshot) "
             "ORDER BY xact, id::uuid LIMIT $5)"
             " UNION ALL (SELECT 2, "
           + rows
           + "xact >= pg_snapshot_xmin(coalesce($2, $1)::pg_snapshot) "
             "AND NOT pg_visible_in_snapshot(xact, coalesce($2, $1)::pg_snapshot) "
             "ORDER BY xact, id::uuid LIMIT $5)"
             " ORDER BY 1, 2, 3 LIMIT $5 + 1";
}

// The result's columns before the endpoint's own.
enum PageColumn { kPart, kXact, kId, kSnapshot, kFirstRowColumn };
constexpr int kParams = 5;

// A request's page: what it asked for and the statement's parameters, in request-pool cleanup
// storage (it holds strings).
struct PageAsk {
    explicit PageAsk(RowsPage& page) : page(page) {}
    ~PageAsk() {
        if (json != nullptr) json->let_go();
    }
    PageAsk(const PageAsk&) = delete;
    PageAsk& operator=(const PageAsk&) = delete;

    RowsPage& page;
    PageRequest request;
    std::string texts[kParams];
    const char* params[kParams] = {};
    RowsJson* json = nullptr;
};

PageAsk* page_ask(ngx_http_request_t* r) {
    return static_cast<PageAsk*>(ngx_http_get_module_ctx(r, ngx_http_chatterd_module));
}

std::string uuid_text(const std::array<unsigned char, 16>& id) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (std::size_t i = 0; i < id.size(); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
        text += digits[id[i] >> 4];
        text += digits[id[i] & 0x0f];
    }
    return text;
}

void set_params(PageAsk& ask) {
    const ListCursor& after = ask.request.after;
    ask.texts[0] = snapshot_text(after.seen);
    if (after.pinned) {
        ask.texts[1] = snapshot_text(*after.pinned);
        ask.texts[2] = std::to_string(after.last.xact);
        ask.texts[3] = uuid_text(after.last.id);
    }
    ask.texts[4] = std::to_string(ask.request.limit + 1);
    for (int i = 0; i < kParams; i++) {
        bool null = !after.pinned && i >= 1 && i <= 3;
        ask.params[i] = null ? nullptr : ask.texts[i].c_str();
    }
}

std::uint64_t big_endian(const char* bytes, int length) {
    std::uint64_t value = 0;
    for (int i = 0; i < length; i++) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

// A result row's cell, binary as core/cell.h says.
Cell cell(const PGresult* result, int row, int column) {
    return Cell{PQgetvalue(result, row, column),
                static_cast<std::size_t>(PQgetlength(result, row, column)),
                PQgetisnull(result, row, column) != 0};
}

// The part and key of a data row; false when the columns are not what the statement selects.
bool row_place(const PGresult* result, int row, PagePart& part, PageKey& key) {
    Cell part_cell = cell(result, row, kPart);
    Cell xact = cell(result, row, kXact);
    Cell id = cell(result, row, kId);
    if (part_cell.len != 4 || xact.len != 8 || id.len != key.id.size() || xact.is_null)
        return false;
    std::uint64_t number = big_endian(part_cell.data, 4);
    if (number != 1 && number != 2) return false;
    part = number == 1 ? PagePart::pinned_rest : PagePart::newer;
    key.xact = big_endian(xact.data, 8);
    std::memcpy(key.id.data(), id.data, key.id.size());
    return true;
}

// The cursor's headers: Chatter-Cursor, and Link to the next page at this request's path.
bool add_cursor_headers(ngx_http_request_t* r, const std::string& cursor, unsigned limit) {
    std::string link = "<" + std::string(reinterpret_cast<const char*>(r->uri.data), r->uri.len)
                       + "?after=" + cursor + "&limit=" + std::to_string(limit) + ">; rel=\"next\"";
    return add_header(r, "Chatter-Cursor", cursor) != nullptr
           && add_header(r, "Link", link) != nullptr;
}

// A result that is not the statement's shape: the module's mistake or a changed schema.
ngx_int_t refuse_result(ngx_http_request_t* r, const char* why) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: %s: the page's result %s; 500",
                  endpoint_name(loc_conf(r)->endpoint), why);
    return send_failure(r, Failure::internal, "Database error while reading chatts");
}

ngx_int_t answer_page_rows(ngx_http_request_t* r, const PGresult* result) {
    PageAsk& ask = *page_ask(r);
    const RowsPage& page = ask.page;
    int columns = kFirstRowColumn + static_cast<int>(page.column_count);
    int rows = PQntuples(result);
    PgSnapshot now;
    Cell snapshot = rows > 0 ? cell(result, 0, kSnapshot) : Cell{nullptr, 0, true};
    if (PQnfields(result) != columns || snapshot.is_null
        || !parse_snapshot_text(std::string_view(snapshot.data, snapshot.len), now)) {
        return refuse_result(r, "has no snapshot first");
    }
    bool over_bound = false;
    ask.json = RowsJson::create(page.kinds, page.column_count, r->connection->log, over_bound,
                                RowsJson::Source::cells);
    if (ask.json == nullptr) {
        return over_bound ? refuse_over_memory_bound(r) : send_failure(r, Failure::unavailable);
    }
    int given = std::min(rows - 1, static_cast<int>(ask.request.limit));
    PagePart part = PagePart::newer;
    PageKey last;
    Cell cells[8];
    for (int row = 1; row <= given; row++) {
        if (!row_place(result, row, part, last)) return refuse_result(r, "has a malformed row");
        for (std::size_t i = 0; i < page.column_count; i++) {
            cells[i] = cell(result, row, kFirstRowColumn + static_cast<int>(i));
        }
        if (!ask.json->take_row(cells, r->connection->log)) {
            return ask.json->over_memory_bound() ? refuse_over_memory_bound(r)
                                                 : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    bool full = rows - 1 > given;
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "chatterd: page of %d rows (limit %ui), %s", given,
                   static_cast<ngx_uint_t>(ask.request.limit),
                   full ? "full: more rows wait" : "caught up");
    std::string cursor = encode_cursor(next_cursor(ask.request.after, now, full, part, last));
    if (cursor.empty()) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chatterd: %s: the snapshot holds too many transactions in progress for a "
                      "cursor of %uz characters; 503",
                      endpoint_name(loc_conf(r)->endpoint), kMaxCursorText);
        return send_failure(r, Failure::unavailable);
    }
    // A page is a listing too: the cache in front of a client revalidates it by its ETag.
    if (!ask.json->finish(r->connection->log) || !add_cursor_headers(r, cursor, ask.request.limit)
        || !set_listing_validators(r, ask.json->etag()))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    ngx_chain_t* body = ask.json->body(r->pool);
    if (body == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    return send_json(r, NGX_HTTP_OK, body, ask.json->length());
}

ngx_int_t answer_page(ngx_http_request_t* r, const PgOutcome& outcome) noexcept try {
    // The pool has logged why there is no result.
    if (outcome.kind != PgOutcome::Kind::done) return send_failure(r, Failure::unavailable);
    if (PQresultStatus(outcome.result) != PGRES_TUPLES_OK) {
        return answer_read_failed(r, outcome.result, "the page's query");
    }
    return answer_page_rows(r, outcome.result);
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: page: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

std::string_view query_of(ngx_http_request_t* r) {
    return std::string_view(reinterpret_cast<const char*>(r->args.data), r->args.len);
}

}  // namespace

bool asks_for_page(ngx_http_request_t* r) noexcept try {
    return r->args.len > 0 && asks_for_page(query_of(r));
} catch (const std::exception&) {
    return true;  // out of memory: the page's start tells it
}

ngx_int_t answer_with_page(ngx_http_request_t* r, RowsPage& page) noexcept try {
    ngx_int_t rc;
    auto* ask = start_read<PageAsk>(r, rc, page);
    if (ask == nullptr) return rc;
    std::string why;
    std::optional<PageRequest> request = parse_page_request(query_of(r), why);
    if (!request) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chatterd: %s: page parameters refused: %s; 400",
                      endpoint_name(loc_conf(r)->endpoint), why.c_str());
        return send_failure(r, Failure::bad_request, why);
    }
    ask->request = std::move(*request);
    set_params(*ask);
    if (page.sql.empty()) page.sql = page_sql(page.select_list, page.column_count);
    PgQuery query{page.statement_name, page.sql.c_str(), kParams, ask->params, nullptr};
    query.binary_results = true;
    pg_run(r, query, nullptr, answer_page);
    return NGX_DONE;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: page: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
