#include "ngx/media_sweep.h"

#include "core/media_name.h"
#include "core/pg_array.h"
#include "ngx/metrics.h"
#include "ngx/pg_pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <new>
#include <string>
#include <vector>

namespace chatterd {

namespace {
// One query checks this many files at most; a round goes on through the directory, one such
// chunk after the other, until its end.
constexpr std::size_t kMaxCandidates = 10000;
constexpr ngx_msec_t kRetryAfterFailure = 60 * 1000;

// Whether this database may judge files now, and from when. Sessions of other databases cannot
// write its rows; autovacuum never inserts. A session of another role shows neither its state
// nor its transaction's start (unless chatterd's role has pg_read_all_stats), but its xid and
// xmin show that it is in one. A prepared transaction's start is unknown (only when it was
// prepared): any file older than that may be in its rows.
constexpr const char* kHorizonSql =
    "WITH others AS (SELECT * FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_type IS DISTINCT FROM 'autovacuum worker'), "
    "oldest AS (SELECT pid, xact_start FROM others WHERE xact_start IS NOT NULL "
    "ORDER BY xact_start LIMIT 1) "
    "SELECT pg_is_in_recovery(), "
    "(SELECT round(greatest(0, extract(epoch FROM now() - xact_start))::numeric, 3) FROM oldest), "
    "(SELECT pid FROM oldest), "
    "(SELECT count(*) FROM others WHERE (state IS NULL OR state = 'disabled') "
    "AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) "
    "AND has_table_privilege(usesysid, 'chatts', 'INSERT')), "
    "(SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database() "
    "AND has_table_privilege(owner, 'chatts', 'INSERT'))";

// The candidates that no row names. One pass over the table, whatever the number of files; a
// URL names a file by its last path segment (the base is the request's or chatterd_media_url).
constexpr const char* kUnnamedSql =
    "SELECT n FROM unnest($1::text[]) AS n "
    "EXCEPT SELECT substring(u FROM '[^/]*$') FROM chatts, "
    "LATERAL (VALUES (imageurl), (videourl)) AS v(u) WHERE u IS NOT NULL";

using Millis = std::int64_t;  // since the epoch, as the file system and PostgreSQL tell time

Millis now_ms() {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return Millis(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

Millis ms(const timespec& t) {
    return Millis(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

// A file's last change: its contents (mtime) or its name (ctime: publishing links it, moving
// it to the quarantine renames it).
bool last_change(int dir, const char* name, Millis& when) {
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return false;
    when = std::max(ms(st.st_mtim), ms(st.st_ctim));
    return true;
}

// Why a round judged nothing.
enum class Skip { none, no_quarantine, recovery, unseen_sessions, prepared };

// The media files of a directory, one at a time (the listing stays open between chunks:
// entries removed meanwhile never make readdir skip others).
class Listing {
public:
    Listing() = default;
    ~Listing() { close(); }
    Listing(const Listing&) = delete;
    Listing& operator=(const Listing&) = delete;

    bool open(int dir) {
        close();
        int fd = dup(dir);
        dir_ = fd >= 0 ? fdopendir(fd) : nullptr;
        if (dir_ == nullptr && fd >= 0) ::close(fd);
        return dir_ != nullptr;
    }
    bool is_open() const { return dir_ != nullptr; }
    // The next entry with a name chatterd makes; null at the end (the listing is then closed).
    const char* next() {
        while (dir_ != nullptr) {
            dirent* entry = readdir(dir_);
            if (entry == nullptr) break;
            if (is_media_name(entry->d_name)) return entry->d_name;
        }
        close();
        return nullptr;
    }
    void close() {
        if (dir_ != nullptr) closedir(dir_);
        dir_ = nullptr;
    }

private:
    DIR* dir_ = nullptr;
};
}  // namespace

class MediaSweep {
public:
    MediaSweep(MediaSweepSpec& spec, ngx_log_t* log) : spec_(spec), log_(log) {
        timer_.data = this;
        timer_.log = log;
        timer_.handler = on_timer;
        timer_.cancelable = 1;  // a worker shutting down does not wait for the next round
    }
    ~MediaSweep() {
        if (timer_.timer_set) ngx_del_timer(&timer_);
        close_dirs();
    }
    MediaSweep(const MediaSweep&) = delete;
    MediaSweep& operator=(const MediaSweep&) = delete;

    void schedule(ngx_msec_t delay) { ngx_add_timer(&timer_, delay); }

private:
    // Where a round is; the timer starts the next step.
    enum class Step { between_rounds, naming };

    static void on_timer(ngx_event_t* ev) noexcept;
    static void on_horizon(void* data, const PgOutcome& outcome) noexcept;
    static void on_unnamed(void* data, const PgOutcome& outcome) noexcept;
    void begin_round();
    bool open_dirs();
    void close_dirs();
    void empty_quarantine();
    bool start_query(const char* sql, int params, PgTaskDone done);
    bool query_failed(const PgOutcome& outcome);
    void take_horizon(const PGresult* result);
    void next_chunk();
    std::size_t list_candidates();
    bool judged(Millis changed) const;
    void take_unnamed(const PGresult* result);
    void move_unnamed();
    void end_round();
    void skip_round(Skip why, const char* reason);
    void stop_round();
    void retry_later();
    ngx_msec_t retry_delay() const { return std::min(spec_.grace, kRetryAfterFailure); }

    MediaSweepSpec& spec_;
    ngx_log_t* log_;
    ngx_event_t timer_{};
    PgTask task_;
    Step step_ = Step::between_rounds;
    Skip last_skip_ = Skip::none;  // the previous round's: a lasting reason is a warning once
    int root_ = -1;                // during a round: the media root and its quarantine
    int quarantine_ = -1;
    Listing listing_;     // during a round: the root's files not listed yet
    Millis horizon_ = 0;  // during a round: files changed before it minus grace are judged
    std::string oldest_;  // during a round: the oldest open transaction, for the log
    std::string names_;   // the current chunk's candidates, as one text array
    const char* params_[1] = {};
    std::vector<std::string> unnamed_;  // during a round: the files no row names
    ngx_uint_t judged_ = 0;             // during a round: files looked up in the rows
    ngx_uint_t held_ = 0;     // during a round: files older than grace, not before the horizon
    ngx_uint_t moved_ = 0;    // during a round: files moved to the quarantine
    ngx_uint_t emptied_ = 0;  // during a round: files removed from the quarantine
};

void MediaSweep::on_timer(ngx_event_t* ev) noexcept {
    auto* sweep = static_cast<MediaSweep*>(ev->data);
    try {
        if (sweep->step_ == Step::naming) return sweep->next_chunk();
        sweep->begin_round();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, sweep->log_, 0, "chatterd: media sweep of %V: %s",
                      &sweep->spec_.media_root, e.what());
        sweep->retry_later();
    }
}

// A round: the quarantine loses what the previous rounds moved there, then the database says
// from when files may be judged (on_horizon).
void MediaSweep::begin_round() {
    judged_ = held_ = moved_ = emptied_ = 0;
    unnamed_.clear();
    oldest_.clear();
    if (!open_dirs()) return skip_round(Skip::no_quarantine, "its quarantine cannot be used");
    empty_quarantine();
    horizon_ = now_ms();  // before the query is sent: the answer's "now" is later
    if (!start_query(kHorizonSql, 0, on_horizon)) return retry_later();
}

bool MediaSweep::open_dirs() {
    close_dirs();
    std::string root(to_view(spec_.media_root));
    const char* quarantine = reinterpret_cast<const char*>(spec_.quarantine->name.data);
    root_ = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_ < 0) {
        ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: media sweep: open(\"%s\") failed",
                      root.c_str());
        return false;
    }
    quarantine_ = open(quarantine, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (quarantine_ < 0) {
        ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: media sweep: open(\"%s\") failed",
                      quarantine);
        return false;
    }
    struct stat root_st, quarantine_st;
    if (fstat(root_, &root_st) != 0 || fstat(quarantine_, &quarantine_st) != 0
        || root_st.st_dev != quarantine_st.st_dev) {
        ngx_log_error(NGX_LOG_ERR, log_, 0,
                      "chatterd: media sweep: the quarantine \"%s\" is not on the filesystem of "
                      "\"%s\" any more",
                      quarantine, root.c_str());
        return false;
    }
    return true;
}

void MediaSweep::close_dirs() {
    listing_.close();
    if (root_ >= 0) close(root_);
    if (quarantine_ >= 0) close(quarantine_);
    root_ = quarantine_ = -1;
}

// Files moved to the quarantine at least a period ago (the move is their last change) go.
void MediaSweep::empty_quarantine() {
    Listing listing;
    if (!listing.open(quarantine_)) return;
    Millis before = now_ms() - static_cast<Millis>(spec_.grace);
    while (const char* name = listing.next()) {
        Millis changed;
        if (!last_change(quarantine_, name, changed) || changed >= before) continue;
        if (unlinkat(quarantine_, name, 0) == 0) {
            emptied_++;
        } else if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log_, ngx_errno,
                          "chatterd: media sweep: unlink \"%V/%s\" failed", &spec_.quarantine->name,
                          name);
        }
    }
    count_media_sweep(SweepCount::emptied, emptied_);
}

bool MediaSweep::start_query(const char* sql, int params, PgTaskDone done) {
    return task_.start(*spec_.pool_spec,
                       PgQuery{nullptr, sql, params, params_, nullptr, spec_.query_timeout}, done,
                       this, log_);
}

// Whether the query gave no rows to go on with (logged; the round is retried later).
bool MediaSweep::query_failed(const PgOutcome& outcome) {
    if (outcome.kind != PgOutcome::Kind::done) {
        // The pool has logged why; the files wait for the next round.
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: media sweep of %V postponed: %s",
                      &spec_.media_root, outcome.reason);
    } else if (PQresultStatus(outcome.result) != PGRES_TUPLES_OK) {
        OneLine line = pg_error_message(outcome.result);
        ngx_log_error(NGX_LOG_ERR, log_, 0, "chatterd: media sweep of %V: the query failed: %*s",
                      &spec_.media_root, line.view().size(), line.view().data());
    } else {
        return false;
    }
    retry_later();
    return true;
}

void MediaSweep::on_horizon(void* data, const PgOutcome& outcome) noexcept {
    auto* sweep = static_cast<MediaSweep*>(data);
    try {
        if (sweep->query_failed(outcome)) return;
        sweep->take_horizon(outcome.result);
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, sweep->log_, 0, "chatterd: media sweep of %V: %s",
                      &sweep->spec_.media_root, e.what());
        sweep->retry_later();
    }
}

