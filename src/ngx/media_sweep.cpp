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
#include <new>
#include <string>

namespace chatterd {

namespace {
// One query checks this many files at most; a round goes on through the directory, one such
// chunk after the other, until its end.
constexpr std::size_t kMaxCandidates = 10000;
constexpr ngx_msec_t kRetryAfterFailure = 60 * 1000;
// The candidates that no row names. One pass over the table, whatever the number of files; a
// URL names a file by its last path segment (the base is the request's or chatterd_media_url).
constexpr const char* kUnnamedSql =
    "SELECT n FROM unnest($1::text[]) AS n "
    "EXCEPT SELECT substring(u FROM '[^/]*$') FROM chatts, "
    "LATERAL (VALUES (imageurl), (videourl)) AS v(u) WHERE u IS NOT NULL";

std::string root_path(const ngx_str_t& root) {
    return std::string(to_view(root));
}
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
        if (dir_ != nullptr) closedir(dir_);
    }
    MediaSweep(const MediaSweep&) = delete;
    MediaSweep& operator=(const MediaSweep&) = delete;

    void schedule(ngx_msec_t delay) { ngx_add_timer(&timer_, delay); }

private:
    static void on_timer(ngx_event_t* ev) noexcept;
    static void on_unnamed(void* data, const PgOutcome& outcome) noexcept;
    void run();
    std::size_t list_candidates();
    bool old_enough(int dir, const char* name) const;
    void remove_unnamed(const PGresult* result);
    void end_round();

    MediaSweepSpec& spec_;
    ngx_log_t* log_;
    ngx_event_t timer_{};
    PgTask task_;
    DIR* dir_ = nullptr;      // during a round: where its listing goes on
    ngx_uint_t removed_ = 0;  // during a round: files removed so far
    std::string names_;       // the current chunk's candidates, as one text array
    const char* params_[1] = {};
};

void MediaSweep::on_timer(ngx_event_t* ev) noexcept {
    auto* sweep = static_cast<MediaSweep*>(ev->data);
    try {
        sweep->run();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, sweep->log_, 0, "chatterd: media sweep of %V: %s",
                      &sweep->spec_.media_root, e.what());
        sweep->schedule(kRetryAfterFailure);
    }
}

// One chunk of a round: the next candidates of the listing, and the query about them.
void MediaSweep::run() {
    std::size_t candidates = list_candidates();
    if (candidates == 0) return end_round();
    params_[0] = names_.c_str();
    if (!task_.start(*spec_.pool_spec, PgQuery{nullptr, kUnnamedSql, 1, params_, nullptr},
                     on_unnamed, this, log_)) {
        schedule(kRetryAfterFailure);
    }
}

// The next files of the listing old enough to be checked, into names_; returns how many. The
// listing stays open between chunks (entries removed meanwhile never make readdir skip others).
std::size_t MediaSweep::list_candidates() {
    names_.assign(1, '{');
    if (dir_ == nullptr) {
        std::string root = root_path(spec_.media_root);
        dir_ = opendir(root.c_str());
        removed_ = 0;
        if (dir_ == nullptr) {
            ngx_log_error(NGX_LOG_ERR, log_, ngx_errno,
                          "chatterd: media sweep: opendir(\"%s\") failed", root.c_str());
            names_ += '}';
            return 0;
        }
    }
    std::size_t count = 0;
    while (count < kMaxCandidates) {
        dirent* entry = readdir(dir_);
        if (entry == nullptr) {
            closedir(dir_);
            dir_ = nullptr;
            break;
        }
        if (!is_media_name(entry->d_name) || !old_enough(dirfd(dir_), entry->d_name)) continue;
        if (count > 0) names_ += ',';
        append_pg_array_element(names_, entry->d_name);
        count++;
    }
    names_ += '}';
    return count;
}

// Older than the grace period by both its contents (mtime) and its name (ctime: publishing
// links it), so that a file being received or just published is never a candidate.
bool MediaSweep::old_enough(int dir, const char* name) const {
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return false;
    time_t newest = std::max(st.st_mtime, st.st_ctime);
    return newest + static_cast<time_t>(spec_.grace / 1000) < ngx_time();
}

void MediaSweep::on_unnamed(void* data, const PgOutcome& outcome) noexcept {
    auto* sweep = static_cast<MediaSweep*>(data);
    if (outcome.kind != PgOutcome::Kind::done) {
        // The pool has logged why; the files wait for the next round.
        ngx_log_error(NGX_LOG_INFO, sweep->log_, 0, "chatterd: media sweep of %V postponed: %s",
                      &sweep->spec_.media_root, outcome.reason);
        return sweep->schedule(kRetryAfterFailure);
    }
    if (PQresultStatus(outcome.result) != PGRES_TUPLES_OK) {
        OneLine line = pg_error_message(outcome.result);
        ngx_log_error(NGX_LOG_ERR, sweep->log_, 0,
                      "chatterd: media sweep of %V: the query failed: %*s; retried in %M ms",
                      &sweep->spec_.media_root, line.view().size(), line.view().data(),
                      kRetryAfterFailure);
        return sweep->schedule(kRetryAfterFailure);
    }
    sweep->remove_unnamed(outcome.result);
    if (sweep->dir_ != nullptr) return sweep->schedule(1);  // the round's next chunk
    sweep->end_round();
}

void MediaSweep::remove_unnamed(const PGresult* result) {
    std::string root = root_path(spec_.media_root);
    int dir = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: media sweep: open(\"%s\") failed",
                      root.c_str());
        return;
    }
    ngx_uint_t removed = 0;
    for (int row = 0; row < PQntuples(result); row++) {
        const char* name = PQgetvalue(result, row, 0);
        if (!is_media_name(name) || !old_enough(dir, name)) continue;
        if (unlinkat(dir, name, 0) == 0) {
            removed++;
        } else if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log_, ngx_errno,
                          "chatterd: media sweep: unlink \"%s/%s\" failed", root.c_str(), name);
        }
    }
    close(dir);
    count_media_files(MediaFate::removed_by_sweep, removed);
    removed_ += removed;
}

void MediaSweep::end_round() {
    ngx_uint_t level = removed_ > 0 ? NGX_LOG_WARN : NGX_LOG_INFO;
    ngx_log_error(level, log_, 0,
                  "chatterd: media sweep of %V: removed %ui media files that no row names, older "
                  "than %M ms (left by posts whose outcome was unknown, or by a worker that died)",
                  &spec_.media_root, removed_, spec_.grace);
    removed_ = 0;
    schedule(spec_.grace);
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
