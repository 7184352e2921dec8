// The connections of the postgres pool: each slot owns one PGconn whose socket is an nginx
// connection. Read interest is level-triggered and always on (an idle slot notices a server
// restart; data libpq left unread fires again instead of waiting for a new edge); write
// interest only while libpq has bytes to send. A slot that errs or times out is closed (never
// cancelled: PQcancel blocks) and replaced on demand, from a posted event (pg_pool.cpp).
#include "ngx/pg_pool_impl.h"

#include <sys/stat.h>

#include <cstring>

namespace chatterd {

namespace {
PgServed served(const PgBatch* batch) {
    if (batch == nullptr) return PgServed::alone;
    return batch->kind == PgBatch::Kind::combined ? PgServed::combined : PgServed::shared;
}

// Takes the requests a statement served out of its slot, for delivery or requeueing.
SlotCalls take_calls(PgSlot& slot) {
    SlotCalls calls = slot.calls;
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] == nullptr) continue;
        calls.entries[i]->state = CallState::outside;
        calls.entries[i]->slot = nullptr;
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

// By the names' text: two statements with the same name are one on the server, whatever
// string literal holds the name.
bool is_prepared(const PgSlot& slot, const char* name) {
    for (std::size_t i = 0; i < slot.prepared_count; i++) {
        if (std::strcmp(slot.prepared[i], name) == 0) return true;
    }
    return false;
}
}  // namespace

// ---- opening -------------------------------------------------------------------------------

void PgPool::start() {
    PublishOnReturn publish(*this);
    for (PgSlot& slot : slots_) {
        if (!health_.reachable()) return;
        connect(slot);
    }
}

// Reachable: as many connections as waiting requests not covered by one being opened.
// Probing: the one probe. Backing off: none.
void PgPool::open_connections() {
    ngx_uint_t opening = 0;
    for (const PgSlot& slot : slots_) opening += slot.state == SlotState::connecting;
    for (PgSlot& slot : slots_) {
        if (slot.state != SlotState::closed) continue;
        if (health_.state() == DbState::backing_off) return;
        if (health_.state() == DbState::probing ? opening > 0 : waiting_count_ <= opening) return;
        opening++;
        connect(slot);
    }
}

// The conninfo's hosts, each with every other option; before them, what the operator's
// conninfo may override: text arrives in UTF-8, as the JSON is written (timestamps come in
// binary, so no DateStyle).
std::vector<ConnectTarget> connect_targets(const ngx_str_t& conninfo, ngx_msec_t timeout) {
    static const ConninfoOptions defaults = {{"client_encoding", "UTF8"},
                                             {"fallback_application_name", "chatterd"}};
    const char* text = reinterpret_cast<const char*>(conninfo.data);
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(text, &error);
    PQfreemem(error);
    ConninfoOptions given;
    for (PQconninfoOption* o = parsed; o != nullptr && o->keyword != nullptr; o++) {
        if (o->val != nullptr) given.push_back({o->keyword, o->val});
    }
    bool parsed_ok = parsed != nullptr;
    if (parsed_ok) PQconninfoFree(parsed);
    // nginx -t parsed it; should it not parse now, libpq is handed the text and says why.
    std::vector<ConninfoOptions> hosts =
        parsed_ok ? conninfo_per_host(given) : std::vector<ConninfoOptions>{{{"dbname", text}}};
    std::vector<ConnectTarget> targets(hosts.size());
    for (std::size_t i = 0; i < hosts.size(); i++) {
        ConnectTarget& target = targets[i];
        target.options = defaults;
        target.options.insert(target.options.end(), hosts[i].begin(), hosts[i].end());
        for (const ConninfoOption& option : target.options) {
            target.keywords.push_back(option.keyword.c_str());
            target.values.push_back(option.value.c_str());
        }
        target.keywords.push_back(nullptr);
        target.values.push_back(nullptr);
        target.expand_dbname = !parsed_ok;
        unsigned long own = connect_timeout_ms(hosts[i]);
        target.deadline = own > 0 ? static_cast<ngx_msec_t>(own) : timeout;
    }
    return targets;
}

// A connect tries the hosts in turn, from the one the latest connection reached, each under
// its own deadline (see ConnectTarget).
void PgPool::connect(PgSlot& slot) {
    slot.state = SlotState::connecting;
    slot.target = preferred_target_;
    slot.targets_tried = 0;
    start_attempt(slot);
}

