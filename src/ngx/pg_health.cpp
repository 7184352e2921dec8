// What a pool knows of its database, and what it tells the operator about it.
//
// A failed connect puts the pool in backoff: nothing is opened until the retry timer fires,
// then one connection (the probe) decides whether the database is back. Meanwhile requests
// that no open connection can take get 503 at once. The error log gets one line when the
// database cannot be reached, a reminder at most once a minute while it stays so, and one
// line when it answers again; request timeouts and broken connections are told at most once
// per ten seconds, with the number of the others.
#include "ngx/pg_pool_impl.h"

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
}  // namespace

// host, hostaddr, port, dbname and user as configured (never the password): which database
// the lines are about.
std::string pg_target(const ngx_str_t& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options =
        PQconninfoParse(reinterpret_cast<const char*>(conninfo.data), &error);
    PQfreemem(error);
    if (options == nullptr) return "?";
    std::string text;
    for (std::string_view key : {"host", "hostaddr", "port", "dbname", "user"}) {
        for (PQconninfoOption* o = options; o->keyword != nullptr; o++) {
            if (key != o->keyword || o->val == nullptr || o->val[0] == '\0') continue;
            if (!text.empty()) text += ' ';
            text.append(key).append("=").append(o->val);
        }
    }
    PQconninfoFree(options);
    return text.empty() ? "libpq defaults" : text;
}

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

PgPool::PgPool(PgPoolSpec& spec, ngx_log_t* log)
    : spec_(spec),
      log_(log),
      target_(pg_target(spec.conninfo)),
      targets_(connect_targets(spec.conninfo, spec.timeout)),
      slots_(spec.size),
      backoff_(std::clamp(spec.backoff_max, kShortestRetry, kFirstRetry), spec.backoff_max) {
    ngx_queue_init(&waiting_);
    for (PgSlot& slot : slots_) {
        slot.pool = this;
        slot.deadline.data = &slot;
        slot.deadline.log = log_;
        slot.deadline.handler = on_slot_deadline;
    }
    retry_timer_.data = this;
    retry_timer_.log = log_;
    retry_timer_.handler = on_retry_timer;
    retry_timer_.cancelable = 1;  // a worker shutting down does not wait for the next probe
    connect_event_.data = this;
    connect_event_.log = log_;
    connect_event_.handler = on_connect_event;
}

PgPool::~PgPool() {
    if (retry_timer_.timer_set) ngx_del_timer(&retry_timer_);
    if (connect_event_.posted) {
        ngx_delete_posted_event(&connect_event_);
    }
    for (PgSlot& slot : slots_) close_slot(slot);
}

void PgPool::on_connect_event(ngx_event_t* ev) noexcept {
    auto* pool = static_cast<PgPool*>(ev->data);
    PublishOnReturn publish(*pool);
    pool->open_connections();
}

void PgPool::on_retry_timer(ngx_event_t* ev) noexcept {
    auto* pool = static_cast<PgPool*>(ev->data);
    PublishOnReturn publish(*pool);
    pool->db_state_ = DbState::probing;
    pool->open_connections();
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

// The probe could not tell: the next one after the next delay.
void PgPool::retry_later() {
    db_state_ = DbState::backing_off;
    ngx_add_timer(&retry_timer_, static_cast<ngx_msec_t>(backoff_.next(ngx_random())));
}

void PgPool::database_refused(const char* cause) {
    last_cause_ = std::string(OneLine(cause).view());
    if (db_state_ == DbState::backing_off) return;  // a connect started before the first failure
    bool outage_starts = db_state_ == DbState::reachable;
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

void PgPool::database_answered() {
    backoff_.reset();
    if (db_state_ == DbState::reachable) return;
    if (retry_timer_.timer_set) ngx_del_timer(&retry_timer_);
    db_state_ = DbState::reachable;
    ngx_msec_t down = elapsed_since(down_since_);
    ngx_log_error(NGX_LOG_ERR, log_, 0,
                  "chatterd: postgres (%s) is reachable again after %M.%03M s; %ui requests "
                  "got 503 meanwhile",
                  target_.c_str(), down / 1000, down % 1000, refused_total_);
}

// Counted for the outage's lines; told per request only at info level, where an operator who
// asks for it sees the cause next to each 503.
void PgPool::request_refused(ngx_log_t* log) {
    count_pg_error(spec_, PgError::refused);
    refused_++;
    refused_total_++;
    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "chatterd: postgres (%s) cannot be reached (for %M ms now: %s); 503 at once",
                  target_.c_str(), elapsed_since(down_since_), last_cause_.c_str());
}

void PgPool::request_timed_out(ngx_log_t* log) {
    count_pg_error(spec_, PgError::timeout);
    ngx_uint_t others = 0;
    if (!timeouts_.take(kRepeatInterval, others)) return;
    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "chatterd: postgres (%s) did not answer within chatterd_pg_timeout %M ms "
                  "(%ui other requests timed out since the last such line); 503",
                  target_.c_str(), spec_.timeout, others);
}

}  // namespace chatterd
