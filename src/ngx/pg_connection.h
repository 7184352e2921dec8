// One libpq connection of a pool on nginx's event loop: its state machine (connect, host by
// host; send, with its preparation; read, COPY data included; close), its socket as an nginx
// connection, and its timer. It tells its pool what became of a connect or a statement through
// ConnectionOwner, and touches nothing else of the pool.
#pragma once

#include "core/pg_hosts.h"
#include "ngx/pg_call.h"

#include <string>
#include <vector>

namespace chatterd {

// What a connection is doing; a busy connection (preparing, querying, copying) serves the
// requests of its statement.
enum class ConnectionState {
    closed,      // no connection
    connecting,  // PQconnectPoll in progress, under the connection's deadline
    idle,        // connected, nothing sent
    preparing,   // the statement's preparation (query.name) is sent; the statement follows
    querying,    // the statement is sent; results are read
    copying,     // a COPY's data is read
};

inline bool is_busy(ConnectionState state) {
    return state == ConnectionState::preparing || state == ConnectionState::querying
           || state == ConnectionState::copying;
}

// One host of the conninfo, as libpq's keyword and value arrays (null-terminated), and the
// deadline of a connect to it: libpq applies no connect_timeout in a non-blocking connect, and
// would only leave a silent host when the kernel gives up, so each host is tried on its own.
struct ConnectTarget {
    ConninfoOptions options;
    std::vector<const char*> keywords;
    std::vector<const char*> values;
    int expand_dbname = 0;
    ngx_msec_t deadline = 0;
};

std::vector<ConnectTarget> connect_targets(const ngx_str_t& conninfo, ngx_msec_t timeout);

// The statement a connection runs next (filled by the pool) or runs now, and the requests it
// serves. A batch's parameters live here as long as the statement.
struct PgStatement {
    StatementCalls calls;
    PgQuery query{};  // the request's own, or the combined one; query.batch says how
    std::string batch_values[kMaxBatchParams];  // a combined statement's text arrays
    const char* batch_params[kMaxBatchParams] = {};
};

// What a connection tells its pool; each is the last thing the connection does in the event
// (or the call of the pool) that led to it.
class ConnectionOwner {
public:
    // The connect succeeded: the connection is idle.
    virtual void connected(PgConnection& connection) = 0;
    // Every host refused or stayed silent; the connection is closed.
    virtual void connect_failed(const char* cause) = 0;
    // This worker found no socket for the connect; the connection is closed.
    virtual void no_socket(const char* cause) = 0;
    // The statement ran to its end (result: its final result, null when none came; the
    // connection clears it afterwards); the connection is idle, or closed when unfit for reuse.
    virtual void statement_done(const StatementCalls& calls, const PgBatch* batch,
                                PGresult* result) = 0;
    // The statement's outcome is unknown (the connection broke or timed out); it is closed.
    virtual void statement_lost(const StatementCalls& calls, const char* reason) = 0;
    // Nothing of the statement reached the server; the connection is closed.
    virtual void statement_not_sent(const StatementCalls& calls) = 0;
    // An open connection failed at what (libpq's message): for the log and the counters.
    virtual void connection_failed(const char* what, const char* message) = 0;
    // One of the connection's events was handled: the pool's gauges may have changed.
    virtual void event_handled() noexcept = 0;
    // An idle connection received notifications (LISTEN, ngx/pg_listen.h).
    virtual void notified() noexcept {}

protected:
    ~ConnectionOwner() = default;
};

class PgConnection {
public:
    PgConnection(const PgPoolSpec& spec, const std::vector<ConnectTarget>& targets, ngx_log_t* log,
                 ConnectionOwner& owner);
    ~PgConnection() { close(); }
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    ConnectionState state() const { return state_; }
    bool busy() const { return is_busy(state_); }
    // Whether its statement runs requests of batch.
    bool runs(const PgBatch* batch) const { return busy() && statement_.query.batch == batch; }
    // The host of its connect (connecting) or connection.
    std::size_t target() const { return target_; }

    // closed: opens it, from the host first_target, then the others in turn.
    void connect(std::size_t first_target);
    // idle: the statement to fill before run.
    PgStatement& next_statement() { return statement_; }
    void run();
    // A request of its statement went away: the statement runs on without it.
    void forget(const PgCall* call);
    // busy: closes it mid-statement (a request's deadline passed); statement_lost follows.
    void drop(const char* reason);
    void close();

private:
    enum class CopyProgress { needs_input, done, failed };

    static void on_socket_event(ngx_event_t* ev) noexcept;
    static void on_deadline(ngx_event_t* ev) noexcept;
    static void log_notice(void* connection, const char* message) noexcept;
    void set_state(ConnectionState state);
    StatementCalls take_calls();
    void start_attempt();
    void attempt_failed(const char* cause);
    void no_socket(const char* cause);
    bool follow_socket();
    bool attach_socket();
    void detach_socket();
    bool want_write(bool on);
    void advance_connect();
    bool send_query();
    bool is_prepared(const char* name) const;
    bool may_prepare(const char* name) const;
    void finish_preparing();
    void advance_query(bool writable);
    bool flush();
    CopyProgress take_copy_data();
    void keep_result(PGresult* result);
    void finish_query();
    void on_idle_event();
    void failed(const char* what);
    void lost(const char* what);

    const PgPoolSpec& spec_;
    const std::vector<ConnectTarget>& targets_;
    ngx_log_t* log_;
    ConnectionOwner& owner_;
    PGconn* conn_ = nullptr;
    ngx_connection_t* socket_ = nullptr;
    ino_t socket_inode_ = 0;  // identity of the registered socket (see follow_socket)
    ConnectionState state_ = ConnectionState::closed;
    PgStatement statement_;  // busy: the statement sent, and the requests it serves
    PGresult* final_result_ = nullptr;
    const char* prepared_[kPreparedStatements] = {};  // the names this connection prepared
    std::size_t prepared_count_ = 0;
    ngx_event_t deadline_{};
    std::size_t target_ = 0;         // connecting: the host tried (ConnectTarget)
    std::size_t targets_tried_ = 0;  // connecting: hosts that failed this round
};

}  // namespace chatterd
