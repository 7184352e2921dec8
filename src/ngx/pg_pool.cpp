// Per-worker libpq pool on nginx's event loop. See pg_pool.h for the contract.
//
// Each slot owns one PGconn. Its socket is registered with nginx as a level-triggered
// connection: read interest always (so an idle slot notices a server restart, and libpq data
// left unread after one PQconsumeInput fires again instead of waiting for a new edge), write
// interest only while libpq has bytes to send. Deadlines are nginx timers; a slot that errs or
// times out is closed (never cancelled: PQcancel blocks) and replaced on demand.
#include "ngx/pg_pool.h"

#include <new>
#include <vector>

namespace chatterd {
namespace {

enum class SlotState { closed, connecting, idle, busy };

struct PgSlot {
    PgPool* pool = nullptr;
    PGconn* conn = nullptr;
    ngx_connection_t* socket = nullptr;
    SlotState state = SlotState::closed;
    struct PgCall* call = nullptr;  // busy: the request's call, null once the request went away
    PGresult* final_result = nullptr;
    bool rows_refused = false;
    ngx_event_t deadline{};
};

// One request's query, allocated in the request pool. Trivially destructible: the request
// cleanup only unlinks it.
struct PgCall {
    ngx_http_request_t* request;
    PgPool* pool;
    PgQuery query;
    PgRowHandler on_row;
    PgDoneHandler on_done;
    PgSlot* slot;        // running on this slot
    ngx_queue_t link;    // waiting in the pool's queue when queued
    bool queued;
    ngx_event_t deadline;
};

}  // namespace

class PgPool {
public:
    PgPool(PgPoolSpec& spec, ngx_log_t* log) : spec_(spec), log_(log), slots_(spec.size) {
        ngx_queue_init(&waiting_);
        for (PgSlot& slot : slots_) {
            slot.pool = this;
            slot.deadline.data = &slot;
            slot.deadline.log = log_;
            slot.deadline.handler = on_slot_deadline;
        }
    }
    ~PgPool() {
        for (PgSlot& slot : slots_) close_slot(slot);
    }
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    void connect_all() {
        for (PgSlot& slot : slots_) connect(slot);
    }
    void submit(PgCall* call);
    void detach(PgCall* call);
    void call_timed_out(PgCall* call);

private:
    static void on_socket_event(ngx_event_t* ev);
    static void on_slot_deadline(ngx_event_t* ev);
    static void log_notice(void* slot, const char* message);

    void connect(PgSlot& slot);
    bool attach_socket(PgSlot& slot);
    void detach_socket(PgSlot& slot);
    bool want_write(PgSlot& slot, bool on);
    void advance_connect(PgSlot& slot);
    void start_query(PgSlot& slot, PgCall* call);
    void advance_query(PgSlot& slot, bool writable);
    bool flush(PgSlot& slot);
    void keep_result(PgSlot& slot, PGresult* result);
    void finish_query(PgSlot& slot);
    void on_idle_event(PgSlot& slot);
    void fail_slot(PgSlot& slot, const char* what);
    void close_slot(PgSlot& slot);
    void dispatch();
    void fail_waiting_if_no_hope();
    void deliver(PgCall* call, PGresult* result, const char* reason);
    void unqueue(PgCall* call);
    void log_failure(PgSlot& slot, const char* what);

