// One connection of the postgres pool: a PGconn whose socket is an nginx connection. Read
// interest is level-triggered and always on (an idle connection notices a server restart;
// data libpq left unread fires again instead of waiting for a new edge); write interest only
// while libpq has bytes to send. A connection that errs or times out is closed (never
// cancelled: PQcancel blocks); its pool opens another on demand.
#include "ngx/pg_connection.h"

#include "ngx/metrics.h"

#include <sys/stat.h>

#include <cstring>

namespace chatterd {

namespace {
PgServed served(const PgBatch* batch) {
    if (batch == nullptr) return PgServed::alone;
    return batch->kind == PgBatch::Kind::combined ? PgServed::combined : PgServed::shared;
}

bool has_calls(const StatementCalls& calls) {
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] != nullptr) return true;
    }
    return false;
}

const char* state_name(ConnectionState state) {
    switch (state) {
    case ConnectionState::closed: return "closed";
    case ConnectionState::connecting: return "connecting";
    case ConnectionState::idle: return "idle";
    case ConnectionState::preparing: return "preparing";
    case ConnectionState::querying: return "querying";
    case ConnectionState::copying: return "copying";
    }
    return "?";
}

}  // namespace

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

PgConnection::PgConnection(const PgPoolSpec& spec, const std::vector<ConnectTarget>& targets,
                           ngx_log_t* log, ConnectionOwner& owner)
    : spec_(spec), targets_(targets), log_(log), owner_(owner) {
    deadline_.data = this;
    deadline_.log = log_;
    deadline_.handler = on_deadline;
}

void PgConnection::set_state(ConnectionState state) {
    if (state == state_) return;
    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres connection %p %s -> %s, fd %d",
                   this, state_name(state_), state_name(state),
                   socket_ != nullptr ? socket_->fd : -1);
    state_ = state;
}

// Takes the requests the statement served, for delivery or requeueing.
StatementCalls PgConnection::take_calls() {
    StatementCalls calls = statement_.calls;
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] == nullptr) continue;
        set_call_state(calls.entries[i], CallState::outside);
        calls.entries[i]->connection = nullptr;
    }
    statement_.calls.count = 0;
    return calls;
}

void PgConnection::forget(const PgCall* call) {
    StatementCalls& calls = statement_.calls;
    for (std::size_t i = 0; i < calls.count; i++) {
        if (calls.entries[i] == call) calls.entries[i] = nullptr;
    }
}

// ---- opening -------------------------------------------------------------------------------

// A connect tries the hosts in turn, from the one the latest connection reached, each under
// its own deadline (see ConnectTarget).
void PgConnection::connect(std::size_t first_target) {
    set_state(ConnectionState::connecting);
    target_ = first_target;
    targets_tried_ = 0;
    start_attempt();
}

void PgConnection::start_attempt() {
    const ConnectTarget& target = targets_[target_];
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres connection %p tries host %uz",
                   this, target_ + 1);
    count_pg_connect(spec_);
    conn_ =
        PQconnectStartParams(target.keywords.data(), target.values.data(), target.expand_dbname);
    if (conn_ == nullptr) return no_socket("out of memory");
    if (PQstatus(conn_) == CONNECTION_BAD || PQsetnonblocking(conn_, 1) != 0) {
        return attempt_failed(PQerrorMessage(conn_));
    }
    PQsetNoticeProcessor(conn_, log_notice, this);
    if (!follow_socket()) return no_socket("its socket cannot be watched");
    ngx_add_timer(&deadline_, target.deadline);
    // libpq: before the first PQconnectPoll, behave as if it asked to wait for writability.
    if (!want_write(true)) no_socket("its socket cannot be watched");
}