void PgPool::start_attempt(PgSlot& slot) {
    const ConnectTarget& target = targets_[slot.target];
    count_pg_connect(spec_);
    slot.conn =
        PQconnectStartParams(target.keywords.data(), target.values.data(), target.expand_dbname);
    if (slot.conn == nullptr) return no_socket(slot, "out of memory");
    if (PQstatus(slot.conn) == CONNECTION_BAD || PQsetnonblocking(slot.conn, 1) != 0) {
        return attempt_failed(slot, PQerrorMessage(slot.conn));
    }
    PQsetNoticeProcessor(slot.conn, log_notice, &slot);
    if (!follow_socket(slot)) return no_socket(slot, "its socket cannot be watched");
    ngx_add_timer(&slot.deadline, target.deadline);
    // libpq: before the first PQconnectPoll, behave as if it asked to wait for writability.
    if (!want_write(slot, true)) no_socket(slot, "its socket cannot be watched");
}

void PgPool::advance_connect(PgSlot& slot) {
    PostgresPollingStatusType status = PQconnectPoll(slot.conn);
    if (status == PGRES_POLLING_FAILED) return attempt_failed(slot, PQerrorMessage(slot.conn));
    if (!follow_socket(slot)) return no_socket(slot, "its socket cannot be watched");
    if (status != PGRES_POLLING_OK) {
        if (!want_write(slot, status == PGRES_POLLING_WRITING)) {
            no_socket(slot, "its socket cannot be watched");
        }
        return;
    }
    if (!want_write(slot, false)) return no_socket(slot, "its socket cannot be watched");
    ngx_del_timer(&slot.deadline);
    slot.state = SlotState::idle;
    preferred_target_ = slot.target;
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres connected, fd %d, host %uz",
                   slot.socket->fd, slot.target + 1);
    health_.answered();
    dispatch();
}

// One host refused or did not answer: the next one is tried, until each had its turn. A
// socket this worker could not create is no news of the database.
void PgPool::attempt_failed(PgSlot& slot, const char* cause) {
    if (std::strstr(cause, "could not create socket") != nullptr) return no_socket(slot, cause);
    if (++slot.targets_tried >= targets_.size()) return connect_failed(slot, cause);
    OneLine line(cause);
    std::string_view why = line.view();
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres host %uz failed: %*s",
                   slot.target + 1, why.size(), why.data());
    close_slot(slot);
    slot.state = SlotState::connecting;
    slot.target = (slot.target + 1) % targets_.size();
    start_attempt(slot);
}

// The database refused or did not answer a new connection on any host: the pool backs off,
// and the requests no open connection can take are answered now. Nothing here opens a
// connection.
void PgPool::connect_failed(PgSlot& slot, const char* cause) {
    std::string why(OneLine(cause).view());
    close_slot(slot);
    health_.connect_failed(why.c_str());
    refuse_waiting_if_down();
}

// This worker could not get a socket for the connect (descriptors or worker_connections used
// up, no memory): the database may be fine, so it is not marked down and nothing backs off.
// Requests that no connection, open or opening, can take get 503 now; the next request asks
// for a connection again.
void PgPool::no_socket(PgSlot& slot, const char* cause) {
    health_.no_socket(cause);
    close_slot(slot);
    if (has_open_slot() || has_slot(SlotState::connecting)) return;
    while (!ngx_queue_empty(&waiting_)) {
        PgCall* call = ngx_queue_data(ngx_queue_head(&waiting_), PgCall, link);
        unqueue(call);
        ngx_log_error(NGX_LOG_INFO, call->log, 0,
                      "chatterd: postgres (%s): no socket for a connection in this worker; 503",
                      health_.target().c_str());
        deliver(call, PgOutcome::not_sent("no socket for a postgres connection"));
    }
}

// ---- sockets -------------------------------------------------------------------------------

