// What a pool knows of its database, and what it tells the operator about it: the backoff
// between connects after a failure, the retry timer that lets one probe through, the outage
// log, and the budgets of the lines about requests and connections in trouble.
#pragma once

#include "core/backoff.h"
#include "ngx/conf.h"

#include <ctime>
#include <string>

namespace chatterd {

// What the pool knows of its database. Connections are only opened while it is reachable;
// otherwise one probe at a time, when the backoff delay has passed.
enum class DbState {
    reachable,    // the last connect succeeded (or none was tried yet)
    backing_off,  // a connect failed: the retry timer runs, nothing is opened
    probing,      // the retry timer fired: one connection (the probe) is being opened
};

// Lines about one kind of trouble, at most one per interval: the first is logged, the
// following ones are counted and their number is told by the next line.
struct LogBudget {
    ngx_msec_t last_line = 0;
    bool logged_once = false;
    ngx_uint_t unlogged = 0;
    // Whether a line may be logged now; if so, others is how many were not logged before it.
    bool take(ngx_msec_t interval, ngx_uint_t& others);
};

// What the database's health asks of its pool: the only call back.
class ProbeOpener {
public:
    // The backoff delay has passed (the state is probing): open the probe.
    virtual void open_probe() noexcept = 0;

protected:
    ~ProbeOpener() = default;
};

class DbHealth {
public:
    DbHealth(const PgPoolSpec& spec, ngx_log_t* log, ProbeOpener& opener);
    ~DbHealth();
    DbHealth(const DbHealth&) = delete;
    DbHealth& operator=(const DbHealth&) = delete;

    DbState state() const { return state_; }
    bool reachable() const { return state_ == DbState::reachable; }
    // The conninfo's host, port, dbname and user, for the log.
    const std::string& target() const { return target_; }
    // The unix time the outage began; 0 while reachable.
    time_t down_since() const;

    // A connect failed on every host: the pool backs off (an outage starts, or goes on).
    void connect_failed(const char* cause);
    // A connect succeeded: the outage, if any, ends.
    void answered();
    // A connect found no socket in this worker: no news of the database, but a probe that
    // told nothing is tried again after the next delay.
    void no_socket(const char* cause);
    // An open connection broke (what: the step that failed; message: libpq's).
    void connection_failed(const char* what, const char* message);
    // A request got 503 at once because the database is down, or timed out.
    void request_refused(ngx_log_t* log);
    void request_timed_out(ngx_log_t* log);

private:
    static void on_retry_timer(ngx_event_t* ev) noexcept;
    void retry_later();
    void set_state(DbState state);

    const PgPoolSpec& spec_;
    ngx_log_t* log_;
    ProbeOpener& opener_;
    std::string target_;
    DbState state_ = DbState::reachable;
    Backoff backoff_;
    ngx_event_t retry_timer_{};     // backing_off: when the next probe starts
    ngx_msec_t down_since_ = 0;     // when the outage's first connect failed
    ngx_uint_t refused_ = 0;        // requests refused since the outage's last line
    ngx_uint_t refused_total_ = 0;  // requests refused during this outage
    ngx_msec_t last_outage_line_ = 0;
    std::string last_cause_;      // the latest connect failure, for the reminders
    LogBudget timeouts_;          // requests that timed out
    LogBudget lost_connections_;  // open connections that broke
    LogBudget no_sockets_;        // connects that found no descriptor in this worker
};

}  // namespace chatterd