void PgConnection::advance_connect() {
    PostgresPollingStatusType status = PQconnectPoll(conn_);
    if (status == PGRES_POLLING_FAILED) return attempt_failed(PQerrorMessage(conn_));
    if (!follow_socket()) return no_socket("its socket cannot be watched");
    if (status != PGRES_POLLING_OK) {
        if (!want_write(status == PGRES_POLLING_WRITING)) no_socket("its socket cannot be watched");
        return;
    }
    if (!want_write(false)) return no_socket("its socket cannot be watched");
    ngx_del_timer(&deadline_);
    set_state(ConnectionState::idle);
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres connected, fd %d, host %uz",
                   socket_->fd, target_ + 1);
    owner_.connected(*this);
}

// One host refused or did not answer: the next one is tried, until each had its turn. A
// socket this worker could not create is no news of the database.
void PgConnection::attempt_failed(const char* cause) {
    if (std::strstr(cause, "could not create socket") != nullptr) return no_socket(cause);
    if (++targets_tried_ >= targets_.size()) {
        // The database refused or did not answer on any host.
        std::string why(OneLine(cause).view());
        close();
        return owner_.connect_failed(why.c_str());
    }
    OneLine line(cause);
    std::string_view why = line.view();
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres host %uz failed: %*s",
                   target_ + 1, why.size(), why.data());
    std::size_t next = (target_ + 1) % targets_.size();
    std::size_t tried = targets_tried_;
    close();
    set_state(ConnectionState::connecting);
    target_ = next;
    targets_tried_ = tried;
    start_attempt();
}

// This worker could not get a socket for the connect (descriptors or worker_connections used
// up, no memory): the database may be fine, the pool decides what the requests get.
void PgConnection::no_socket(const char* cause) {
    std::string why(cause);
    close();
    owner_.no_socket(why.c_str());
}

// ---- sockets -------------------------------------------------------------------------------

// libpq may move to another socket during a connect (the next host or address, SSL or GSS
// fallback), closing the old one first, so the new one often gets the same number while the
// kernel has dropped the old one's epoll registration. The socket is followed by identity
// (its inode), not by number, and registered again whenever it changed.
bool PgConnection::follow_socket() {
    int fd = PQsocket(conn_);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return false;
    if (socket_ != nullptr && socket_->fd == fd && socket_inode_ == st.st_ino) return true;
    detach_socket();  // the old descriptor, if any, is already closed by libpq
    socket_inode_ = st.st_ino;
    return attach_socket();
}

bool PgConnection::attach_socket() {
    ngx_connection_t* c = ngx_get_connection(PQsocket(conn_), log_);
    if (c == nullptr) return false;
    c->data = this;
    c->log = log_;
    c->read->log = log_;
    c->write->log = log_;
    c->read->handler = on_socket_event;
    c->write->handler = on_socket_event;
    socket_ = c;
    return ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
}

// libpq owns the descriptor: nginx forgets it here (NGX_CLOSE_EVENT: no epoll_ctl, the
// descriptor is or will be closed), PQfinish (or libpq itself) closes it.
void PgConnection::detach_socket() {
    ngx_connection_t* c = socket_;
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
    socket_ = nullptr;
    socket_inode_ = 0;
}

bool PgConnection::want_write(bool on) {
    ngx_event_t* wev = socket_->write;
    if (on && !wev->active) return ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
    if (!on && wev->active) return ngx_del_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) == NGX_OK;
    return true;
}

// ---- closing -------------------------------------------------------------------------------

void PgConnection::failed(const char* what) {
    owner_.connection_failed(what, conn_ != nullptr ? PQerrorMessage(conn_) : "");
}

// An open connection broke: its requests get 503 (their statement may or may not have run).
void PgConnection::lost(const char* what) {
    failed(what);
    drop("the postgres connection was lost");
}

void PgConnection::drop(const char* reason) {
    StatementCalls calls = take_calls();
    close();
    owner_.statement_lost(calls, reason);
}

void PgConnection::close() {
    if (deadline_.timer_set) ngx_del_timer(&deadline_);
    detach_socket();
    if (final_result_ != nullptr) PQclear(final_result_);
    if (conn_ != nullptr) PQfinish(conn_);
    final_result_ = nullptr;
    conn_ = nullptr;
    take_calls();
    prepared_count_ = 0;
    set_state(ConnectionState::closed);
}

