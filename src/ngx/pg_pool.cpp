// Per-worker libpq pool on nginx's event loop: the requests' side. See pg_pool.h for the
// contract and pg_connection.cpp for the connections.
#include "ngx/pg_pool_impl.h"

#include "core/pg_array.h"

#include <cstring>

namespace chatterd {

// ---- waiting requests ----------------------------------------------------------------------

void PgPool::submit(PgCall* call) {
    // The queue bounds waiting: a request an idle connection can take at once never waits.
    if (waiting_count_ >= spec_.queue && !has_idle_slot()) {
        ngx_log_error(NGX_LOG_ERR, call->request->connection->log, 0,
                      "postgres request queue is full (chatterd_pg_queue %ui)", spec_.queue);
        deliver(call, PgOutcome{nullptr, "postgres request queue is full", 1, nullptr});
        return;
    }
    ngx_queue_insert_tail(&waiting_, &call->link);
    call->queued = true;
    waiting_count_++;
    ngx_add_timer(&call->deadline, spec_.timeout);
    dispatch();
}

bool PgPool::has_idle_slot() const {
    for (const PgSlot& slot : slots_) {
        if (slot.state == SlotState::idle) return true;
    }
    return false;
}

void PgPool::dispatch() {
    ngx_uint_t connecting = 0;
    for (PgSlot& slot : slots_) {
        if (ngx_queue_empty(&waiting_)) return;
        if (slot.state == SlotState::idle) {
            PgCall* call = ngx_queue_data(ngx_queue_head(&waiting_), PgCall, link);
            unqueue(call);
            start_query(slot, call);
        } else if (slot.state == SlotState::connecting) {
            connecting++;
        }
    }
    // Open as many new connections as there are requests not yet covered by one in progress.
    for (PgSlot& slot : slots_) {
        if (waiting_count_ <= connecting) return;
        if (slot.state == SlotState::closed) {
            connecting++;
            connect(slot);
        }
    }
}

// When no connection is open or opening, the database is unreachable: answer now rather than
// letting every waiting request run into its deadline.
void PgPool::fail_waiting_if_no_hope() {
    for (PgSlot& slot : slots_) {
        if (slot.state != SlotState::closed) return;
    }
    while (!ngx_queue_empty(&waiting_)) {
        PgCall* call = ngx_queue_data(ngx_queue_head(&waiting_), PgCall, link);
        unqueue(call);
        deliver(call, PgOutcome{nullptr, "postgres is unreachable", 1, nullptr});
    }
}

void PgPool::unqueue(PgCall* call) {
    if (!call->queued) return;
    ngx_queue_remove(&call->link);
    call->queued = false;
    waiting_count_--;
}

void PgPool::detach(PgCall* call) {
    unqueue(call);
    if (call->awaiting_delivery) {
        ngx_queue_remove(&call->link);
        call->awaiting_delivery = false;
    }
    if (call->deadline.timer_set) ngx_del_timer(&call->deadline);
    if (call->slot != nullptr) {
        SlotCalls& calls = call->slot->calls;
        for (std::size_t i = 0; i < calls.count; i++) {
            if (calls.entries[i] == call) calls.entries[i] = nullptr;
        }
    }
    call->slot = nullptr;
}

void PgPool::call_timed_out(PgCall* call) {
    ngx_log_error(NGX_LOG_ERR, call->request->connection->log, 0,
                  "postgres did not answer within chatterd_pg_timeout %M ms", spec_.timeout);
    PgSlot* slot = call->slot;
    detach(call);
    deliver(call, PgOutcome{nullptr, "postgres timed out", 1, nullptr});
    // The connection is in an unknown state mid-query: drop it rather than wait. Requests
    // batched with this one are answered 503 too: their rows may have been stored, so they
    // cannot be sent again.
    if (slot != nullptr && slot->state == SlotState::busy) {
        drop_slot(*slot, "postgres timed out");
    } else {
        dispatch();
    }
}

// Hands the outcome to the request's handler and finalizes the request with its answer.
void PgPool::deliver(PgCall* call, const PgOutcome& outcome) {
    detach(call);
    ngx_http_request_t* r = call->request;
    ngx_connection_t* c = r->connection;
    call->request = nullptr;
    ngx_int_t rc = call->on_done(r, outcome);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

namespace {
// What a request whose on_row refused the rows gets instead of its statement's result.
PgOutcome outcome_for(const PgCall* call, PGresult* result, const char* reason, std::size_t calls) {
    if (call->rows_refused && result != nullptr) {
        return PgOutcome{nullptr, "the rows were refused", calls, nullptr};
    }
    return PgOutcome{result, reason, calls, nullptr};
}

// The list of requests a statement's outcome goes to, one after the other (deliver_all).
void await_delivery(ngx_queue_t& pending, PgCall* call) {
    ngx_queue_insert_tail(&pending, &call->link);
    call->awaiting_delivery = true;
}

PgCall* next_delivery(ngx_queue_t& pending) {
    PgCall* call = ngx_queue_data(ngx_queue_head(&pending), PgCall, link);
    ngx_queue_remove(&call->link);
    call->awaiting_delivery = false;
    return call;
}
}  // namespace

// Delivers one outcome to every request a statement served. Finalizing one request can free
// another (two HTTP/2 streams of one connection): the requests wait in a list that a request
// going away leaves (detach), so none is touched after it is gone.
void PgPool::deliver_all(const SlotCalls& calls, PGresult* result, const char* reason) {
    ngx_queue_t pending;
    ngx_queue_init(&pending);
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] != nullptr) await_delivery(pending, calls.entries[i]);
    }
    while (!ngx_queue_empty(&pending)) {
        PgCall* call = next_delivery(pending);
        deliver(call, outcome_for(call, result, reason, calls.count));
    }
}

