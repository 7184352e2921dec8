// The batching rules of the postgres pool (see PgBatch in pg_pool.h): which waiting requests
// join a statement, the combined statement's parameters, and who gets which outcome.
#include "ngx/pg_pool_impl.h"

#include "core/pg_array.h"

#include <cstring>

namespace chatterd {

namespace {
// A batch's values are copied into its text arrays: bound them, so that a connection keeps little.
constexpr std::size_t kMaxBatchBytes = 256 * 1024;

std::size_t value_bytes(const PgQuery& query) {
    std::size_t bytes = 0;
    for (int p = 0; p < query.param_count; p++) {
        if (query.params[p] != nullptr) bytes += std::strlen(query.params[p]) + 3;
    }
    return bytes;
}

bool succeeded(const PGresult* result) {
    ExecStatusType status = PQresultStatus(result);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

// A failure libpq reports itself (no SQLSTATE: the connection broke or the protocol failed)
// rather than one the server reports (which undid the statement): the statement may have run.
bool is_connection_failure(const PGresult* result) {
    return PQresultStatus(result) == PGRES_FATAL_ERROR
           && PQresultErrorField(result, PG_DIAG_SQLSTATE) == nullptr;
}

// What a request whose on_row refused the rows gets instead of its statement's result.
PgOutcome outcome_for(const PgCall* call, const PgOutcome& outcome) {
    if (call->rows_refused && outcome.kind == PgOutcome::Kind::done) {
        return PgOutcome::rows_not_taken();
    }
    return outcome;
}

// The list of requests a statement's outcome goes to, one after the other.
void await_delivery(ngx_queue_t& pending, PgCall* call) {
    ngx_queue_insert_tail(&pending, &call->link);
    set_call_state(call, CallState::awaiting_delivery);
}

PgCall* next_delivery(ngx_queue_t& pending) {
    PgCall* call = ngx_queue_data(ngx_queue_head(&pending), PgCall, link);
    ngx_queue_remove(&call->link);
    set_call_state(call, CallState::outside);
    return call;
}
}  // namespace

// ---- joining -------------------------------------------------------------------------------

// Whether a waiting request may have its statement sent now. While a statement of its batch
// runs, the request waits and joins the next one, with every other request that came in the
// meantime: one commit and WAL flush (combined INSERTs) or one scan (shared COPYs) then serves
// all that arrived during one statement, where a free connection per request would have each
// pay its own commit or scan (bench/PROFILE.md has the measurements). A request waits for at most
// the statement before its own; once a full batch's worth waits, or more than chatterd_pg_queue
// allows to wait (0: nothing waits while a connection is idle), statements run side by side.
bool PgPool::may_start(const PgCall* call) const {
    const PgBatch* batch = call->query.batch;
    if (batch == nullptr || call->alone) return true;
    if (waiting_count_ >= kMaxBatchCalls || waiting_count_ > spec_.queue) return true;
    for (const PgConnection& connection : connections_) {
        if (connection.runs(batch)) return false;
    }
    return true;
}

// Starts on an idle connection the statement of call and of the waiting requests that join it.
void PgPool::start_statement(PgConnection& connection, PgCall* call) {
    PgStatement& statement = connection.next_statement();
    statement.calls.entries[0] = call;
    statement.calls.count = 1;
    set_call_state(call, CallState::running);
    call->connection = &connection;
    statement.query = call->query;
    const PgBatch* batch = call->query.batch;
    if (batch != nullptr && !call->alone) {
        join_waiting_calls(statement, batch);
        std::size_t count = statement.calls.count;
        if (count > 1) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0,
                           "chatterd: one %s statement for %uz requests",
                           batch->kind == PgBatch::Kind::combined ? "combined" : "shared", count);
        }
        if (batch->kind == PgBatch::Kind::combined && count > 1 && !build_batch_query(statement)) {
            // Out of memory for the batch: the others wait, this one runs alone.
            StatementCalls others = statement.calls;
            others.entries[0] = nullptr;
            statement.calls.count = 1;
            requeue_at_head(others, false);
        }
    }
    connection.run();
}

// Takes into the statement, after its first request, the waiting requests of the same batch, in
// queue order.
void PgPool::join_waiting_calls(PgStatement& statement, const PgBatch* batch) {
    StatementCalls& calls = statement.calls;
    std::size_t params = static_cast<std::size_t>(calls.entries[0]->query.param_count);
    // A shared statement is the same for every request only without parameters.
    if (batch->kind == PgBatch::Kind::shared ? params > 0 : params > kMaxBatchParams) return;
    std::size_t bytes = value_bytes(calls.entries[0]->query);
    ngx_queue_t* link = ngx_queue_head(&waiting_);
    while (link != ngx_queue_sentinel(&waiting_) && calls.count < kMaxBatchCalls) {
        PgCall* call = ngx_queue_data(link, PgCall, link);
        link = ngx_queue_next(link);
        if (call->query.batch != batch || call->alone) continue;
        bytes += value_bytes(call->query);
        if (bytes > kMaxBatchBytes) break;
        unqueue(call, CallState::running);
        call->connection = statement.calls.entries[0]->connection;
        calls.entries[calls.count++] = call;
    }
}

