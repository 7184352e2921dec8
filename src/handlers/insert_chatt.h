// POST endpoints: the one INSERT of a chatt, and what its outcome means for the client.
#pragma once

#include "ngx/conf.h"
#include "ngx/media_file.h"
#include "ngx/pg_pool.h"

#include <initializer_list>

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

// What an INSERT's outcome says of its row. Unknown: it was sent, but no answer came (the
// connection broke, or chatterd_pg_timeout passed before the commit was acknowledged); the
// row may have been stored, or may still be.
enum class InsertFate { stored, not_stored, unknown };
InsertFate insert_fate(const PgOutcome& outcome);

// One post's INSERT, kept by its request: the id chatterd gives the row, and the backend the
// statement was sent to. A post whose outcome stays unknown, whether told so or ended before
// (client gone, worker_shutdown_timeout), is handed with its files to the worker's resolver
// (ngx/post_resolver.h), which keeps or removes them once it knows.
class ChattInsert {
public:
    // Inserts row for r; on_done sees the outcome, and calls settle. Same reference rules as
    // pg_run.
    void start(ngx_http_request_t* r, const ChattRow& row, PgDoneHandler on_done) noexcept;
    // The outcome came. Unknown: logged, and the post and its files (null entries skipped) are
    // handed over; none of them is then the request's to remove.
    InsertFate settle(ngx_http_request_t* r, const PgOutcome& outcome,
                      std::initializer_list<MediaFile*> files);
    // The request ends: an INSERT sent whose outcome never came is handed over with its files
    // (then true).
    bool abandon(std::initializer_list<MediaFile*> files) noexcept;

private:
    enum class State { idle, running, settled };
    void hand_over(ngx_log_t* log, const char* why, std::initializer_list<MediaFile*> files);

    State state_ = State::idle;
    char id_[37] = {};  // a UUID's text
    int backend_pid_ = 0;
    PgPoolSpec* spec_ = nullptr;
    const char* endpoint_ = "";
};

// The API's answer to an INSERT outcome: 200 {}, 400 "Message too long", 503, or 500; logs
// the cause of every failure.
ngx_int_t insert_answer(ngx_http_request_t* r, const PgOutcome& outcome);

}  // namespace chatterd
