// The connections of the postgres pool: each slot owns one PGconn whose socket is an nginx
// connection. Read interest is level-triggered and always on (an idle slot notices a server
// restart; data libpq left unread fires again instead of waiting for a new edge); write
// interest only while libpq has bytes to send. A slot that errs or times out is closed (never
// cancelled: PQcancel blocks) and replaced on demand.
#include "ngx/pg_pool_impl.h"

namespace chatterd {

namespace {
// Takes the requests a statement served out of its slot, for delivery or requeueing.
SlotCalls take_calls(PgSlot& slot) {
    SlotCalls calls = slot.calls;
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] != nullptr) calls.entries[i]->slot = nullptr;
    }
    slot.calls.count = 0;
    return calls;
}

bool has_calls(const SlotCalls& calls) {
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] != nullptr) return true;
    }
    return false;
}

// A batch that did not store what it carried: one request's values may be the cause.
bool batch_failed(const PGresult* result) {
    ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
}
}  // namespace

// ---- connections ---------------------------------------------------------------------------

void PgPool::connect(PgSlot& slot) {
    // Before dbname, so the operator's conninfo (expanded in its place) can override them:
    // text arrives in UTF-8, as the JSON is written (timestamps come in binary, so no DateStyle).
    static const char* const keywords[] = {"client_encoding", "fallback_application_name",
                                           "dbname", nullptr};
    const char* const values[] = {"UTF8", "chatterd",
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
    OneLine line(slot.conn ? PQerrorMessage(slot.conn) : "");
    std::string_view message = line.view();
    ngx_log_error(NGX_LOG_ERR, log_, 0, "postgres %s (host=%s port=%s dbname=%s) failed: %*s",
                  what, host ? host : "", port ? port : "", db ? db : "", message.size(),
                  message.data());
}

void PgPool::fail_slot(PgSlot& slot, const char* what) {
    log_failure(slot, what);
    drop_slot(slot, "postgres connection failed");
}

// Closes a slot that failed or timed out and answers its requests with reason (503).
void PgPool::drop_slot(PgSlot& slot, const char* reason) {
    SlotCalls calls = take_calls(slot);
    bool was_connecting = slot.state == SlotState::connecting;
    close_slot(slot);
    deliver_all(calls, nullptr, reason);
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
    take_calls(slot);
    slot.preparing = nullptr;
    slot.prepared_count = 0;
    slot.copying = false;
    slot.state = SlotState::closed;
}

// ---- queries -------------------------------------------------------------------------------

void PgPool::start_query(PgSlot& slot, PgCall* call) {
    slot.state = SlotState::busy;
    slot.copying = false;
    slot.calls.entries[0] = call;
    slot.calls.count = 1;
    call->slot = &slot;
    slot.query = call->query;
    const PgBatch* batch = call->query.batch;
    if (batch != nullptr && !call->alone) {
        join_waiting_calls(slot, batch);
        if (slot.calls.count > 1) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0,
                           "chatterd: one %s statement for %uz requests",
                           batch->sql ? "combined" : "shared", slot.calls.count);
        }
        if (batch->sql != nullptr && slot.calls.count > 1 && !build_batch_query(slot)) {
            // Out of memory for the batch: the others wait, this one runs alone.
            SlotCalls others = slot.calls;
            others.entries[0] = nullptr;
            slot.calls.count = 1;
            requeue_at_head(others, false);
        }
    }
    if (!send_query(slot, slot.query)) {
        // Nothing reached the server: the requests may safely go to another connection.
        log_failure(slot, "send");
        SlotCalls calls = take_calls(slot);
        close_slot(slot);
        requeue_at_head(calls, false);
        return;
    }
    ngx_add_timer(&slot.deadline, spec_.timeout);
    if (!flush(slot)) fail_slot(slot, "query");
}

namespace {
bool is_prepared(const PgSlot& slot, const char* name) {
    for (std::size_t i = 0; i < slot.prepared_count; i++) {
        if (slot.prepared[i] == name) return true;
    }
    return false;
}
}  // namespace

