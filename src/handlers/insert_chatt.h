// POST endpoints: the one INSERT of a chatt, and what its outcome means for the client.
#pragma once

#include "ngx/conf.h"
#include "ngx/pg_pool.h"

namespace chatterd {

// username and message are varchar(255), which counts characters.
constexpr std::size_t kMaxChattChars = 255;

// Text values, NUL-terminated, living in the request pool; null URL = SQL NULL.
struct ChattRow {
    const char* username;
    const char* message;
    const char* imageurl;
    const char* videourl;
};

// Inserts row for r; on_done sees the outcome (and usually answers with insert_answer).
// Same reference rules as pg_run.
void insert_chatt(ngx_http_request_t* r, const ChattRow& row, PgDoneHandler on_done) noexcept;

// What an INSERT's outcome says of its row. Unknown: it was sent, but no answer came (the
// connection broke, or chatterd_pg_timeout passed before the commit was acknowledged); the
// row may have been stored, or may still be.
enum class InsertFate { stored, not_stored, unknown };
InsertFate insert_fate(const PgOutcome& outcome);

// The API's answer to an INSERT outcome: 200 {}, 400 "Message too long", 503, or 500; logs
// the cause of every failure.
ngx_int_t insert_answer(ngx_http_request_t* r, const PgOutcome& outcome);

}  // namespace chatterd
