// A per-worker pool of non-blocking libpq connections driven by nginx's event loop.
//
// A worker never waits for the database: connections are opened with PQconnectStartParams,
// queries are sent with PQsendQueryParams, and the libpq socket is an nginx connection whose
// events advance the protocol. Requests beyond the pool wait in a bounded FIFO; waiting
// requests that run the same batchable statement are served by one statement.
#pragma once

#include "ngx/pg_query.h"

namespace chatterd {

// Runs query for r on the pool of r's location. Takes its own reference on the request
// (r->main->count) and releases it by finalizing r with what on_done returns, possibly before
// returning. The caller then gives up its own reference as usual (return NGX_DONE from a
// content handler, or ngx_http_finalize_request(r, NGX_DONE) from a body handler).
// The query text and parameters must live as long as the request (its pool).
void pg_run(ngx_http_request_t* r, const PgQuery& query, PgRowHandler on_row,
            PgDoneHandler on_done) noexcept;

// A query of the worker's own rather than of a request (the media sweep). The owner keeps the
// PgTask; on_done(data, outcome) (PgTaskDone) is called once per start, possibly before start
// returns, unless the task is cancelled (or destroyed) first.
class PgTask {
public:
    PgTask() = default;
    ~PgTask() { cancel(); }
    PgTask(const PgTask&) = delete;
    PgTask& operator=(const PgTask&) = delete;

    // Runs query (which must live until on_done) on this worker's pool of spec. False when
    // there is none (not a worker process) or no memory: on_done is not called.
    bool start(PgPoolSpec& spec, const PgQuery& query, PgTaskDone on_done, void* data,
               ngx_log_t* log) noexcept;
    void cancel() noexcept;
    bool running() const { return call_ != nullptr; }

private:
    friend class PgPool;
    struct PgCall* call_ = nullptr;  // while running: its call, allocated by start
};

// Worker life cycle: build and connect every configured pool (in worker processes only), and
// close them.
ngx_int_t pg_pools_start(ngx_cycle_t* cycle) noexcept;
void pg_pools_stop(ngx_cycle_t* cycle) noexcept;

// A failed result's message, on one line for the error log.
OneLine pg_error_message(const PGresult* result);

// Whether a failed result means "the database is not available" (503) rather than a query error.
bool pg_result_means_unavailable(const PGresult* result);

}  // namespace chatterd