void MediaSweep::take_horizon(const PGresult* result) {
    if (PQntuples(result) != 1 || PQnfields(result) != 5) {
        ngx_log_error(NGX_LOG_ERR, log_, 0, "chatterd: media sweep of %V: an unexpected answer",
                      &spec_.media_root);
        return retry_later();
    }
    if (std::string_view(PQgetvalue(result, 0, 0)) == "t") {
        return skip_round(Skip::recovery,
                          "the database is in recovery (a standby): its rows may lag the "
                          "primary's; give chatterd_pg target_session_attrs=read-write");
    }
    if (std::atol(PQgetvalue(result, 0, 3)) > 0) {
        return skip_round(Skip::unseen_sessions,
                          "a session of a role that may insert into chatts is in a transaction "
                          "that chatterd's role cannot see (GRANT pg_read_all_stats TO it)");
    }
    if (std::atol(PQgetvalue(result, 0, 4)) > 0) {
        return skip_round(Skip::prepared,
                          "a prepared transaction that may have inserted into chatts waits "
                          "(COMMIT PREPARED or ROLLBACK PREPARED it; see pg_prepared_xacts)");
    }
    last_skip_ = Skip::none;
    if (!PQgetisnull(result, 0, 1)) {
        horizon_ -= static_cast<Millis>(std::strtod(PQgetvalue(result, 0, 1), nullptr) * 1000);
        oldest_ = std::string("; the oldest open transaction (pid ") + PQgetvalue(result, 0, 2)
                  + ") began " + PQgetvalue(result, 0, 1) + " s before the round";
    }
    step_ = Step::naming;
    if (!listing_.open(root_)) {
        ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: media sweep: listing \"%V\" failed",
                      &spec_.media_root);
        return retry_later();
    }
    next_chunk();
}

