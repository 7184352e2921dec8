#include "ngx/pg_listen.h"

#include "core/backoff.h"
#include "ngx/metrics.h"
#include "ngx/pg_connection.h"
#include "ngx/pg_pool.h"
#include "ngx/pg_target.h"

#include <algorithm>
#include <memory>
#include <vector>

namespace chatterd {

namespace {

constexpr const char* kListen = "LISTEN chatts";
constexpr ngx_msec_t kFirstRetry = 100;

// What the LISTEN connection is doing.
enum class ListenState {
    connecting,  // connect under way (PgConnection's deadline)
    asking,      // LISTEN sent
    listening,   // the cache may be trusted
    waiting,     // down: the retry timer runs
};

class ListenChannel final : ConnectionOwner {
public:
    ListenChannel(const PgPoolSpec& spec, ngx_log_t* log, ListenChangeHandler changed)
        : spec_(spec),
          log_(log),
          changed_(changed),
          target_(pg_target(spec.conninfo)),
          targets_(connect_targets(spec.conninfo, spec.timeout)),
          backoff_(std::min(kFirstRetry, spec.backoff_max), spec.backoff_max),
          connection_(spec, targets_, log, *this) {
        retry_timer_.data = this;
        retry_timer_.log = log_;
        retry_timer_.handler = on_retry_timer;
        retry_timer_.cancelable = 1;  // a worker shutting down does not wait for a reconnect
    }
    ~ListenChannel() {
        if (retry_timer_.timer_set) ngx_del_timer(&retry_timer_);
        connection_.close();
        publish_listening(spec_, false);
    }
    ListenChannel(const ListenChannel&) = delete;
    ListenChannel& operator=(const ListenChannel&) = delete;

    void start() {
        set_state(ListenState::connecting);
        connection_.connect(0);
    }
    bool up() const { return state_ == ListenState::listening; }

private:
    static void on_retry_timer(ngx_event_t* ev) noexcept {
        static_cast<ListenChannel*>(ev->data)->start();
    }

    void set_state(ListenState state) {
        if (state == state_) return;
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: LISTEN of pool %ui: %d -> %d",
                       spec_.index, static_cast<int>(state_), static_cast<int>(state));
        bool was_up = up();
        state_ = state;
        if (was_up != up()) publish_listening(spec_, up());
    }

    // Down, or not up yet: reconnect after the next delay. Told once per outage.
    void retry_later(const char* why) {
        if (state_ == ListenState::listening || !told_down_) {
            ngx_log_error(NGX_LOG_WARN, log_, 0,
                          "chatterd: the LISTEN connection to postgres (%s) is down (%s): this "
                          "worker's getchatts and getimages query the database until it is back",
                          target_.c_str(), why);
            told_down_ = true;
        }
        connection_.close();
        set_state(ListenState::waiting);
        if (!retry_timer_.timer_set)
            ngx_add_timer(&retry_timer_, static_cast<ngx_msec_t>(backoff_.next(ngx_random())));
    }

    void connected(PgConnection& connection) override {
        connection.next_statement().query = PgQuery{nullptr, kListen, 0, nullptr, nullptr};
        set_state(ListenState::asking);
        connection.run();
    }
    void connect_failed(const char* cause) override { retry_later(cause); }
    void no_socket(const char* cause) override { retry_later(cause); }
    void statement_done(const StatementCalls&, const PgBatch*, PGresult* result) override {
        if (result == nullptr || PQresultStatus(result) != PGRES_COMMAND_OK) {
            OneLine line = result != nullptr ? pg_error_message(result) : OneLine("no result");
            retry_later(std::string(line.view()).c_str());
            return;
        }
        if (connection_.state() != ConnectionState::idle) return retry_later("after LISTEN");
        backoff_.reset();
        if (told_down_) {
            ngx_log_error(NGX_LOG_NOTICE, log_, 0,
                          "chatterd: the LISTEN connection to postgres (%s) is back: listings "
                          "are cached again",
                          target_.c_str());
            told_down_ = false;
        }
        set_state(ListenState::listening);
        // Whatever changed while nobody listened.
        changed_();
    }
    void statement_lost(const StatementCalls&, const char* reason) override { retry_later(reason); }
    void statement_not_sent(const StatementCalls&) override { retry_later("LISTEN not sent"); }
    void connection_failed(const char* what, const char* message) override {
        OneLine line(message);
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: LISTEN connection: %s failed: %*s", what,
                      line.view().size(), line.view().data());
    }
    void notified() noexcept override {
        if (up()) changed_();
    }
    void event_handled() noexcept override {
        // An idle connection that broke closes itself (after connection_failed).
        bool open = state_ == ListenState::asking || state_ == ListenState::listening;
        if (open && connection_.state() == ConnectionState::closed) retry_later("connection lost");
    }

    const PgPoolSpec& spec_;
    ngx_log_t* log_;
    ListenChangeHandler changed_;
    std::string target_;
    std::vector<ConnectTarget> targets_;
    Backoff backoff_;
    ngx_event_t retry_timer_{};
    ListenState state_ = ListenState::waiting;
    bool told_down_ = false;
    PgConnection connection_;  // last: destroyed first
};

// This worker's channels, by pool index (null for a pool whose listings are not cached).
std::vector<std::unique_ptr<ListenChannel>> channels;

}  // namespace

ngx_int_t pg_listens_start(ngx_cycle_t* cycle, ListenChangeHandler changed) noexcept try {
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
    for (PgPoolSpec* spec : specs_of<PgPoolSpec>(cycle, &MainConf::pool_specs)) {
        if (channels.size() <= spec->index) channels.resize(spec->index + 1);
        if (!spec->lists_cached) continue;
        channels[spec->index] = std::make_unique<ListenChannel>(*spec, cycle->log, changed);
        channels[spec->index]->start();
    }
    return NGX_OK;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "chatterd: LISTEN connections: %s", e.what());
    return NGX_ERROR;
}

void pg_listens_stop() noexcept {
    channels.clear();
}

bool pg_listening(const PgPoolSpec& spec) noexcept {
    return spec.index < channels.size() && channels[spec.index] != nullptr
           && channels[spec.index]->up();
}

}  // namespace chatterd