// ---- statements ----------------------------------------------------------------------------

void PgConnection::run() {
    for (std::size_t i = 0; i < statement_.calls.count; i++) {
        if (int* pid = statement_.calls.entries[i]->query.backend_pid) *pid = PQbackendPID(conn_);
    }
    if (!send_query()) {
        // Nothing reached the server: the requests may safely go to another connection.
        failed("send");
        StatementCalls calls = take_calls();
        close();
        return owner_.statement_not_sent(calls);
    }
    count_pg_statement(spec_, statement_.calls.count, served(statement_.query.batch));
    const PgQuery& q = statement_.query;
    ngx_add_timer(&deadline_, q.timeout ? q.timeout : spec_.timeout);
    if (!flush()) lost("query");
}

// By the names' text: two statements with the same name are one on the server, whatever
// string literal holds the name.
bool PgConnection::is_prepared(const char* name) const {
    for (std::size_t i = 0; i < prepared_count_; i++) {
        if (std::strcmp(prepared_[i], name) == 0) return true;
    }
    return false;
}

// Only the names of kPreparedNames, for which each connection keeps room: any other is a
// mistake of the module's, told rather than prepared.
bool PgConnection::may_prepare(const char* name) const {
    for (const char* declared : kPreparedNames) {
        if (std::strcmp(declared, name) == 0) return prepared_count_ < kPreparedStatements;
    }
    ngx_log_error(NGX_LOG_ALERT, log_, 0,
                  "chatterd: statement \"%s\" is not among the prepared statements the module "
                  "declares (kPreparedNames); sent unprepared",
                  name);
    return false;
}

// Sends the query, or first its preparation when this connection has not prepared it yet:
// the statement is then parsed and planned once per connection, not once per request.
bool PgConnection::send_query() {
    const PgQuery& q = statement_.query;
    bool prepared = q.name != nullptr && is_prepared(q.name);
    if (q.name != nullptr && !prepared && may_prepare(q.name)) {
        set_state(ConnectionState::preparing);
        return PQsendPrepare(conn_, q.name, q.sql, q.param_count, nullptr);
    }
    set_state(ConnectionState::querying);
    int format = q.binary_results ? 1 : 0;
    return prepared ? PQsendQueryPrepared(conn_, q.name, q.param_count, q.params, nullptr, nullptr,
                                          format)
                    : PQsendQueryParams(conn_, q.sql, q.param_count, nullptr, q.params, nullptr,
                                        nullptr, format);
}

// The preparation is done: run the statement for the request, still under its deadline. A
// failed preparation (say, a missing table) is the request's answer.
void PgConnection::finish_preparing() {
    PGresult* result = final_result_;
    if (result == nullptr || PQresultStatus(result) != PGRES_COMMAND_OK) return finish_query();
    prepared_[prepared_count_++] = statement_.query.name;
    if (!has_calls(statement_.calls)) return finish_query();
    PQclear(result);
    final_result_ = nullptr;
    if (!send_query() || !flush()) lost("query");
}

bool PgConnection::flush() {
    int pending = PQflush(conn_);
    return pending >= 0 && want_write(pending == 1);
}

void PgConnection::advance_query(bool writable) {
    if (writable) {
        if (!flush()) lost("query");
        return;
    }
    if (!PQconsumeInput(conn_) || !flush()) return lost("query");
    while (true) {
        if (state_ == ConnectionState::copying) {
            CopyProgress progress = take_copy_data();
            if (progress == CopyProgress::failed) return lost("COPY");
            if (progress == CopyProgress::needs_input) return;
        }
        if (PQisBusy(conn_)) return;
        PGresult* result = PQgetResult(conn_);
        if (result == nullptr) {
            return state_ == ConnectionState::preparing ? finish_preparing() : finish_query();
        }
        keep_result(result);
    }
}