// One chunk of a round: the next candidates of the listing, and the query about them.
void MediaSweep::next_chunk() {
    if (list_candidates() == 0) return end_round();
    params_[0] = names_.c_str();
    if (!start_query(kUnnamedSql, 1, on_unnamed)) retry_later();
}

// The next files of the listing that may be judged, into names_; returns how many.
std::size_t MediaSweep::list_candidates() {
    names_.assign(1, '{');
    std::size_t count = 0;
    Millis old = now_ms() - static_cast<Millis>(spec_.grace);
    while (count < kMaxCandidates) {
        const char* name = listing_.next();
        if (name == nullptr) break;
        Millis changed;
        if (!last_change(root_, name, changed) || changed >= old) continue;
        if (!judged(changed)) {
            held_++;  // old enough, but a transaction that may name it is still open
            continue;
        }
        if (count > 0) names_ += ',';
        append_pg_array_element(names_, name);
        count++;
    }
    names_ += '}';
    judged_ += count;
    count_media_sweep(SweepCount::judged, count);
    return count;
}

// Whether no row can come to name the file any more: it is older than the grace period before
// the oldest open transaction began (or, without one, before the round began).
bool MediaSweep::judged(Millis changed) const {
    return changed + static_cast<Millis>(spec_.grace) < horizon_;
}