// libpq may move to another socket during a connect (the next host or address, SSL or GSS
// fallback), closing the old one first, so the new one often gets the same number while the
// kernel has dropped the old one's epoll registration. The socket is followed by identity
// (its inode), not by number, and registered again whenever it changed.
bool PgPool::follow_socket(PgSlot& slot) {
    int fd = PQsocket(slot.conn);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return false;
    if (slot.socket != nullptr && slot.socket->fd == fd && slot.socket_inode == st.st_ino) {
        return true;
    }
    detach_socket(slot);  // the old descriptor, if any, is already closed by libpq
    slot.socket_inode = st.st_ino;
    return attach_socket(slot);
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

// libpq owns the descriptor: nginx forgets it here (NGX_CLOSE_EVENT: no epoll_ctl, the
// descriptor is or will be closed), PQfinish (or libpq itself) closes it.
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
    slot.socket_inode = 0;
}

bool PgPool::want_write(PgSlot& slot, bool on) {
    ngx_event_t* wev = slot.socket->write;
    if (on && !wev->active) return ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
    if (!on && wev->active) return ngx_del_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
    return true;
}

// ---- closing -------------------------------------------------------------------------------

void PgPool::log_connection_failure(PgSlot& slot, const char* what) {
    health_.connection_failed(what, slot.conn ? PQerrorMessage(slot.conn) : "");
}

// An open connection broke: its requests get 503 (their statement may or may not have run).
void PgPool::connection_lost(PgSlot& slot, const char* what) {
    log_connection_failure(slot, what);
    drop_slot(slot, "the postgres connection was lost");
}

// Closes a busy slot whose statement's outcome is not known (broken, timed out).
void PgPool::drop_slot(PgSlot& slot, const char* reason) {
    SlotCalls calls = take_calls(slot);
    close_slot(slot);
    deliver_all(calls, PgOutcome::unknown(reason));
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
    slot.prepared_count = 0;
    slot.state = SlotState::closed;
}

// ---- queries -------------------------------------------------------------------------------

void PgPool::start_query(PgSlot& slot, PgCall* call) {
    slot.calls.entries[0] = call;
    slot.calls.count = 1;
    call->state = CallState::running;
    call->slot = &slot;
    slot.query = call->query;
    const PgBatch* batch = call->query.batch;
    if (batch != nullptr && !call->alone) {
        join_waiting_calls(slot, batch);
        if (slot.calls.count > 1) {
            ngx_log_debug2(
                NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: one %s statement for %uz requests",
                batch->kind == PgBatch::Kind::combined ? "combined" : "shared", slot.calls.count);
        }
        if (batch->kind == PgBatch::Kind::combined && slot.calls.count > 1
            && !build_batch_query(slot)) {
            // Out of memory for the batch: the others wait, this one runs alone.
            SlotCalls others = slot.calls;
            others.entries[0] = nullptr;
            slot.calls.count = 1;
            requeue_at_head(others, false);
        }
    }
    for (std::size_t i = 0; i < slot.calls.count; i++) {
        if (int* pid = slot.calls.entries[i]->query.backend_pid) *pid = PQbackendPID(slot.conn);
    }
    if (!send_query(slot)) {
        // Nothing reached the server: the requests may safely go to another connection.
        log_connection_failure(slot, "send");
        SlotCalls calls = take_calls(slot);
        close_slot(slot);
        requeue_at_head(calls, false);
        return;
    }
    count_pg_statement(spec_, slot.calls.count, served(slot.query.batch));
    ngx_add_timer(&slot.deadline, slot.query.timeout ? slot.query.timeout : spec_.timeout);
    if (!flush(slot)) connection_lost(slot, "query");
}

// Sends the query, or first its preparation when this connection has not prepared it yet:
// the statement is then parsed and planned once per connection, not once per request.
bool PgPool::send_query(PgSlot& slot) {
    const PgQuery& q = slot.query;
    bool prepared = q.name != nullptr && is_prepared(slot, q.name);
    if (q.name != nullptr && !prepared
        && slot.prepared_count < sizeof(slot.prepared) / sizeof(slot.prepared[0])) {
        slot.state = SlotState::preparing;
        return PQsendPrepare(slot.conn, q.name, q.sql, q.param_count, nullptr);
    }
    slot.state = SlotState::querying;
    return prepared ? PQsendQueryPrepared(slot.conn, q.name, q.param_count, q.params, nullptr,
                                          nullptr, 0)
                    : PQsendQueryParams(slot.conn, q.sql, q.param_count, nullptr, q.params, nullptr,
                                        nullptr, 0);
}

