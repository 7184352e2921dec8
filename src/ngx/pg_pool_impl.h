// The insides of the per-worker postgres pool, one class over three files, one mechanism each
// (the database's state is DbHealth's, pg_health.h):
//   pg_pool.cpp        the requests: queue, deadlines, dispatch to connections
//   pg_batch.cpp       the batching rules: combining, sharing, delivering outcomes
//   pg_connection.cpp  the libpq connections on nginx's event loop
#pragma once

#include "core/pg_hosts.h"
#include "ngx/metrics.h"
#include "ngx/pg_health.h"
#include "ngx/pg_pool.h"

#include <string>
#include <vector>

namespace chatterd {

// A connection slot. Its state says what its connection is doing; a busy slot (preparing,
// querying, copying) serves the requests in its calls.
enum class SlotState {
    closed,      // no connection
    connecting,  // PQconnectPoll in progress, under the slot's deadline
    idle,        // connected, nothing sent
    preparing,   // the statement's preparation (query.name) is sent; the statement follows
    querying,    // the statement is sent; results are read
    copying,     // a COPY's data is read
};

inline bool is_busy(SlotState state) {
    return state == SlotState::preparing || state == SlotState::querying
           || state == SlotState::copying;
}

constexpr std::size_t kMaxBatchCalls = 64;  // requests one batched statement carries at most
constexpr std::size_t kMaxBatchParams = 8;

// The requests a busy connection's statement serves: one, or several when batched. An entry
// is null once its request went away (the statement still runs).
struct SlotCalls {
    struct PgCall* entries[kMaxBatchCalls] = {};
    std::size_t count = 0;
};

struct PgSlot {
    PgPool* pool = nullptr;
    PGconn* conn = nullptr;
    ngx_connection_t* socket = nullptr;
    ino_t socket_inode = 0;  // identity of the registered socket (see follow_socket)
    SlotState state = SlotState::closed;
    SlotCalls calls;  // busy: the requests the statement serves
    PgQuery query{};  // busy: the statement sent (the request's own, or the
                      // combined one); with several calls, query.batch says how
    std::string batch_values[kMaxBatchParams];  // a batch's parameters: text arrays
    const char* batch_params[kMaxBatchParams] = {};
    PGresult* final_result = nullptr;
    const char* prepared[8] = {};  // statement names this connection has prepared
    std::size_t prepared_count = 0;
    ngx_event_t deadline{};
    std::size_t target = 0;         // connecting: the host tried (ConnectTarget)
    std::size_t targets_tried = 0;  // connecting: hosts that failed this round
};

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

// Who a query is for: a request (answered with the outcome), or a task of the worker's own.
enum class Caller { request, task };

// Where a call is in the pool.
enum class CallState {
    outside,            // not submitted yet, or its outcome delivered
    waiting,            // in the pool's queue (link)
    running,            // its statement runs on slot
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
    PgSlot* slot;       // running: the slot its statement runs on
    ngx_queue_t link;   // waiting, awaiting_delivery: its place in that list
    bool alone;         // its batch failed: it runs its own statement
    bool rows_refused;  // on_row refused rows: the rest are dropped, the outcome is a failure
    ngx_event_t deadline;
};

class PgPool;

std::vector<ConnectTarget> connect_targets(const ngx_str_t& conninfo, ngx_msec_t timeout);

// Publishes the pool's gauges when an entry point into the pool (a request's call, an event
// of its own) returns: every change of a connection, the queue or the database's state
// happens inside one, and the gauges are recounted from the pool, never adjusted.
class PublishOnReturn {
public:
    explicit PublishOnReturn(PgPool& pool) : pool_(pool) {}
    ~PublishOnReturn();
    PublishOnReturn(const PublishOnReturn&) = delete;
    PublishOnReturn& operator=(const PublishOnReturn&) = delete;

private:
    PgPool& pool_;
};

class PgPool final : private ProbeOpener {
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
    bool has_slot(SlotState state) const;
    bool has_open_slot() const;
    void dispatch();
    PgCall* first_startable_call() const;
    void refuse_waiting_if_down();
    void deliver(PgCall* call, const PgOutcome& outcome);
    void unqueue(PgCall* call);

    // pg_batch.cpp
    bool may_start(const PgCall* call) const;
    void join_waiting_calls(PgSlot& slot, const PgBatch* batch);
    bool build_batch_query(PgSlot& slot) noexcept;
    void deliver_outcome(const SlotCalls& calls, const PgBatch* batch, PGresult* result);
    void deliver_all(const SlotCalls& calls, const PgOutcome& outcome);
    void deliver_shared(const SlotCalls& calls, PGresult* result);
    void requeue_at_head(PgCall* call, bool alone);
    void requeue_at_head(const SlotCalls& calls, bool alone);

    // pg_connection.cpp
    static void on_socket_event(ngx_event_t* ev) noexcept;
    static void on_slot_deadline(ngx_event_t* ev) noexcept;
    static void log_notice(void* slot, const char* message) noexcept;
    void open_connections();
    void connect(PgSlot& slot);
    void start_attempt(PgSlot& slot);
    void attempt_failed(PgSlot& slot, const char* cause);
    void no_socket(PgSlot& slot, const char* cause);
    bool attach_socket(PgSlot& slot);
    void detach_socket(PgSlot& slot);
    bool follow_socket(PgSlot& slot);
    bool want_write(PgSlot& slot, bool on);
    void advance_connect(PgSlot& slot);
    void connect_failed(PgSlot& slot, const char* cause);
    void start_query(PgSlot& slot, PgCall* call);
    bool send_query(PgSlot& slot);
    void finish_preparing(PgSlot& slot);
    void advance_query(PgSlot& slot, bool writable);
    bool flush(PgSlot& slot);
    enum class CopyProgress { needs_input, done, failed };
    CopyProgress take_copy_data(PgSlot& slot);
    void keep_result(PgSlot& slot, PGresult* result);
    void finish_query(PgSlot& slot);
    void on_idle_event(PgSlot& slot);
    void connection_lost(PgSlot& slot, const char* what);
    void drop_slot(PgSlot& slot, const char* reason);
    void close_slot(PgSlot& slot);
    void log_connection_failure(PgSlot& slot, const char* what);

    static void on_connect_event(ngx_event_t* ev) noexcept;
    void want_connections();
    void open_probe() noexcept override;

    PgPoolSpec& spec_;
    ngx_log_t* log_;
    std::vector<ConnectTarget> targets_;  // the conninfo's hosts, tried in turn
    std::size_t preferred_target_ = 0;    // the host of the latest connection: tried first
    std::vector<PgSlot> slots_;
    ngx_queue_t waiting_;
    ngx_uint_t waiting_count_ = 0;
    ngx_event_t connect_event_{};  // posted: open the connections the queue needs
    DbHealth health_;
};

inline PublishOnReturn::~PublishOnReturn() {
    pool_.publish_gauges();
}

}  // namespace chatterd
