#include "handlers/insert_chatt.h"

#include "ngx/list_cache.h"
#include "ngx/post_resolver.h"
#include "ngx/reply.h"

#include <openssl/rand.h>

#include <cstdlib>

namespace chatterd {

namespace {
// id chosen by chatterd ($6), so that a post whose outcome is unknown can be looked up; time
// from the column default.
// The row is only stored while the request's deadline ($5, epoch seconds) has not passed:
// a database that stalls and executes the INSERT after chatterd has answered 503 (and removed
// the media files) must not store a row the client was told failed.
constexpr const char* kInsertSql =
    "INSERT INTO chatts (username, message, id, imageurl, videourl) "
    "SELECT $1, $2, $6::uuid, $3, $4 WHERE clock_timestamp() < to_timestamp($5)";
constexpr int kParamCount = 6;
// The same for the requests that waited for a connection together (see PgBatch): each
// parameter an array of their values, one transaction, one commit. The deadline guard is
// evaluated once (an uncorrelated subquery), against the earliest deadline: all rows or none.
// Text goes into the varchar columns by assignment, so a value too long fails as above (22001).
constexpr PgBatch kInsertBatch{
    PgBatch::Kind::combined, pg_prepared::insert_chatts,
    "INSERT INTO chatts (username, message, id, imageurl, videourl) "
    "SELECT t.username, t.message, t.id, t.imageurl, t.videourl "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::uuid[]) "
    "AS t(username, message, imageurl, videourl, id) "
    "WHERE (SELECT clock_timestamp() < to_timestamp(min(d)) FROM unnest($5::float8[]) AS d)"};
constexpr const char* kStringTooLong = "22001";  // string_data_right_truncation

// The same instant as pg_run's deadline for this request, as epoch seconds with milliseconds.
const char* deadline_param(ngx_http_request_t* r) {
    constexpr std::size_t kMaxLength = NGX_TIME_T_LEN + 5;
    auto* text = static_cast<u_char*>(ngx_pnalloc(r->pool, kMaxLength));
    if (text == nullptr) return nullptr;
    ngx_time_t* now = ngx_timeofday();
    ngx_msec_t ms = now->msec + loc_conf(r)->pg_timeout;
    *ngx_sprintf(text, "%T.%03M", now->sec + static_cast<time_t>(ms / 1000), ms % 1000) = '\0';
    return reinterpret_cast<const char*>(text);
}

// Whether the statement stored every row it carried (a batch stores all or none).
bool stored_every_row(const PGresult* result, std::size_t rows) {
    if (PQresultStatus(result) != PGRES_COMMAND_OK) return false;
    const char* stored = PQcmdTuples(const_cast<PGresult*>(result));
    return std::strtoull(stored, nullptr, 10) == rows && rows > 0;
}

// A version 4 UUID from OpenSSL's generator, as text.
bool random_uuid(char (&text)[37]) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
    static const char digits[] = "0123456789abcdef";
    char* out = text;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
        *out++ = digits[bytes[i] >> 4];
        *out++ = digits[bytes[i] & 0x0f];
    }
    *out = '\0';
    return true;
}
}  // namespace

void ChattInsert::start(ngx_http_request_t* r, const ChattRow& row,
                        PgDoneHandler on_done) noexcept {
    auto* params =
        static_cast<const char**>(ngx_palloc(r->pool, kParamCount * sizeof(const char*)));
    const char* deadline = deadline_param(r);
    if (params == nullptr || deadline == nullptr || !random_uuid(id_)) {
        // Keep pg_run's reference contract: take a reference and release it with the answer.
        r->main->count++;
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    params[0] = row.username;
    params[1] = row.message;
    params[2] = row.imageurl;
    params[3] = row.videourl;
    params[4] = deadline;
    params[5] = id_;
    spec_ = loc_conf(r)->pool_spec;
    endpoint_ = endpoint_name(loc_conf(r)->endpoint);
    state_ = State::running;
    PgQuery query{pg_prepared::insert_chatt, kInsertSql, kParamCount, params, &kInsertBatch};
    query.backend_pid = &backend_pid_;
    pg_run(r, query, nullptr, on_done);
}

InsertFate ChattInsert::settle(ngx_http_request_t* r, const PgOutcome& outcome,
                               std::initializer_list<MediaFile*> files) {
    state_ = State::settled;
    InsertFate fate = insert_fate(outcome);
    if (fate == InsertFate::unknown) hand_over(r->connection->log, outcome.reason, files);
    return fate;
}

bool ChattInsert::abandon(std::initializer_list<MediaFile*> files) noexcept {
    // Not sent (or taken back unsent): the request's files go with it.
    if (state_ != State::running || backend_pid_ == 0) return false;
    state_ = State::settled;
    try {
        hand_over(ngx_cycle->log, "the request ended while it ran", files);
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "chatterd: %s: %s", endpoint_, e.what());
    }
    return true;
}

