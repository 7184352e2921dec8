// The per-worker postgres pool: the requests' queue, their dispatch to connections and the
// batching rules, over two files (the connections and the database's health are classes of
// their own):
//   pg_pool.cpp   the requests: queue, deadlines, dispatch, delivery
//   pg_batch.cpp  the batching rules: combining, sharing, delivering a statement's outcome
#pragma once

#include "ngx/pg_call.h"
#include "ngx/pg_connection.h"
#include "ngx/pg_health.h"
#include "ngx/pg_pool.h"

#include <deque>
#include <vector>

namespace chatterd {

class PgPool final : private ConnectionOwner, private ProbeOpener {
public:
    PgPool(PgPoolSpec& spec, ngx_log_t* log);
    ~PgPool();
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    void start();
    void submit(PgCall* call);
    void detach(PgCall* call);
    void call_timed_out(PgCall* call);
    // Writes this worker's connections by state, queue and database state to the status zone.
    void publish_gauges() noexcept;

private:
    // pg_pool.cpp
    static void on_connect_event(ngx_event_t* ev) noexcept;
    void want_connections();
    void open_connections();
    bool has_connection(ConnectionState state) const;
    bool has_open_connection() const;
    void dispatch();
    PgCall* first_startable_call() const;
    void refuse_waiting_if_down();
    void deliver(PgCall* call, const PgOutcome& outcome);
    void unqueue(PgCall* call, CallState next = CallState::outside);

    // What its connections and the database's health tell the pool (pg_pool.cpp).
    void connected(PgConnection& connection) override;
    void connect_failed(const char* cause) override;
    void no_socket(const char* cause) override;
    void statement_done(const StatementCalls& calls, const PgBatch* batch,
                        PGresult* result) override;
    void statement_lost(const StatementCalls& calls, const char* reason) override;
    void statement_not_sent(const StatementCalls& calls) override;
    void connection_failed(const char* what, const char* message) override;
    void event_handled() noexcept override;
    void open_probe() noexcept override;

    // pg_batch.cpp
    bool may_start(const PgCall* call) const;
    void start_statement(PgConnection& connection, PgCall* call);
    void join_waiting_calls(PgStatement& statement, const PgBatch* batch);
    bool build_batch_query(PgStatement& statement) noexcept;
    void deliver_outcome(const StatementCalls& calls, const PgBatch* batch, PGresult* result);
    void deliver_all(const StatementCalls& calls, const PgOutcome& outcome);
    void deliver_shared(const StatementCalls& calls, PGresult* result);
    void requeue_at_head(PgCall* call, bool alone);
    void requeue_at_head(const StatementCalls& calls, bool alone);

    PgPoolSpec& spec_;
    ngx_log_t* log_;
    std::vector<ConnectTarget> targets_;  // the conninfo's hosts, tried in turn
    std::size_t preferred_target_ = 0;    // the host of the latest connection: tried first
    DbHealth health_;
    std::deque<PgConnection> connections_;  // a deque: connections never move
    ngx_queue_t waiting_;
    ngx_uint_t waiting_count_ = 0;
    ngx_event_t connect_event_{};  // posted: open the connections the queue needs
};

// Publishes the pool's gauges when an entry point into the pool (a request's call, an event
// of its own) returns: every change of a connection, the queue or the database's state
// happens inside one, and the gauges are recounted from the pool, never adjusted.
class PublishOnReturn {
public:
    explicit PublishOnReturn(PgPool& pool) : pool_(pool) {}
    ~PublishOnReturn() { pool_.publish_gauges(); }
    PublishOnReturn(const PublishOnReturn&) = delete;
    PublishOnReturn& operator=(const PublishOnReturn&) = delete;

private:
    PgPool& pool_;
};

}  // namespace chatterd