    PgPoolSpec& spec_;
    ngx_log_t* log_;
    std::vector<PgSlot> slots_;
    ngx_queue_t waiting_;
    ngx_uint_t waiting_count_ = 0;
};

// ---- connections ---------------------------------------------------------------------------

void PgPool::connect(PgSlot& slot) {
    // Before dbname, so the operator's conninfo (expanded in its place) can override them:
    // UTF-8 and ISO dates are what the JSON conversion expects.
    static const char* const keywords[] = {"client_encoding", "options",
                                           "fallback_application_name", "dbname", nullptr};
    const char* const values[] = {"UTF8", "-c DateStyle=ISO", "chatterd",
                                  reinterpret_cast<const char*>(spec_.conninfo.data), nullptr};
    slot.conn = PQconnectStartParams(keywords, values, 1);
    if (slot.conn == nullptr) {
        ngx_log_error(NGX_LOG_ERR, log_, 0, "postgres connect failed: out of memory");
        return;
    }
    slot.state = SlotState::connecting;
    if (PQstatus(slot.conn) == CONNECTION_BAD || PQsetnonblocking(slot.conn, 1) != 0) {
        fail_slot(slot, "connect");
        return;
    }
    PQsetNoticeProcessor(slot.conn, log_notice, &slot);
    if (!attach_socket(slot)) {
        fail_slot(slot, "connect");
        return;
    }
    ngx_add_timer(&slot.deadline, spec_.timeout);
    // libpq: before the first PQconnectPoll, behave as if it asked to wait for writability.
    if (!want_write(slot, true)) fail_slot(slot, "connect");
}

bool PgPool::attach_socket(PgSlot& slot) {
    ngx_connection_t* c = ngx_get_connection(PQsocket(slot.conn), log_);
    if (c == nullptr) return false;
    c->data = &slot;
    c->log = log_;
    c->read->log = log_;
    c->write->log = log_;
    c->read->handler = on_socket_event;
    c->write->handler = on_socket_event;
    slot.socket = c;
    return ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
}

// libpq owns the descriptor: nginx forgets it here, PQfinish (or libpq itself) closes it.
void PgPool::detach_socket(PgSlot& slot) {
    ngx_connection_t* c = slot.socket;
    if (c == nullptr) return;
    if (c->read->active) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    if (c->write->active) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    // ngx_delete_posted_event is a multi-statement macro: braces are required.
    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }
    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }
    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
    slot.socket = nullptr;
}

bool PgPool::want_write(PgSlot& slot, bool on) {
    ngx_event_t* wev = slot.socket->write;
    if (on && !wev->active) return ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
    if (!on && wev->active) return ngx_del_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
    return true;
}

void PgPool::advance_connect(PgSlot& slot) {
    PostgresPollingStatusType status = PQconnectPoll(slot.conn);
    if (status == PGRES_POLLING_FAILED) return fail_slot(slot, "connect");
    // libpq may move to another socket (next host, SSL/GSS fallback): follow it.
    if (PQsocket(slot.conn) != slot.socket->fd) {
        detach_socket(slot);  // the old descriptor is already closed by libpq
        if (PQsocket(slot.conn) < 0 || !attach_socket(slot)) return fail_slot(slot, "connect");
    }
    if (status != PGRES_POLLING_OK) {
        if (!want_write(slot, status == PGRES_POLLING_WRITING)) fail_slot(slot, "connect");
        return;
    }
    if (!want_write(slot, false)) return fail_slot(slot, "connect");
    ngx_del_timer(&slot.deadline);
    slot.state = SlotState::idle;
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres connected, fd %d",
                   slot.socket->fd);
    dispatch();
}

void PgPool::log_failure(PgSlot& slot, const char* what) {
    const char* host = slot.conn ? PQhost(slot.conn) : nullptr;
    const char* port = slot.conn ? PQport(slot.conn) : nullptr;
    const char* db = slot.conn ? PQdb(slot.conn) : nullptr;
    const char* error = slot.conn ? PQerrorMessage(slot.conn) : "";
    std::string_view message(error);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.remove_suffix(1);
    ngx_log_error(NGX_LOG_ERR, log_, 0, "postgres %s (host=%s port=%s dbname=%s) failed: %*s",
                  what, host ? host : "", port ? port : "", db ? db : "", message.size(),
                  message.data());
}

void PgPool::fail_slot(PgSlot& slot, const char* what) {
    log_failure(slot, what);
    PgCall* call = slot.call;
    bool was_connecting = slot.state == SlotState::connecting;
    close_slot(slot);
    if (call != nullptr) deliver(call, nullptr, "postgres connection failed");
    if (was_connecting) fail_waiting_if_no_hope();
    dispatch();
}

void PgPool::close_slot(PgSlot& slot) {
    if (slot.deadline.timer_set) ngx_del_timer(&slot.deadline);
    detach_socket(slot);
    if (slot.final_result != nullptr) PQclear(slot.final_result);
    if (slot.conn != nullptr) PQfinish(slot.conn);
    slot.final_result = nullptr;
    slot.conn = nullptr;
    slot.call = nullptr;
    slot.state = SlotState::closed;
}