// One line per post: its id, why its outcome is unknown, and the files kept meanwhile.
void ChattInsert::hand_over(ngx_log_t* log, const char* why,
                            std::initializer_list<MediaFile*> files) {
    UnknownPost post{id_, backend_pid_, 0, endpoint_, -1, {}};
    for (MediaFile* file : files) {
        if (file == nullptr || file->name().empty()) continue;
        post.media_dir = file->directory();
        post.files.push_back(file->hand_over());
    }
    if (post.files.empty()) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "chatterd: %s: whether the row of post %s was stored is unknown (%s); it "
                      "is settled once postgres answers",
                      endpoint_, id_, why);
    } else {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "chatterd: %s: whether the row of post %s was stored is unknown (%s); its "
                      "files (%s) are kept until it is settled, once postgres answers",
                      endpoint_, id_, why, media_names(post.files).c_str());
    }
    if (spec_ != nullptr) resolve_post(*spec_, std::move(post));
}

InsertFate insert_fate(const PgOutcome& outcome) {
    if (outcome.kind == PgOutcome::Kind::unknown) return InsertFate::unknown;
    bool stored =
        outcome.kind == PgOutcome::Kind::done && stored_every_row(outcome.result, outcome.calls);
    return stored ? InsertFate::stored : InsertFate::not_stored;
}

ngx_int_t insert_answer(ngx_http_request_t* r, const PgOutcome& outcome) {
    if (insert_fate(outcome) == InsertFate::stored) {
        // Read-your-writes: a listing asked for after this 200, on any worker, queries.
        list_cache_changed();
        return send_json_text(r, NGX_HTTP_OK, "{}");
    }
    ngx_log_t* log = r->connection->log;
    const char* endpoint = endpoint_name(loc_conf(r)->endpoint);
    // The pool has logged why there is no result.
    if (outcome.kind != PgOutcome::Kind::done) return send_failure(r, Failure::unavailable);
    if (PQresultStatus(outcome.result) == PGRES_COMMAND_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "chatterd: %s: the INSERT reached PostgreSQL after chatterd_pg_timeout and "
                      "stored nothing; 503 (if this repeats, check that the clocks of nginx and "
                      "PostgreSQL agree, or raise chatterd_pg_timeout)",
                      endpoint);
        return send_failure(r, Failure::unavailable);
    }
    OneLine line = pg_error_message(outcome.result);
    std::string_view message = line.view();
    const char* state = PQresultErrorField(outcome.result, PG_DIAG_SQLSTATE);
    if (state != nullptr && std::string_view(state) == kStringTooLong) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "chatterd: %s: a value is too long for its column "
                      "(SQLSTATE %s): %*s; 400",
                      endpoint, state, message.size(), message.data());
        return send_failure(r, Failure::message_too_long);
    }
    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "chatterd: %s: the INSERT failed (SQLSTATE %s): %*s; check the chatts table "
                  "against schema.sql and the role's INSERT right",
                  endpoint, state ? state : "none", message.size(), message.data());
    if (pg_result_means_unavailable(outcome.result)) return send_failure(r, Failure::unavailable);
    return send_failure(r, Failure::internal, "Database error while storing the chatt");
}

}  // namespace chatterd