void MediaSweep::on_unnamed(void* data, const PgOutcome& outcome) noexcept {
    auto* sweep = static_cast<MediaSweep*>(data);
    try {
        if (sweep->query_failed(outcome)) return;
        sweep->take_unnamed(outcome.result);
        if (sweep->unnamed_.size() > sweep->spec_.limit) return sweep->stop_round();
        if (sweep->listing_.is_open()) return sweep->schedule(1);  // the round's next chunk
        sweep->end_round();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, sweep->log_, 0, "chatterd: media sweep of %V: %s",
                      &sweep->spec_.media_root, e.what());
        sweep->retry_later();
    }
}

void MediaSweep::take_unnamed(const PGresult* result) {
    for (int row = 0; row < PQntuples(result); row++) {
        const char* name = PQgetvalue(result, row, 0);
        if (is_media_name(name)) unnamed_.emplace_back(name);
    }
}

// Moved, not removed: an operator who finds a row that names a missing file can move it back
// until the next round empties the quarantine.
void MediaSweep::move_unnamed() {
    for (const std::string& name : unnamed_) {
        Millis changed;
        if (!last_change(root_, name.c_str(), changed) || !judged(changed)) continue;
        if (renameat(root_, name.c_str(), quarantine_, name.c_str()) == 0) {
            moved_++;
        } else if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log_, ngx_errno,
                          "chatterd: media sweep: moving \"%V/%s\" to \"%V\" failed",
                          &spec_.media_root, name.c_str(), &spec_.quarantine->name);
        }
    }
    count_media_files(MediaFate::removed_by_sweep, moved_);
    count_media_sweep(SweepCount::quarantined, moved_);
}

void MediaSweep::end_round() {
    move_unnamed();
    ngx_uint_t level = moved_ > 0 || held_ > 0 ? NGX_LOG_WARN : NGX_LOG_INFO;
    ngx_log_error(level, log_, 0,
                  "chatterd: media sweep of %V: %ui media files judged, %ui moved to \"%V\" (no "
                  "row names them), %ui emptied from it, %ui held back by open transactions%s",
                  &spec_.media_root, judged_, moved_, &spec_.quarantine->name, emptied_, held_,
                  oldest_.c_str());
    count_media_sweep(SweepCount::rounds_done);
    close_dirs();
    unnamed_.clear();
    step_ = Step::between_rounds;
    schedule(spec_.grace);
}

void MediaSweep::skip_round(Skip why, const char* reason) {
    // A lasting reason is a warning once, then a notice each round.
    ngx_uint_t level = why == last_skip_ ? NGX_LOG_NOTICE : NGX_LOG_WARN;
    last_skip_ = why;
    ngx_log_error(level, log_, 0,
                  "chatterd: media sweep of %V skipped, nothing judged: %s; %ui emptied from the "
                  "quarantine; next round in %M ms",
                  &spec_.media_root, reason, emptied_, retry_delay());
    count_media_sweep(SweepCount::rounds_skipped);
    retry_later();
}

void MediaSweep::stop_round() {
    ngx_log_error(NGX_LOG_ALERT, log_, 0,
                  "chatterd: media sweep of %V stopped, nothing moved: more than %ui media files "
                  "(chatterd_media_sweep_limit) are named by no row, which suggests the wrong "
                  "database rather than lost posts; if it is the right one, raise "
                  "chatterd_media_sweep_limit and reload; %ui emptied from the quarantine",
                  &spec_.media_root, spec_.limit, emptied_);
    count_media_sweep(SweepCount::rounds_stopped);
    retry_later();
}

void MediaSweep::retry_later() {
    close_dirs();
    unnamed_.clear();
    step_ = Step::between_rounds;
    schedule(retry_delay());
}

ngx_int_t media_sweeps_start(ngx_cycle_t* cycle) noexcept {
    // One process sweeps: worker 0 (respawned with the same number if it dies).
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
    if (ngx_worker != 0) return NGX_OK;
    for (MediaSweepSpec* spec : specs_of<MediaSweepSpec>(cycle, &MainConf::media_sweeps)) {
        spec->sweep = new (std::nothrow) MediaSweep(*spec, cycle->log);
        if (spec->sweep == nullptr) return NGX_ERROR;
        spec->sweep->schedule(1);
    }
    return NGX_OK;
}

void media_sweeps_stop(ngx_cycle_t* cycle) noexcept {
    for (MediaSweepSpec* spec : specs_of<MediaSweepSpec>(cycle, &MainConf::media_sweeps)) {
        delete spec->sweep;
        spec->sweep = nullptr;
    }
}

}  // namespace chatterd