// Sends the query, or first its preparation when this connection has not prepared it yet:
// the statement is then parsed and planned once per connection, not once per request.
bool PgPool::send_query(PgSlot& slot, const PgQuery& q) {
    bool prepared = q.name != nullptr && is_prepared(slot, q.name);
    if (q.name != nullptr && !prepared
        && slot.prepared_count < sizeof(slot.prepared) / sizeof(slot.prepared[0])) {
        slot.preparing = q.name;
        return PQsendPrepare(slot.conn, q.name, q.sql, q.param_count, nullptr);
    }
    return prepared ? PQsendQueryPrepared(slot.conn, q.name, q.param_count, q.params, nullptr,
                                          nullptr, 0)
                    : PQsendQueryParams(slot.conn, q.sql, q.param_count, nullptr, q.params,
                                        nullptr, nullptr, 0);
}

// The preparation is done: run the statement for the request, still under its deadline. A
// failed preparation (say, a missing table) is the request's answer.
void PgPool::finish_preparing(PgSlot& slot) {
    PGresult* result = slot.final_result;
    const char* name = slot.preparing;
    slot.preparing = nullptr;
    if (result == nullptr || PQresultStatus(result) != PGRES_COMMAND_OK) return finish_query(slot);
    slot.prepared[slot.prepared_count++] = name;
    if (!has_calls(slot.calls)) return finish_query(slot);
    PQclear(result);
    slot.final_result = nullptr;
    if (!send_query(slot, slot.query) || !flush(slot)) fail_slot(slot, "query");
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
    while (true) {
        if (slot.copying) {
            CopyProgress progress = take_copy_data(slot);
            if (progress == CopyProgress::failed) return fail_slot(slot, "COPY");
            if (progress == CopyProgress::needs_input) return;
        }
        if (PQisBusy(slot.conn)) return;
        PGresult* result = PQgetResult(slot.conn);
        if (result == nullptr) return slot.preparing ? finish_preparing(slot) : finish_query(slot);
        keep_result(slot, result);
    }
}

// Hands every CopyData message libpq has read to the request (a shared statement's reader),
// until the COPY ends (its final result follows) or more input is needed. A request that went
// away, or that did not ask for a COPY, gets none: the data is read and dropped.
PgPool::CopyProgress PgPool::take_copy_data(PgSlot& slot) {
    char* data = nullptr;
    int length;
    while ((length = PQgetCopyData(slot.conn, &data, 1)) > 0) {
        PgCall* call = slot.calls.count > 0 ? slot.calls.entries[0] : nullptr;  // the reader
        if (call != nullptr && call->on_row != nullptr && !call->rows_refused) {
            std::string_view message(data, static_cast<std::size_t>(length));
            call->rows_refused = !call->on_row(call->request, message);
        }
        PQfreemem(data);
    }
    if (length == 0) return CopyProgress::needs_input;
    slot.copying = false;
    return length == -1 ? CopyProgress::done : CopyProgress::failed;
}

void PgPool::keep_result(PgSlot& slot, PGresult* result) {
    if (PQresultStatus(result) == PGRES_COPY_OUT) {
        slot.copying = true;
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
    SlotCalls calls = take_calls(slot);
    PGresult* result = slot.final_result;
    const PgBatch* batch = calls.count > 1 ? slot.query.batch : nullptr;
    slot.final_result = nullptr;
    slot.state = SlotState::idle;
    // A connection left inside a transaction or broken is not reused.
    if (PQtransactionStatus(slot.conn) != PQTRANS_IDLE) {
        log_failure(slot, "connection state check");
        close_slot(slot);
    }
    if (batch != nullptr && batch->sql != nullptr && batch_failed(result)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log_, 0,
                       "chatterd: a combined statement for %uz requests failed, each runs alone",
                       calls.count);
        requeue_at_head(calls, true);
    } else if (batch != nullptr && batch->sql == nullptr && result != nullptr
               && PQresultStatus(result) == PGRES_COMMAND_OK) {
        deliver_shared(calls, result);
    } else {
        deliver_all(calls, result, result ? nullptr : "postgres returned no result");
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
    pool->drop_slot(*slot, "postgres timed out");
}

void PgPool::log_notice(void* data, const char* message) {
    auto* slot = static_cast<PgSlot*>(data);
    OneLine line(message);
    std::string_view text = line.view();
    ngx_log_error(NGX_LOG_NOTICE, slot->pool->log_, 0, "postgres: %*s", text.size(), text.data());
}

}  // namespace chatterd