// The preparation is done: run the statement for the request, still under its deadline. A
// failed preparation (say, a missing table) is the request's answer.
void PgPool::finish_preparing(PgSlot& slot) {
    PGresult* result = slot.final_result;
    if (result == nullptr || PQresultStatus(result) != PGRES_COMMAND_OK) return finish_query(slot);
    slot.prepared[slot.prepared_count++] = slot.query.name;
    if (!has_calls(slot.calls)) return finish_query(slot);
    PQclear(result);
    slot.final_result = nullptr;
    if (!send_query(slot) || !flush(slot)) connection_lost(slot, "query");
}

bool PgPool::flush(PgSlot& slot) {
    int pending = PQflush(slot.conn);
    return pending >= 0 && want_write(slot, pending == 1);
}

void PgPool::advance_query(PgSlot& slot, bool writable) {
    if (writable) {
        if (!flush(slot)) connection_lost(slot, "query");
        return;
    }
    if (!PQconsumeInput(slot.conn) || !flush(slot)) return connection_lost(slot, "query");
    while (true) {
        if (slot.state == SlotState::copying) {
            CopyProgress progress = take_copy_data(slot);
            if (progress == CopyProgress::failed) return connection_lost(slot, "COPY");
            if (progress == CopyProgress::needs_input) return;
        }
        if (PQisBusy(slot.conn)) return;
        PGresult* result = PQgetResult(slot.conn);
        if (result == nullptr) {
            return slot.state == SlotState::preparing ? finish_preparing(slot) : finish_query(slot);
        }
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
    slot.state = SlotState::querying;
    return length == -1 ? CopyProgress::done : CopyProgress::failed;
}

void PgPool::keep_result(PgSlot& slot, PGresult* result) {
    if (PQresultStatus(result) == PGRES_COPY_OUT) {
        slot.state = SlotState::copying;
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
    if (PQstatus(slot.conn) != CONNECTION_OK || PQtransactionStatus(slot.conn) != PQTRANS_IDLE) {
        log_connection_failure(slot, "connection state check");
        close_slot(slot);
    }
    deliver_outcome(calls, batch, result);
    if (result != nullptr) PQclear(result);
    dispatch();
}

void PgPool::on_idle_event(PgSlot& slot) {
    // An idle connection only hears from the server when it goes away (restart, idle timeout).
    if (!PQconsumeInput(slot.conn) || PQstatus(slot.conn) == CONNECTION_BAD) {
        log_connection_failure(slot, "idle connection");
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

void PgPool::on_socket_event(ngx_event_t* ev) noexcept {
    auto* c = static_cast<ngx_connection_t*>(ev->data);
    auto* slot = static_cast<PgSlot*>(c->data);
    PgPool* pool = slot->pool;
    PublishOnReturn publish(*pool);
    switch (slot->state) {
    case SlotState::connecting: pool->advance_connect(*slot); break;
    case SlotState::preparing:
    case SlotState::querying:
    case SlotState::copying: pool->advance_query(*slot, ev->write); break;
    case SlotState::idle:
        if (!ev->write) pool->on_idle_event(*slot);
        break;
    case SlotState::closed: break;
    }
}

void PgPool::on_slot_deadline(ngx_event_t* ev) noexcept {
    auto* slot = static_cast<PgSlot*>(ev->data);
    PgPool* pool = slot->pool;
    PublishOnReturn publish(*pool);
    if (slot->state == SlotState::connecting) {
        char cause[64];
        *ngx_snprintf(reinterpret_cast<u_char*>(cause), sizeof(cause) - 1,
                      "no answer to a connect within %M ms",
                      pool->targets_[slot->target].deadline) = '\0';
        return pool->attempt_failed(*slot, cause);
    }
    pool->log_connection_failure(*slot, "query (timed out)");
    pool->drop_slot(*slot, "postgres timed out");
}

void PgPool::log_notice(void* data, const char* message) noexcept {
    auto* slot = static_cast<PgSlot*>(data);
    OneLine line(message);
    std::string_view text = line.view();
    ngx_log_error(NGX_LOG_NOTICE, slot->pool->log_, 0, "postgres: %*s", text.size(), text.data());
}

}  // namespace chatterd
