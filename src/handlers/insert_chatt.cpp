#include "handlers/insert_chatt.h"

#include "ngx/reply.h"

namespace chatterd {

namespace {
// id from gen_random_uuid() as the reference does (a course table may lack the default);
// time from the column default.
constexpr const char* kInsertSql =
    "INSERT INTO chatts (username, message, id, imageurl, videourl) "
    "VALUES ($1, $2, gen_random_uuid(), $3, $4)";
constexpr const char* kStringTooLong = "22001";  // string_data_right_truncation
}  // namespace

void insert_chatt(ngx_http_request_t* r, const ChattRow& row, PgDoneHandler on_done) noexcept {
    auto* params = static_cast<const char**>(ngx_palloc(r->pool, 4 * sizeof(const char*)));
    if (params == nullptr) {
        // Keep pg_run's reference contract: take a reference and release it with the answer.
        r->main->count++;
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    params[0] = row.username;
    params[1] = row.message;
    params[2] = row.imageurl;
    params[3] = row.videourl;
    pg_run(r, PgQuery{kInsertSql, 4, params, false}, nullptr, on_done);
}

bool insert_succeeded(const PgOutcome& outcome) {
    return outcome.result != nullptr && PQresultStatus(outcome.result) == PGRES_COMMAND_OK;
}

ngx_int_t insert_answer(ngx_http_request_t* r, const PgOutcome& outcome) {
    if (insert_succeeded(outcome)) return send_json_text(r, NGX_HTTP_OK, "{}");
    ngx_log_t* log = r->connection->log;
    if (outcome.result == nullptr) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: INSERT not done: %s", outcome.reason);
        return send_failure(r, Failure::unavailable);
    }
    const char* message = PQresultErrorMessage(outcome.result);
    const char* state = PQresultErrorField(outcome.result, PG_DIAG_SQLSTATE);
    ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: INSERT failed (SQLSTATE %s): %s",
                  state ? state : "none", message);
    if (state != nullptr && std::string_view(state) == kStringTooLong)
        return send_failure(r, Failure::message_too_long);
    if (pg_result_means_unavailable(outcome.result)) return send_failure(r, Failure::unavailable);
    return send_failure(r, Failure::internal, "Database error while storing the chatt");
}

const char* pool_c_string(ngx_http_request_t* r, std::string_view text) {
    auto* copy = static_cast<char*>(ngx_pnalloc(r->pool, text.size() + 1));
    if (copy == nullptr) return nullptr;
    copy[text.size()] = '\0';
    ngx_memcpy(copy, text.data(), text.size());
    return copy;
}

}  // namespace chatterd