// A shared statement that ran to its end: its reader (the first request) took the rows. The
// others are answered first, from the reader's rows, while the reader is there (the reader
// waits last in the list; a request going away leaves it), then the reader. Without a reader,
// the others run the statement again.
void PgPool::deliver_shared(const SlotCalls& calls, PGresult* result) {
    PgCall* reader = calls.entries[0];
    if (reader == nullptr) return requeue_at_head(calls, false);
    ngx_queue_t pending;
    ngx_queue_init(&pending);
    for (std::size_t i = 1; i <= calls.count; i++) {
        PgCall* call = calls.entries[i % calls.count];   // the reader last
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
            deliver(call, outcome_for(call, result, nullptr, 1));
        } else {
            deliver(call, PgOutcome{result, nullptr, 1, rows_reader});
        }
    }
}

// Puts the requests of a statement that was not run, or whose batch failed (alone: each then
// runs its own statement), back at the head of the queue, in their order.
void PgPool::requeue_at_head(const SlotCalls& calls, bool alone) {
    for (std::size_t i = calls.count; i-- > 0;) {
        if (calls.entries[i] != nullptr) requeue_at_head(calls.entries[i], alone);
    }
}

void PgPool::requeue_at_head(PgCall* call, bool alone) {
    call->slot = nullptr;
    call->alone = call->alone || alone;
    ngx_queue_insert_head(&waiting_, &call->link);
    call->queued = true;
    waiting_count_++;
}

// ---- batches -------------------------------------------------------------------------------

namespace {
// A batch's values are copied into its text arrays: bound them, so that a slot keeps little.
constexpr std::size_t kMaxBatchBytes = 256 * 1024;

std::size_t value_bytes(const PgQuery& query) {
    std::size_t bytes = 0;
    for (int p = 0; p < query.param_count; p++) {
        if (query.params[p] != nullptr) bytes += std::strlen(query.params[p]) + 3;
    }
    return bytes;
}
}  // namespace

// Takes into slot, after its first request, the waiting requests of the same batch, in queue
// order. They only wait when every connection is busy, so a batch never delays a request.
void PgPool::join_waiting_calls(PgSlot& slot, const PgBatch* batch) {
    std::size_t params = static_cast<std::size_t>(slot.calls.entries[0]->query.param_count);
    // A shared statement is the same for every request only without parameters.
    if (batch->sql == nullptr ? params > 0 : params > kMaxBatchParams) return;
    std::size_t bytes = value_bytes(slot.calls.entries[0]->query);
    ngx_queue_t* link = ngx_queue_head(&waiting_);
    while (link != ngx_queue_sentinel(&waiting_) && slot.calls.count < kMaxBatchCalls) {
        PgCall* call = ngx_queue_data(link, PgCall, link);
        link = ngx_queue_next(link);
        if (call->query.batch != batch || call->alone) continue;
        bytes += value_bytes(call->query);
        if (bytes > kMaxBatchBytes) break;
        unqueue(call);
        call->slot = &slot;
        slot.calls.entries[slot.calls.count++] = call;
    }
}

