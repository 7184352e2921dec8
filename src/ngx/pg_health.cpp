// What a pool knows of its database, and what it tells the operator about it.
//
// A failed connect puts the pool in backoff: nothing is opened until the retry timer fires,
// then one connection (the probe) decides whether the database is back. Meanwhile requests
// that no open connection can take get 503 at once. The error log gets one line when the
// database cannot be reached, a reminder at most once a minute while it stays so, and one
// line when it answers again; request timeouts and broken connections are told at most once
// per ten seconds, with the number of the others.
#include "ngx/pg_health.h"

#include "ngx/metrics.h"
#include "ngx/pg_target.h"

#include <algorithm>

namespace chatterd {

namespace {
// The first probe after a failed connect: soon, for a database that only blinked (a restart, a
// failover), but not so soon that an outage's first second sees more than a few connects; never
// beyond chatterd_pg_backoff_max, never below 100 ms.
constexpr ngx_msec_t kFirstRetry = 500;
constexpr ngx_msec_t kShortestRetry = 100;
constexpr ngx_msec_t kReminderInterval = 60 * 1000;
constexpr ngx_msec_t kRepeatInterval = 10 * 1000;

ngx_msec_t elapsed_since(ngx_msec_t then) {
    return ngx_current_msec - then;
}

const char* state_name(DbState state) {
    switch (state) {
    case DbState::reachable: return "reachable";
    case DbState::backing_off: return "backing_off";
    case DbState::probing: return "probing";
    }
    return "?";
}
}  // namespace

bool LogBudget::take(ngx_msec_t interval, ngx_uint_t& others) {
    if (logged_once && elapsed_since(last_line) < interval) {
        unlogged++;
        return false;
    }
    others = unlogged;
    unlogged = 0;
    logged_once = true;
    last_line = ngx_current_msec;
    return true;
}

DbHealth::DbHealth(const PgPoolSpec& spec, ngx_log_t* log, ProbeOpener& opener)
    : spec_(spec),
      log_(log),
      opener_(opener),
      target_(pg_target(spec.conninfo)),
      backoff_(std::clamp(spec.backoff_max, kShortestRetry, kFirstRetry), spec.backoff_max) {
    retry_timer_.data = this;
    retry_timer_.log = log_;
    retry_timer_.handler = on_retry_timer;
    retry_timer_.cancelable = 1;  // a worker shutting down does not wait for the next probe
}

DbHealth::~DbHealth() {
    if (retry_timer_.timer_set) ngx_del_timer(&retry_timer_);
}

time_t DbHealth::down_since() const {
    if (state_ == DbState::reachable) return 0;
    return ngx_time() - static_cast<time_t>(elapsed_since(down_since_) / 1000);
}

void DbHealth::set_state(DbState state) {
    if (state == state_) return;
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: postgres (%s) database %s -> %s",
                   target_.c_str(), state_name(state_), state_name(state));
    state_ = state;
}

void DbHealth::on_retry_timer(ngx_event_t* ev) noexcept {
    auto* health = static_cast<DbHealth*>(ev->data);
    health->set_state(DbState::probing);
    health->opener_.open_probe();
}

// The probe could not tell: the next one after the next delay.
void DbHealth::retry_later() {
    set_state(DbState::backing_off);
    ngx_add_timer(&retry_timer_, static_cast<ngx_msec_t>(backoff_.next(ngx_random())));
}

void DbHealth::connect_failed(const char* cause) {
    count_pg_error(spec_, PgError::connect_failed);
    last_cause_ = std::string(OneLine(cause).view());
    if (state_ == DbState::backing_off) return;  // a connect started before the first failure
    bool outage_starts = state_ == DbState::reachable;
    retry_later();
    if (outage_starts) {
        down_since_ = ngx_current_msec;
        last_outage_line_ = ngx_current_msec;
        refused_ = 0;
        refused_total_ = 0;
        ngx_log_error(NGX_LOG_ERR, log_, 0,
                      "chatterd: postgres (%s) cannot be reached: %s; requests that no open "
                      "connection can take get 503 at once until a probe connects (first after "
                      "%M ms, doubling up to %M ms); check that the server runs and accepts "
                      "connections",
                      target_.c_str(), last_cause_.c_str(),
                      static_cast<ngx_msec_t>(backoff_.first_ms()), spec_.backoff_max);
        return;
    }
    if (elapsed_since(last_outage_line_) < kReminderInterval) return;
    ngx_log_error(NGX_LOG_ERR, log_, 0,
                  "chatterd: postgres (%s) still cannot be reached after %M s: %s; %ui requests "
                  "got 503 since the last line",
                  target_.c_str(), elapsed_since(down_since_) / 1000, last_cause_.c_str(),
                  refused_);
    last_outage_line_ = ngx_current_msec;
    refused_ = 0;
}

void DbHealth::answered() {
    backoff_.reset();
    if (state_ == DbState::reachable) return;
    if (retry_timer_.timer_set) ngx_del_timer(&retry_timer_);
    set_state(DbState::reachable);
    ngx_msec_t down = elapsed_since(down_since_);
    ngx_log_error(NGX_LOG_ERR, log_, 0,
                  "chatterd: postgres (%s) is reachable again after %M.%03M s; %ui requests "
                  "got 503 meanwhile",
                  target_.c_str(), down / 1000, down % 1000, refused_total_);
}

void DbHealth::no_socket(const char* cause) {
    count_pg_error(spec_, PgError::no_descriptor);
    ngx_uint_t others = 0;
    if (no_sockets_.take(kRepeatInterval, others)) {
        OneLine line(cause);
        std::string_view why = line.view();
        ngx_log_error(NGX_LOG_ERR, log_, 0,
                      "chatterd: postgres (%s): this worker has no socket for a new connection: "
                      "%*s (%ui other connects since the last such line); the database is not "
                      "marked down; raise worker_rlimit_nofile (and the system's limit) or "
                      "worker_connections",
                      target_.c_str(), why.size(), why.data(), others);
    }
    if (state_ == DbState::probing) retry_later();
}

void DbHealth::connection_failed(const char* what, const char* message) {
    count_pg_error(spec_, PgError::connection_lost);
    ngx_uint_t others = 0;
    if (!lost_connections_.take(kRepeatInterval, others)) return;
    OneLine line(message);
    std::string_view text = line.view();
    ngx_log_error(NGX_LOG_ERR, log_, 0,
                  "chatterd: postgres (%s) %s failed: %*s (%ui other connections failed since "
                  "the last such line); the connection is closed and reopened on demand",
                  target_.c_str(), what, text.size(), text.data(), others);
}

// Counted for the outage's lines; told per request only at info level, where an operator who
// asks for it sees the cause next to each 503.
void DbHealth::request_refused(ngx_log_t* log) {
    count_pg_error(spec_, PgError::refused);
    refused_++;
    refused_total_++;
    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "chatterd: postgres (%s) cannot be reached (for %M ms now: %s); 503 at once",
                  target_.c_str(), elapsed_since(down_since_), last_cause_.c_str());
}

void DbHealth::request_timed_out(ngx_log_t* log) {
    count_pg_error(spec_, PgError::timeout);
    ngx_uint_t others = 0;
    if (!timeouts_.take(kRepeatInterval, others)) return;
    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "chatterd: postgres (%s) did not answer within chatterd_pg_timeout %M ms "
                  "(%ui other requests timed out since the last such line); 503",
                  target_.c_str(), spec_.timeout, others);
}

}  // namespace chatterd