// The combined statement, with each parameter the text array of the requests' values.
bool PgPool::build_batch_query(PgStatement& statement) noexcept try {
    const StatementCalls& calls = statement.calls;
    const PgQuery& first = calls.entries[0]->query;
    for (int p = 0; p < first.param_count; p++) {
        std::string& array = statement.batch_values[p];
        array.assign(1, '{');
        for (std::size_t i = 0; i < calls.count; i++) {
            if (i > 0) array += ',';
            append_pg_array_element(array, calls.entries[i]->query.params[p]);
        }
        array += '}';
        statement.batch_params[p] = array.c_str();
    }
    statement.query = PgQuery{first.batch->name, first.batch->sql, first.param_count,
                              statement.batch_params, first.batch};
    return true;
} catch (const std::exception&) {
    return false;
}

// ---- delivering ----------------------------------------------------------------------------

// The end of a statement that ran to its last result (null: none came) on a connection.
//   - a combined statement the server refused: each request runs its own statement;
//   - a shared statement that ran: the reader's rows go to every request;
//   - otherwise the outcome is every request's: the result, or unknown when libpq lost the
//     connection (the statement may have been committed: never run it again).
void PgPool::deliver_outcome(const StatementCalls& calls, const PgBatch* batch, PGresult* result) {
    if (result == nullptr) {
        return deliver_all(calls, PgOutcome::unknown("postgres returned no result"));
    }
    if (is_connection_failure(result)) {
        return deliver_all(calls, PgOutcome::unknown("the postgres connection was lost"));
    }
    if (batch != nullptr && batch->kind == PgBatch::Kind::combined && !succeeded(result)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log_, 0,
                       "chatterd: a combined statement for %uz requests failed, each runs alone",
                       calls.count);
        return requeue_at_head(calls, true);
    }
    if (batch != nullptr && batch->kind == PgBatch::Kind::shared
        && PQresultStatus(result) == PGRES_COMMAND_OK) {
        return deliver_shared(calls, result);
    }
    deliver_all(calls, PgOutcome::ran(result, calls.count));
}

// Delivers one outcome to every request a statement served. Finalizing one request can free
// another (two HTTP/2 streams of one connection): the requests wait in a list that a request
// going away leaves (detach), so none is touched after it is gone.
void PgPool::deliver_all(const StatementCalls& calls, const PgOutcome& outcome) {
    ngx_queue_t pending;
    ngx_queue_init(&pending);
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] != nullptr) await_delivery(pending, calls.entries[i]);
    }
    while (!ngx_queue_empty(&pending)) {
        PgCall* call = next_delivery(pending);
        deliver(call, outcome_for(call, outcome));
    }
}

// A shared statement that ran to its end: its reader (the first request) took the rows, or
// refused them. The others are answered first, from the reader's rows (or with its refusal),
// while the reader is there (the reader waits last in the list; a request going away leaves
// it), then the reader. Without a reader, the others run the statement again.
void PgPool::deliver_shared(const StatementCalls& calls, PGresult* result) {
    PgCall* reader = calls.entries[0];
    if (reader == nullptr) return requeue_at_head(calls, false);
    ngx_queue_t pending;
    ngx_queue_init(&pending);
    for (std::size_t i = 1; i <= calls.count; i++) {
        PgCall* call = calls.entries[i % calls.count];  // the reader last
        if (call != nullptr) await_delivery(pending, call);
    }
    const ngx_queue_t* reader_link = &reader->link;
    ngx_http_request_t* rows_reader = reader->request;
    while (!ngx_queue_empty(&pending)) {
        bool reader_waits = ngx_queue_last(&pending) == reader_link;
        PgCall* call = next_delivery(pending);
        if (!reader_waits) {
            requeue_at_head(call, false);
        } else if (call == reader) {
            deliver(call, outcome_for(call, PgOutcome::ran(result, 1)));
        } else if (reader->rows_refused) {
            deliver(call, PgOutcome::rows_not_taken(rows_reader));
        } else {
            deliver(call, PgOutcome::read_by(rows_reader, result));
        }
    }
}

// Puts the requests of a statement that was not run, or whose batch failed (alone: each then
// runs its own statement), back at the head of the queue, in their order.
void PgPool::requeue_at_head(const StatementCalls& calls, bool alone) {
    for (std::size_t i = calls.count; i-- > 0;) {
        if (calls.entries[i] != nullptr) requeue_at_head(calls.entries[i], alone);
    }
}

void PgPool::requeue_at_head(PgCall* call, bool alone) {
    if (call->query.backend_pid != nullptr) *call->query.backend_pid = 0;
    call->connection = nullptr;
    call->alone = call->alone || alone;
    ngx_queue_insert_head(&waiting_, &call->link);
    set_call_state(call, CallState::waiting);
    waiting_count_++;
}

}  // namespace chatterd