// The combined statement, with each parameter the text array of the requests' values.
bool PgPool::build_batch_query(PgSlot& slot) noexcept try {
    const PgQuery& first = slot.calls.entries[0]->query;
    for (int p = 0; p < first.param_count; p++) {
        std::string& array = slot.batch_values[p];
        array.assign(1, '{');
        for (std::size_t i = 0; i < slot.calls.count; i++) {
            if (i > 0) array += ',';
            append_pg_array_element(array, slot.calls.entries[i]->query.params[p]);
        }
        array += '}';
        slot.batch_params[p] = array.c_str();
    }
    slot.query = PgQuery{first.batch->name, first.batch->sql, first.param_count, slot.batch_params,
                         first.batch};
    return true;
} catch (const std::exception&) {
    return false;
}

// ---- request side --------------------------------------------------------------------------

namespace {

void on_call_deadline(ngx_event_t* ev) {
    auto* call = static_cast<PgCall*>(ev->data);
    call->pool->call_timed_out(call);
}

void on_request_gone(void* data) {
    auto* call = static_cast<PgCall*>(data);
    if (call->request != nullptr) call->pool->detach(call);
}

}  // namespace

void pg_run(ngx_http_request_t* r, const PgQuery& query, PgRowHandler on_row,
            PgDoneHandler on_done) noexcept {
    r->main->count++;
    PgPoolSpec* spec = loc_conf(r)->pool_spec;
    PgPool* pool = spec ? spec->pool : nullptr;
    auto* call = static_cast<PgCall*>(ngx_pcalloc(r->pool, sizeof(PgCall)));
    ngx_http_cleanup_t* cleanup = call ? ngx_http_cleanup_add(r, 0) : nullptr;
    if (pool == nullptr || cleanup == nullptr) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      pool ? "chatterd: out of memory" : "chatterd: no postgres pool in this worker");
        ngx_http_finalize_request(r, on_done(r, PgOutcome{nullptr, "no pool", 1, nullptr}));
        return;
    }
    call->request = r;
    call->pool = pool;
    call->query = query;
    call->on_row = on_row;
    call->on_done = on_done;
    call->deadline.data = call;
    call->deadline.log = r->connection->log;
    call->deadline.handler = on_call_deadline;
    cleanup->handler = on_request_gone;
    cleanup->data = call;
    pool->submit(call);
}

namespace {
// The pool specs of the configuration, as a range (empty when the http block has none).
struct PoolSpecs {
    PgPoolSpec** first;
    PgPoolSpec** last;
    PgPoolSpec** begin() const { return first; }
    PgPoolSpec** end() const { return last; }
};

PoolSpecs pool_specs(ngx_cycle_t* cycle) {
    auto* main = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (main == nullptr) return {nullptr, nullptr};
    auto** specs = static_cast<PgPoolSpec**>(main->pool_specs.elts);
    return {specs, specs + main->pool_specs.nelts};
}
}  // namespace

ngx_int_t pg_pools_start(ngx_cycle_t* cycle) noexcept try {
    for (PgPoolSpec* spec : pool_specs(cycle)) {
        spec->pool = new PgPool(*spec, cycle->log);
        spec->pool->connect_all();
    }
    return NGX_OK;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "chatterd: cannot create postgres pools: %s",
                  e.what());
    return NGX_ERROR;
}

void pg_pools_stop(ngx_cycle_t* cycle) noexcept {
    for (PgPoolSpec* spec : pool_specs(cycle)) {
        delete spec->pool;
        spec->pool = nullptr;
    }
}

OneLine pg_error_message(const PGresult* result) {
    return OneLine(PQresultErrorMessage(result));
}

bool pg_result_means_unavailable(const PGresult* result) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (state == nullptr) return true;  // no SQLSTATE: libpq's own error (connection trouble)
    std::string_view cls(state, 2);
    // 08: connection exception, 53: insufficient resources, 57: operator intervention (shutdown)
    return cls == "08" || cls == "53" || cls == "57";
}

}  // namespace chatterd
