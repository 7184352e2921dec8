// What a pool is asked to run, and what became of it: the query, its batching, the handlers
// of its rows and outcome. Its own header, so that the pool's parts (pg_call.h, the
// connection) need not include the pool's entry points (pg_pool.h).
#pragma once

#include "ngx/conf.h"

#include <iterator>
#include <string>

namespace chatterd {

// What became of a request's statement, handed to the caller's done handler.
struct PgOutcome {
    enum class Kind {
        done,          // it ran: result is its final result (COMMAND_OK, TUPLES_OK or an error
                       // the server reported, which undid the statement)
        not_sent,      // it never reached the database (queue full, timed out waiting for a
                       // connection, no pool): nothing was stored
        refused,       // not sent either: the database is known to be down (the pool counts
                       // and logs these, not each request)
        unknown,       // sent, but no answer came (timed out, connection lost): it may have
                       // been stored, or may still be
        rows_refused,  // it ran, but on_row did not take its rows
    };
    Kind kind;
    PGresult* result;    // done: the final result; null otherwise
    const char* reason;  // not done: why, for the error log
    std::size_t calls;   // how many requests' values the statement carried (1 unless
                         // combined): the same result goes to each of them
    // For a shared statement's other requests: the request whose on_row took (done) or refused
    // (rows_refused) the rows; it is answered after them. Null otherwise.
    ngx_http_request_t* rows_reader;

    static PgOutcome ran(PGresult* result, std::size_t calls) {
        return {Kind::done, result, nullptr, calls, nullptr};
    }
    static PgOutcome read_by(ngx_http_request_t* reader, PGresult* result) {
        return {Kind::done, result, nullptr, 1, reader};
    }
    static PgOutcome not_sent(const char* reason) {
        return {Kind::not_sent, nullptr, reason, 1, nullptr};
    }
    static PgOutcome refused() { return {Kind::refused, nullptr, "postgres is down", 1, nullptr}; }
    static PgOutcome unknown(const char* reason) {
        return {Kind::unknown, nullptr, reason, 1, nullptr};
    }
    static PgOutcome rows_not_taken(ngx_http_request_t* reader = nullptr) {
        return {Kind::rows_refused, nullptr, "the rows were refused", 1, reader};
    }
};

// How requests that wait for a connection with the same PgBatch are served together by the
// next free connection, instead of one statement each. They only wait when every connection
// is busy, so this never delays a request; each was waiting before the statement started, so
// each sees every write committed before it arrived. The rules live in pg_batch.cpp.
//   combined: sql carries the values of all of them: its parameters are the single
//     statement's, each as a text array of the requests' values (in queue order, SQL NULL
//     elements for null values). One round trip, one commit. It must do all or nothing (one
//     statement is one transaction); when the server refuses it, every request runs its own
//     statement instead, so that one request's bad value (a message too long) fails only that
//     request.
//   shared: the requests run the very same statement, without parameters (a read): it runs
//     once. Its rows go to the first of them, the reader; each of the others gets the outcome
//     with rows_reader set, and answers from what the reader built. A reader that goes away
//     before the end takes the rows with it: the others then run the statement again. A
//     reader that refused the rows (say, beyond the answers' memory bound) leaves the others
//     nothing to answer from: each gets rows_refused with rows_reader set, so all of them
//     answer alike.
struct PgBatch {
    enum class Kind { combined, shared };
    Kind kind;
    const char* name;  // combined: prepared once per connection under this name (one of
                       // kPreparedNames)
    const char* sql;   // combined: the statement
};

// Every name the module prepares statements under (PgQuery::name, PgBatch::name): a connection
// keeps room for each of them, and refuses (with an alert) to prepare any other.
namespace pg_prepared {
inline constexpr const char* insert_chatt = "chatterd_insert_chatt";
inline constexpr const char* insert_chatts = "chatterd_insert_chatts";
inline constexpr const char* page_chatts = "chatterd_page_chatts";
inline constexpr const char* page_images = "chatterd_page_images";
}  // namespace pg_prepared
inline constexpr const char* const kPreparedNames[] = {
    pg_prepared::insert_chatt, pg_prepared::insert_chatts, pg_prepared::page_chatts,
    pg_prepared::page_images};
inline constexpr std::size_t kPreparedStatements = std::size(kPreparedNames);

struct PgQuery {
    const char* name;  // prepared once per connection under this name (one of
                       // kPreparedNames); null: sent unprepared
    const char* sql;
    int param_count;
    const char* const* params;  // text values, NUL-terminated; a null pointer is SQL NULL
    const PgBatch* batch;       // null: never sent together with other requests
    ngx_msec_t timeout = 0;     // its deadline, waiting and running; 0: chatterd_pg_timeout
    // Null, or where the pool writes the PID of the backend (PQbackendPID) each time it sends
    // the statement, and 0 when it takes the statement back unsent or undone (requeued): a
    // caller whose outcome stays unknown knows which backend may still commit it. Written
    // only while the call is submitted; it must live as long as the request (its pool).
    int* backend_pid = nullptr;
    // Results in PostgreSQL's binary format (the cells binary COPY carries, core/cell.h), not
    // text: a page's rows are written as JSON by the writer of the COPY rows.
    bool binary_results = false;
};

// For a COPY ... TO STDOUT (sent unprepared: COPY cannot be prepared), called for every
// CopyData message (binary COPY: whole rows, see core/pg_copy.h), which is freed afterwards;
// null for other queries. A shared statement's rows go to its reader only. Returns false when
// it could not take them (malformed, out of memory): the rest is discarded and on_done sees
// outcome.result null.
using PgRowHandler = bool (*)(ngx_http_request_t* r, std::string_view copy_data);
// Called once; builds the response and returns the code the request is finalized with. Only
// outcomes of kind done carry a result; the pool has logged the others.
using PgDoneHandler = ngx_int_t (*)(ngx_http_request_t* r, const PgOutcome& outcome);

// Called with the outcome of a task's query (see PgTask).
using PgTaskDone = void (*)(void* data, const PgOutcome& outcome);

}  // namespace chatterd
