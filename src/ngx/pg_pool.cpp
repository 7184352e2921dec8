// Per-worker libpq pool on nginx's event loop: the requests' side. See pg_pool.h for the
// contract, pg_connection.cpp for one connection, pg_health.cpp for the database's state.
#include "ngx/pg_pool_impl.h"

#include "ngx/metrics.h"

#include <new>

namespace chatterd {

PgPool::PgPool(PgPoolSpec& spec, ngx_log_t* log)
    : spec_(spec),
      log_(log),
      targets_(connect_targets(spec.conninfo, spec.timeout)),
      health_(spec, log, *this) {
    ConnectionOwner& owner = *this;
    for (ngx_uint_t i = 0; i < spec.size; i++)
        connections_.emplace_back(spec, targets_, log, owner);
    ngx_queue_init(&waiting_);
    connect_event_.data = this;
    connect_event_.log = log_;
    connect_event_.handler = on_connect_event;
}

PgPool::~PgPool() {
    if (connect_event_.posted) {
        ngx_delete_posted_event(&connect_event_);
    }
    for (PgConnection& connection : connections_) connection.close();
}

// ---- opening -------------------------------------------------------------------------------

void PgPool::start() {
    PublishOnReturn publish(*this);
    for (PgConnection& connection : connections_) {
        if (!health_.reachable()) return;
        connection.connect(preferred_target_);
    }
}

void PgPool::on_connect_event(ngx_event_t* ev) noexcept {
    auto* pool = static_cast<PgPool*>(ev->data);
    PublishOnReturn publish(*pool);
    pool->open_connections();
}

void PgPool::open_probe() noexcept {
    PublishOnReturn publish(*this);
    open_connections();
}

// Connections are opened from a posted event, never inside the code that found the need for
// them: a connect that fails at once (a unix socket nobody listens on) cannot start the next
// one from within itself, whatever path led to it.
void PgPool::want_connections() {
    // ngx_post_event is a multi-statement macro: braces are required.
    if (!connect_event_.posted) {
        ngx_post_event(&connect_event_, &ngx_posted_events);
    }
}

// Reachable: as many connections as waiting requests not covered by one being opened.
// Probing: the one probe. Backing off: none.
void PgPool::open_connections() {
    ngx_uint_t opening = 0;
    for (const PgConnection& c : connections_) opening += c.state() == ConnectionState::connecting;
    for (PgConnection& connection : connections_) {
        if (connection.state() != ConnectionState::closed) continue;
        if (health_.state() == DbState::backing_off) return;
        if (health_.state() == DbState::probing ? opening > 0 : waiting_count_ <= opening) return;
        opening++;
        connection.connect(preferred_target_);
    }
}

// ---- waiting requests ----------------------------------------------------------------------

void PgPool::submit(PgCall* call) {
    PublishOnReturn publish(*this);
    if (!health_.reachable() && !has_open_connection()) {
        health_.request_refused(call->log);
        deliver(call, PgOutcome::refused());
        return;
    }
    // The queue bounds waiting: a request an idle connection can take at once never waits.
    if (waiting_count_ >= spec_.queue && !has_connection(ConnectionState::idle)) {
        // The clients' load, not a fault: told per request at info only, and counted.
        ngx_log_error(NGX_LOG_INFO, call->log, 0,
                      "chatterd: postgres request queue is full (chatterd_pg_queue %ui); 503",
                      spec_.queue);
        count_pg_error(spec_, PgError::queue_full);
        deliver(call, PgOutcome::not_sent("postgres request queue is full"));
        return;
    }
    ngx_queue_insert_tail(&waiting_, &call->link);
    set_call_state(call, CallState::waiting);
    waiting_count_++;
    ngx_add_timer(&call->deadline, call->query.timeout ? call->query.timeout : spec_.timeout);
    dispatch();
}

bool PgPool::has_connection(ConnectionState state) const {
    for (const PgConnection& connection : connections_) {
        if (connection.state() == state) return true;
    }
    return false;
}

bool PgPool::has_open_connection() const {
    for (const PgConnection& connection : connections_) {
        ConnectionState state = connection.state();
        if (state != ConnectionState::closed && state != ConnectionState::connecting) return true;
    }
    return false;
}

// Hands waiting requests to idle connections, in queue order among those that may start (see
// may_start); asks for new connections (never opens them here, see want_connections) when
// requests are left.
void PgPool::dispatch() {
    for (PgConnection& connection : connections_) {
        if (connection.state() != ConnectionState::idle) continue;
        PgCall* call = first_startable_call();
        if (call == nullptr) break;
        unqueue(call, CallState::running);
        start_statement(connection, call);
    }
    if (ngx_queue_empty(&waiting_)) return;
    if (!health_.reachable()) return refuse_waiting_if_down();
    ngx_uint_t opening = 0;
    for (const PgConnection& c : connections_) opening += c.state() == ConnectionState::connecting;
    if (waiting_count_ > opening && has_connection(ConnectionState::closed)) want_connections();
}

PgCall* PgPool::first_startable_call() const {
    for (ngx_queue_t* link = ngx_queue_head(&waiting_); link != ngx_queue_sentinel(&waiting_);
         link = ngx_queue_next(link)) {
        PgCall* call = ngx_queue_data(link, PgCall, link);
        if (may_start(call)) return call;
    }
    return nullptr;
}

// While the database is known to be down, waiting for it helps nobody: the requests that no
// open connection will take are answered now.
void PgPool::refuse_waiting_if_down() {
    if (health_.reachable() || has_open_connection()) return;
    while (!ngx_queue_empty(&waiting_)) {
        PgCall* call = ngx_queue_data(ngx_queue_head(&waiting_), PgCall, link);
        unqueue(call);
        health_.request_refused(call->log);
        deliver(call, PgOutcome::refused());
    }
}

// Takes a waiting call out of the queue, to next (running: its statement starts now).
void PgPool::unqueue(PgCall* call, CallState next) {
    if (call->state != CallState::waiting) return;
    ngx_queue_remove(&call->link);
    set_call_state(call, next);
    waiting_count_--;
}

void PgPool::detach(PgCall* call) {
    PublishOnReturn publish(*this);
    if (call->deadline.timer_set) ngx_del_timer(&call->deadline);
    switch (call->state) {
    case CallState::waiting: unqueue(call); break;
    case CallState::awaiting_delivery: ngx_queue_remove(&call->link); break;
    // The statement still runs; its outcome is not this call's any more.
    case CallState::running: call->connection->forget(call); break;
    case CallState::outside: break;
    }
    set_call_state(call, CallState::outside);
    call->connection = nullptr;
}

void PgPool::call_timed_out(PgCall* call) {
    PublishOnReturn publish(*this);
    health_.request_timed_out(call->log);
    PgConnection* connection = call->state == CallState::running ? call->connection : nullptr;
    detach(call);
    deliver(call, connection != nullptr ? PgOutcome::unknown("postgres timed out")
                                        : PgOutcome::not_sent("no postgres connection in time"));
    // The connection is in an unknown state mid-query: drop it rather than wait. Requests
    // batched with this one get an unknown outcome too: their rows may have been stored, so
    // they cannot be sent again.
    if (connection != nullptr && connection->busy()) {
        connection->drop("postgres timed out");
    } else {
        dispatch();
    }
}

void PgPool::publish_gauges() noexcept {
    PgGauges gauges;
    for (const PgConnection& connection : connections_) {
        gauges.connecting += connection.state() == ConnectionState::connecting;
        gauges.idle += connection.state() == ConnectionState::idle;
        gauges.busy += connection.busy();
    }
    gauges.waiting = waiting_count_;
    gauges.down_since = health_.down_since();
    publish_pg_gauges(spec_, gauges);
}

// ---- what the connections tell ---------------------------------------------------------------

void PgPool::connected(PgConnection& connection) {
    preferred_target_ = connection.target();
    health_.answered();
    dispatch();
}

// No host answered: the pool backs off, and the requests no open connection can take are
// answered now. Nothing here opens a connection.
void PgPool::connect_failed(const char* cause) {
    health_.connect_failed(cause);
    refuse_waiting_if_down();
}

// The database may be fine, so it is not marked down and nothing backs off. Requests that no
// connection, open or opening, can take get 503 now; the next request asks for a connection
// again.
void PgPool::no_socket(const char* cause) {
    health_.no_socket(cause);
    if (has_open_connection() || has_connection(ConnectionState::connecting)) return;
    while (!ngx_queue_empty(&waiting_)) {
        PgCall* call = ngx_queue_data(ngx_queue_head(&waiting_), PgCall, link);
        unqueue(call);
        ngx_log_error(NGX_LOG_INFO, call->log, 0,
                      "chatterd: postgres (%s): no socket for a connection in this worker; 503",
                      health_.target().c_str());
        deliver(call, PgOutcome::not_sent("no socket for a postgres connection"));
    }
}

void PgPool::statement_done(const StatementCalls& calls, const PgBatch* batch, PGresult* result) {
    deliver_outcome(calls, batch, result);
    dispatch();
}

void PgPool::statement_lost(const StatementCalls& calls, const char* reason) {
    deliver_all(calls, PgOutcome::unknown(reason));
    dispatch();
}

void PgPool::statement_not_sent(const StatementCalls& calls) {
    requeue_at_head(calls, false);
}

void PgPool::connection_failed(const char* what, const char* message) {
    health_.connection_failed(what, message);
}

void PgPool::event_handled() noexcept {
    publish_gauges();
}

// Hands the outcome to the request's handler and finalizes the request with its answer, or
// to the task's owner.
void PgPool::deliver(PgCall* call, const PgOutcome& outcome) {
    detach(call);
    if (call->caller == Caller::task) {
        PgTaskDone on_done = call->on_task_done;
        void* data = call->task_data;
        call->task->call_ = nullptr;
        delete call;
        on_done(data, outcome);
        return;
    }
    ngx_http_request_t* r = call->request;
    ngx_connection_t* c = r->connection;
    call->request = nullptr;
    ngx_int_t rc = call->on_done(r, outcome);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

// ---- request side --------------------------------------------------------------------------

namespace {

void on_call_deadline(ngx_event_t* ev) noexcept {
    auto* call = static_cast<PgCall*>(ev->data);
    call->pool->call_timed_out(call);
}

void on_request_gone(void* data) noexcept {
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
        ngx_log_error(
            NGX_LOG_ALERT, r->connection->log, 0,
            pool ? "chatterd: out of memory" : "chatterd: no postgres pool in this worker");
        ngx_http_finalize_request(r, on_done(r, PgOutcome::not_sent("no pool")));
        return;
    }
    call->caller = Caller::request;
    call->request = r;
    call->log = r->connection->log;
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

bool PgTask::start(PgPoolSpec& spec, const PgQuery& query, PgTaskDone on_done, void* data,
                   ngx_log_t* log) noexcept {
    cancel();
    if (spec.pool == nullptr) return false;
    auto* call = new (std::nothrow) PgCall{};
    if (call == nullptr) return false;
    call->caller = Caller::task;
    call->task = this;
    call->on_task_done = on_done;
    call->task_data = data;
    call->log = log;
    call->pool = spec.pool;
    call->query = query;
    call->deadline.data = call;
    call->deadline.log = log;
    call->deadline.handler = on_call_deadline;
    call_ = call;
    spec.pool->submit(call);
    return true;
}

void PgTask::cancel() noexcept {
    if (call_ == nullptr) return;
    call_->pool->detach(call_);
    delete call_;
    call_ = nullptr;
}

ngx_int_t pg_pools_start(ngx_cycle_t* cycle) noexcept try {
    // Cache managers and loaders run init_process too; they serve no requests.
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
    for (PgPoolSpec* spec : specs_of<PgPoolSpec>(cycle, &MainConf::pool_specs)) {
        spec->pool = new PgPool(*spec, cycle->log);
        spec->pool->start();
    }
    return NGX_OK;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "chatterd: cannot create postgres pools: %s",
                  e.what());
    return NGX_ERROR;
}

void pg_pools_stop(ngx_cycle_t* cycle) noexcept {
    for (PgPoolSpec* spec : specs_of<PgPoolSpec>(cycle, &MainConf::pool_specs)) {
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