// ---- queries -------------------------------------------------------------------------------

void PgPool::start_query(PgSlot& slot, PgCall* call) {
    slot.state = SlotState::busy;
    slot.call = call;
    slot.rows_refused = false;
    call->slot = &slot;
    const PgQuery& q = call->query;
    if (!PQsendQueryParams(slot.conn, q.sql, q.param_count, nullptr, q.params, nullptr, nullptr,
                           0)
        || (q.row_by_row && !PQsetSingleRowMode(slot.conn))) {
        // Nothing reached the server: the query may safely go to another connection.
        log_failure(slot, "send");
        slot.call = nullptr;
        call->slot = nullptr;
        close_slot(slot);
        ngx_queue_insert_head(&waiting_, &call->link);
        call->queued = true;
        waiting_count_++;
        return;
    }
    ngx_add_timer(&slot.deadline, spec_.timeout);
    if (!flush(slot)) fail_slot(slot, "query");
}

bool PgPool::flush(PgSlot& slot) {
    int pending = PQflush(slot.conn);
    return pending >= 0 && want_write(slot, pending == 1);
}

void PgPool::advance_query(PgSlot& slot, bool writable) {
    if (writable) {
        if (!flush(slot)) return fail_slot(slot, "query");
        return;
    }
    if (!PQconsumeInput(slot.conn) || !flush(slot)) return fail_slot(slot, "query");
    while (!PQisBusy(slot.conn)) {
        PGresult* result = PQgetResult(slot.conn);
        if (result == nullptr) return finish_query(slot);
        keep_result(slot, result);
    }
}

void PgPool::keep_result(PgSlot& slot, PGresult* result) {
    if (PQresultStatus(result) == PGRES_SINGLE_TUPLE) {
        if (slot.call != nullptr && !slot.rows_refused) {
            slot.rows_refused = !slot.call->on_row(slot.call->request, result);
        }
        PQclear(result);
        return;
    }
    if (slot.final_result == nullptr) {
        slot.final_result = result;
    } else {
        PQclear(result);
    }
}

void PgPool::finish_query(PgSlot& slot) {
    ngx_del_timer(&slot.deadline);
    PgCall* call = slot.call;
    PGresult* result = slot.final_result;
    slot.call = nullptr;
    slot.final_result = nullptr;
    slot.state = SlotState::idle;
    // A connection left inside a transaction or broken is not reused.
    if (PQtransactionStatus(slot.conn) != PQTRANS_IDLE) {
        log_failure(slot, "connection state check");
        close_slot(slot);
    }
    if (call != nullptr) {
        if (slot.rows_refused && result != nullptr) {
            PQclear(result);
            result = nullptr;
            deliver(call, nullptr, "out of memory while reading rows");
        } else {
            deliver(call, result, result ? nullptr : "postgres returned no result");
        }
    }
    if (result != nullptr) PQclear(result);
    dispatch();
}

void PgPool::on_idle_event(PgSlot& slot) {
    // An idle connection only hears from the server when it goes away (restart, idle timeout).
    if (!PQconsumeInput(slot.conn) || PQstatus(slot.conn) == CONNECTION_BAD) {
        log_failure(slot, "idle connection");
        close_slot(slot);
        return;
    }
    while (!PQisBusy(slot.conn)) {
        PGresult* stray = PQgetResult(slot.conn);
        if (stray == nullptr) break;
        PQclear(stray);
    }
}

// ---- waiting requests ----------------------------------------------------------------------

void PgPool::submit(PgCall* call) {
    if (waiting_count_ >= spec_.queue) {
        ngx_log_error(NGX_LOG_ERR, call->request->connection->log, 0,
                      "postgres request queue is full (chatterd_pg_queue %ui)", spec_.queue);
        deliver(call, nullptr, "postgres request queue is full");
        return;
    }
    ngx_queue_insert_tail(&waiting_, &call->link);
    call->queued = true;
    waiting_count_++;
    ngx_add_timer(&call->deadline, spec_.timeout);
    dispatch();
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
        deliver(call, nullptr, "postgres is unreachable");
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
    if (call->deadline.timer_set) ngx_del_timer(&call->deadline);
    if (call->slot != nullptr && call->slot->call == call) call->slot->call = nullptr;
    call->slot = nullptr;
}

