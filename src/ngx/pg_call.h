// One request's (or task's) query as the pool and its connections see it: where it is (queue,
// a connection's statement, delivery), and the list of calls one statement serves.
#pragma once

#include "ngx/pg_query.h"

namespace chatterd {

class PgConnection;
class PgPool;
class PgTask;

constexpr std::size_t kMaxBatchCalls = 64;  // requests one batched statement carries at most
constexpr std::size_t kMaxBatchParams = 8;

// Who a query is for: a request (answered with the outcome), or a task of the worker's own.
enum class Caller { request, task };

// Where a call is in the pool.
enum class CallState {
    outside,            // not submitted yet, or its outcome delivered
    waiting,            // in the pool's queue (link)
    running,            // its statement runs on connection
    awaiting_delivery,  // its outcome is about to be delivered (link: deliver_all's list)
};

// One request's query, allocated in the request pool (trivially destructible: the request
// cleanup only unlinks it), or a task's, allocated by PgTask::start.
struct PgCall {
    Caller caller;
    ngx_http_request_t* request;  // a request's, until its outcome is delivered
    PgTask* task;                 // a task's
    PgTaskDone on_task_done;
    void* task_data;
    ngx_log_t* log;
    PgPool* pool;
    PgQuery query;
    PgRowHandler on_row;
    PgDoneHandler on_done;
    CallState state;
    PgConnection* connection;  // running: the connection its statement runs on
    ngx_queue_t link;          // waiting, awaiting_delivery: its place in that list
    bool alone;                // its batch failed: it runs its own statement
    bool rows_refused;  // on_row refused rows: the rest are dropped, the outcome is a failure
    ngx_event_t deadline;
};

// Every change of a call's state goes through here, so that a debug log tells each call's way.
inline void set_call_state(PgCall* call, CallState state) {
    if (state == call->state) return;
    static const char* const names[] = {"outside", "waiting", "running", "awaiting_delivery"};
    (void) names;  // without --with-debug, the line below is nothing
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, call->log, 0, "chatterd: postgres call %p %s -> %s", call,
                   names[static_cast<int>(call->state)], names[static_cast<int>(state)]);
    call->state = state;
}

// The requests a busy connection's statement serves: one, or several when batched. An entry
// is null once its request went away (the statement still runs).
struct StatementCalls {
    PgCall* entries[kMaxBatchCalls] = {};
    std::size_t count = 0;
};

}  // namespace chatterd
