// The insides of the per-worker postgres pool, shared by pg_pool.cpp (requests, queue,
// dispatch) and pg_connection.cpp (libpq connections on nginx's event loop).
#pragma once

#include "ngx/pg_pool.h"

#include <string>
#include <vector>

namespace chatterd {

enum class SlotState { closed, connecting, idle, busy };

constexpr std::size_t kMaxBatchCalls = 64;    // requests one batched statement carries at most
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
    SlotState state = SlotState::closed;
    SlotCalls calls;                // busy: the requests the statement serves
    PgQuery query{};                // busy: the statement sent (the request's own, or the
                                    // combined one); with several calls, query.batch says how
    std::string batch_values[kMaxBatchParams];  // a batch's parameters: text arrays
    const char* batch_params[kMaxBatchParams] = {};
    PGresult* final_result = nullptr;
    bool copying = false;                // busy reading a COPY's data
    const char* preparing = nullptr;     // busy preparing this statement before running it
    const char* prepared[8] = {};        // statement names this connection has prepared
    std::size_t prepared_count = 0;
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
    bool alone;          // its batch failed: it runs its own statement
    bool rows_refused;   // on_row refused rows: the rest are dropped, the outcome is a failure
    bool awaiting_delivery;  // in deliver_all's or deliver_shared's list (link)
    ngx_event_t deadline;
};


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
    void join_waiting_calls(PgSlot& slot, const PgBatch* batch);
    bool build_batch_query(PgSlot& slot) noexcept;
    bool send_query(PgSlot& slot, const PgQuery& query);
    void finish_preparing(PgSlot& slot);
    void advance_query(PgSlot& slot, bool writable);
    bool flush(PgSlot& slot);
    enum class CopyProgress { needs_input, done, failed };
    CopyProgress take_copy_data(PgSlot& slot);
    void keep_result(PgSlot& slot, PGresult* result);
    void finish_query(PgSlot& slot);
    void on_idle_event(PgSlot& slot);
    void fail_slot(PgSlot& slot, const char* what);
    void drop_slot(PgSlot& slot, const char* reason);
    void close_slot(PgSlot& slot);
    bool has_idle_slot() const;
    void dispatch();
    void fail_waiting_if_no_hope();
    void deliver(PgCall* call, const PgOutcome& outcome);
    void deliver_all(const SlotCalls& calls, PGresult* result, const char* reason);
    void deliver_shared(const SlotCalls& calls, PGresult* result);
    void requeue_at_head(PgCall* call, bool alone);
    void requeue_at_head(const SlotCalls& calls, bool alone);
    void unqueue(PgCall* call);
    void log_failure(PgSlot& slot, const char* what);

    PgPoolSpec& spec_;
    ngx_log_t* log_;
    std::vector<PgSlot> slots_;
    ngx_queue_t waiting_;
    ngx_uint_t waiting_count_ = 0;
};

}  // namespace chatterd