void PgPool::call_timed_out(PgCall* call) {
    ngx_log_error(NGX_LOG_ERR, call->request->connection->log, 0,
                  "postgres did not answer within chatterd_pg_timeout %M ms", spec_.timeout);
    PgSlot* slot = call->slot;
    detach(call);
    // The connection is in an unknown state mid-query: drop it rather than wait.
    if (slot != nullptr && slot->state == SlotState::busy) close_slot(*slot);
    deliver(call, nullptr, "postgres timed out");
    dispatch();
}

// Hands the outcome to the request's handler and finalizes the request with its answer.
void PgPool::deliver(PgCall* call, PGresult* result, const char* reason) {
    detach(call);
    ngx_http_request_t* r = call->request;
    ngx_connection_t* c = r->connection;
    call->request = nullptr;
    ngx_int_t rc = call->on_done(r, PgOutcome{result, reason});
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

// ---- event plumbing ------------------------------------------------------------------------

void PgPool::on_socket_event(ngx_event_t* ev) {
    auto* c = static_cast<ngx_connection_t*>(ev->data);
    auto* slot = static_cast<PgSlot*>(c->data);
    PgPool* pool = slot->pool;
    switch (slot->state) {
    case SlotState::connecting: pool->advance_connect(*slot); break;
    case SlotState::busy: pool->advance_query(*slot, ev->write); break;
    case SlotState::idle:
        if (!ev->write) pool->on_idle_event(*slot);
        break;
    case SlotState::closed: break;
    }
}

void PgPool::on_slot_deadline(ngx_event_t* ev) {
    auto* slot = static_cast<PgSlot*>(ev->data);
    PgPool* pool = slot->pool;
    ngx_log_error(NGX_LOG_ERR, pool->log_, 0, "postgres %s timed out after %M ms",
                  slot->state == SlotState::connecting ? "connect" : "query", pool->spec_.timeout);
    PgCall* call = slot->call;
    bool was_connecting = slot->state == SlotState::connecting;
    pool->close_slot(*slot);
    if (call != nullptr) pool->deliver(call, nullptr, "postgres timed out");
    if (was_connecting) pool->fail_waiting_if_no_hope();
    pool->dispatch();
}

void PgPool::log_notice(void* data, const char* message) {
    auto* slot = static_cast<PgSlot*>(data);
    std::string_view text(message);
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    ngx_log_error(NGX_LOG_NOTICE, slot->pool->log_, 0, "postgres: %*s", text.size(), text.data());
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

ngx_int_t answer_unavailable(ngx_http_request_t* r, PgDoneHandler on_done, const char* reason) {
    return on_done(r, PgOutcome{nullptr, reason});
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
        ngx_http_finalize_request(r, answer_unavailable(r, on_done, "no pool"));
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

ngx_int_t pg_pools_start(ngx_cycle_t* cycle) noexcept try {
    auto* main = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (main == nullptr) return NGX_OK;
    auto** specs = static_cast<PgPoolSpec**>(main->pool_specs.elts);
    for (ngx_uint_t i = 0; i < main->pool_specs.nelts; i++) {
        specs[i]->pool = new PgPool(*specs[i], cycle->log);
        specs[i]->pool->connect_all();
    }
    return NGX_OK;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "chatterd: cannot create postgres pools: %s",
                  e.what());
    return NGX_ERROR;
}

void pg_pools_stop(ngx_cycle_t* cycle) noexcept {
    auto* main = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (main == nullptr) return;
    auto** specs = static_cast<PgPoolSpec**>(main->pool_specs.elts);
    for (ngx_uint_t i = 0; i < main->pool_specs.nelts; i++) {
        delete specs[i]->pool;
        specs[i]->pool = nullptr;
    }
}

bool pg_result_means_unavailable(const PGresult* result) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (state == nullptr) return true;  // no SQLSTATE: libpq's own error (connection trouble)
    std::string_view cls(state, 2);
    // 08: connection exception, 53: insufficient resources, 57: operator intervention (shutdown)
    return cls == "08" || cls == "53" || cls == "57";
}

}  // namespace chatterd