// Hands every CopyData message libpq has read to the request (a shared statement's reader),
// until the COPY ends (its final result follows) or more input is needed. A request that went
// away, or that did not ask for a COPY, gets none: the data is read and dropped.
PgConnection::CopyProgress PgConnection::take_copy_data() {
    char* data = nullptr;
    int length;
    while ((length = PQgetCopyData(conn_, &data, 1)) > 0) {
        const StatementCalls& calls = statement_.calls;
        PgCall* call = calls.count > 0 ? calls.entries[0] : nullptr;  // the reader
        if (call != nullptr && call->on_row != nullptr && !call->rows_refused) {
            std::string_view message(data, static_cast<std::size_t>(length));
            call->rows_refused = !call->on_row(call->request, message);
        }
        PQfreemem(data);
    }
    if (length == 0) return CopyProgress::needs_input;
    set_state(ConnectionState::querying);
    return length == -1 ? CopyProgress::done : CopyProgress::failed;
}

void PgConnection::keep_result(PGresult* result) {
    if (PQresultStatus(result) == PGRES_COPY_OUT) {
        set_state(ConnectionState::copying);
        PQclear(result);
        return;
    }
    if (final_result_ == nullptr) {
        final_result_ = result;
    } else {
        PQclear(result);
    }
}

void PgConnection::finish_query() {
    ngx_del_timer(&deadline_);
    StatementCalls calls = take_calls();
    PGresult* result = final_result_;
    const PgBatch* batch = calls.count > 1 ? statement_.query.batch : nullptr;
    final_result_ = nullptr;
    set_state(ConnectionState::idle);
    // A connection left inside a transaction or broken is not reused.
    if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE) {
        failed("connection state check");
        close();
    }
    owner_.statement_done(calls, batch, result);
    if (result != nullptr) PQclear(result);
}

void PgConnection::on_idle_event() {
    // An idle connection only hears from the server when it goes away (restart, idle timeout),
    // or, when it listens, of a notification.
    if (!PQconsumeInput(conn_) || PQstatus(conn_) == CONNECTION_BAD) {
        failed("idle connection");
        close();
        return;
    }
    while (!PQisBusy(conn_)) {
        PGresult* stray = PQgetResult(conn_);
        if (stray == nullptr) break;
        PQclear(stray);
    }
    // A LISTEN connection's news; the pool's connections never listen.
    bool notified = false;
    while (PGnotify* notification = PQnotifies(conn_)) {
        PQfreemem(notification);
        notified = true;
    }
    if (notified) owner_.notified();
}

// ---- event plumbing ------------------------------------------------------------------------

void PgConnection::on_socket_event(ngx_event_t* ev) noexcept {
    auto* c = static_cast<ngx_connection_t*>(ev->data);
    auto* connection = static_cast<PgConnection*>(c->data);
    switch (connection->state_) {
    case ConnectionState::connecting: connection->advance_connect(); break;
    case ConnectionState::preparing:
    case ConnectionState::querying:
    case ConnectionState::copying: connection->advance_query(ev->write); break;
    case ConnectionState::idle:
        if (!ev->write) connection->on_idle_event();
        break;
    case ConnectionState::closed: break;
    }
    connection->owner_.event_handled();
}

void PgConnection::on_deadline(ngx_event_t* ev) noexcept {
    auto* connection = static_cast<PgConnection*>(ev->data);
    if (connection->state_ == ConnectionState::connecting) {
        char cause[64];
        *ngx_snprintf(reinterpret_cast<u_char*>(cause), sizeof(cause) - 1,
                      "no answer to a connect within %M ms",
                      connection->targets_[connection->target_].deadline) = '\0';
        connection->attempt_failed(cause);
    } else {
        connection->failed("query (timed out)");
        connection->drop("postgres timed out");
    }
    connection->owner_.event_handled();
}

void PgConnection::log_notice(void* data, const char* message) noexcept {
    auto* connection = static_cast<PgConnection*>(data);
    OneLine line(message);
    std::string_view text = line.view();
    ngx_log_error(NGX_LOG_NOTICE, connection->log_, 0, "postgres: %*s", text.size(), text.data());
}

}  // namespace chatterd
