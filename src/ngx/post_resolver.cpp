#include "ngx/post_resolver.h"

#include "core/pg_array.h"
#include "ngx/metrics.h"
#include "ngx/pg_pool.h"

#include <unistd.h>

#include <memory>
#include <new>
#include <set>

namespace chatterd {

namespace {
// Between attempts while the database does not answer, or a backend has not exited yet.
constexpr ngx_msec_t kRetry = 1000;

// How many of the backends are still there after being asked to end. pg_terminate_backend
// waits ($2 ms) for each to exit: a backend that exited has ended its transaction, committed or
// rolled back. A backend is only ended while it is in a transaction that began before the post
// was handed over ($3: seconds ago, by this worker's clock, so that the clocks of the two hosts
// need not agree): the INSERT was running then, and a pool connection that has finished it
// since runs other requests' statements, which must not be ended. The resolver's own connection
// may be the very one that ran the INSERT (then done with it): never itself. Only backends of
// this role, which chatterd's INSERTs run as.
constexpr const char* kTerminateSql =
    "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(a.pid, $2::bigint)) "
    "FROM pg_stat_activity a JOIN unnest($1::int[], $3::float8[]) AS p(pid, age) ON a.pid = p.pid "
    "WHERE a.pid <> pg_backend_pid() AND a.usename = current_user "
    "AND a.xact_start < clock_timestamp() - make_interval(secs => p.age)";
// Which of the posts' rows exist: once their backends are gone, final.
constexpr const char* kLookupSql = "SELECT id::text FROM chatts WHERE id = ANY($1::uuid[])";

}  // namespace

std::string media_names(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text.append(text.empty() ? "" : " ").append(name);
    return text.empty() ? "no file" : text;
}

class PostResolver {
public:
    PostResolver(PgPoolSpec& spec, ngx_log_t* log) : spec_(spec), log_(log) {
        timer_.data = this;
        timer_.log = log;
        timer_.handler = on_timer;
    }
    ~PostResolver();
    PostResolver(const PostResolver&) = delete;
    PostResolver& operator=(const PostResolver&) = delete;

    const PgPoolSpec& spec() const { return spec_; }
    void add(UnknownPost post);

private:
    enum class Step { idle, terminating, looking_up };

    static void on_timer(ngx_event_t* ev) noexcept;
    static void on_terminated(void* data, const PgOutcome& outcome) noexcept;
    static void on_looked_up(void* data, const PgOutcome& outcome) noexcept;
    void schedule(ngx_msec_t delay, bool worker_may_exit);
    void run();
    void start(const char* sql, PgTaskDone on_done);
    bool failed(const PgOutcome& outcome, const char* what);
    void settle(const PGresult* found);

    PgPoolSpec& spec_;
    ngx_log_t* log_;
    Step step_ = Step::idle;
    std::vector<UnknownPost> waiting_;  // not in a round yet
    std::vector<UnknownPost> round_;    // being settled
    ngx_event_t timer_{};
    PgTask task_;
    std::string values_[3];  // the current query's parameters
    const char* params_[3] = {};
};

void PostResolver::add(UnknownPost post) {
    waiting_.push_back(std::move(post));
    if (step_ == Step::idle && !timer_.timer_set) schedule(0, false);
}

// A new post keeps an exiting worker until it is settled or the database fails to answer;
// waiting between attempts does not.
void PostResolver::schedule(ngx_msec_t delay, bool worker_may_exit) {
    if (timer_.timer_set) ngx_del_timer(&timer_);
    timer_.cancelable = worker_may_exit;
    ngx_add_timer(&timer_, delay);
}

void PostResolver::on_timer(ngx_event_t* ev) noexcept {
    auto* resolver = static_cast<PostResolver*>(ev->data);
    try {
        resolver->run();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, resolver->log_, 0, "chatterd: settling posts: %s", e.what());
        resolver->step_ = Step::idle;
        resolver->schedule(kRetry, true);
    }
}

// A round: every post waiting joins it; their backends end, then their rows are looked up.
void PostResolver::run() {
    if (step_ == Step::idle) {
        for (UnknownPost& post : waiting_) round_.push_back(std::move(post));
        waiting_.clear();
        if (round_.empty()) return;
        step_ = Step::terminating;
    }
    if (step_ == Step::terminating) {
        values_[0].assign(1, '{');
        for (const UnknownPost& post : round_) {
            if (values_[0].size() > 1) values_[0] += ',';
            values_[0] += std::to_string(post.backend_pid);
        }
        values_[0] += '}';
        values_[1] = std::to_string(ngx_max(spec_.timeout / 2, 1));
        values_[2].assign(1, '{');
        for (const UnknownPost& post : round_) {
            if (values_[2].size() > 1) values_[2] += ',';
            values_[2] += std::to_string((ngx_current_msec - post.handed_over) / 1000.0);
        }
        values_[2] += '}';
        return start(kTerminateSql, on_terminated);
    }
    values_[0].assign(1, '{');
    for (const UnknownPost& post : round_) {
        if (values_[0].size() > 1) values_[0] += ',';
        append_pg_array_element(values_[0], post.id.c_str());
    }
    values_[0] += '}';
    start(kLookupSql, on_looked_up);
}

void PostResolver::start(const char* sql, PgTaskDone on_done) {
    for (std::size_t i = 0; i < 3; i++) params_[i] = values_[i].c_str();
    int count = step_ == Step::terminating ? 3 : 1;
    if (!task_.start(spec_, PgQuery{nullptr, sql, count, params_, nullptr}, on_done, this, log_)) {
        schedule(kRetry, true);
    }
}

// Whether the step must be tried again (the pool has logged an outage; a failed query is ours).
bool PostResolver::failed(const PgOutcome& outcome, const char* what) {
    if (outcome.kind == PgOutcome::Kind::done
        && PQresultStatus(outcome.result) == PGRES_TUPLES_OK) {
        return false;
    }
    if (outcome.kind == PgOutcome::Kind::done) {
        OneLine line = pg_error_message(outcome.result);
        ngx_log_error(NGX_LOG_ERR, log_, 0, "chatterd: settling %uz posts: %s failed: %*s",
                      round_.size(), what, line.view().size(), line.view().data());
    }
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0, "chatterd: settling posts: %s postponed: %s", what,
                   outcome.reason ? outcome.reason : "error");
    schedule(kRetry, true);
    return true;
}

void PostResolver::on_terminated(void* data, const PgOutcome& outcome) noexcept {
    auto* resolver = static_cast<PostResolver*>(data);
    if (resolver->failed(outcome, "ending their backends")) return;
    const char* left = PQgetvalue(outcome.result, 0, 0);
    if (std::string_view(left) != "0") {
        // A backend that does not exit (stopped, or busy past the wait) may still commit.
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, resolver->log_, 0,
                       "chatterd: settling posts: %s backends still there", left);
        return resolver->schedule(kRetry, true);
    }
    resolver->step_ = Step::looking_up;
    resolver->schedule(0, false);
}

void PostResolver::on_looked_up(void* data, const PgOutcome& outcome) noexcept {
    auto* resolver = static_cast<PostResolver*>(data);
    if (resolver->failed(outcome, "looking their rows up")) return;
    try {
        resolver->settle(outcome.result);
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, resolver->log_, 0, "chatterd: settling posts: %s", e.what());
    }
    resolver->round_.clear();
    resolver->step_ = Step::idle;
    if (!resolver->waiting_.empty()) resolver->schedule(0, false);
}

void PostResolver::settle(const PGresult* found) {
    std::set<std::string> stored;
    for (int row = 0; row < PQntuples(found); row++) stored.insert(PQgetvalue(found, row, 0));
    for (const UnknownPost& post : round_) {
        std::string files = media_names(post.files);
        if (stored.count(post.id) > 0) {
            count_media_files(MediaFate::kept, post.files.size());
            ngx_log_error(NGX_LOG_NOTICE, log_, 0,
                          "chatterd: %s: post %s, whose outcome was unknown, was stored (its "
                          "backend %d has ended); kept %s",
                          post.endpoint, post.id.c_str(), post.backend_pid, files.c_str());
            continue;
        }
        for (const std::string& name : post.files) unlinkat(post.media_dir, name.c_str(), 0);
        count_media_files(MediaFate::removed_by_request, post.files.size());
        ngx_log_error(NGX_LOG_NOTICE, log_, 0,
                      "chatterd: %s: post %s, whose outcome was unknown, was not stored (its "
                      "backend %d has ended); removed %s",
                      post.endpoint, post.id.c_str(), post.backend_pid, files.c_str());
    }
}

PostResolver::~PostResolver() {
    task_.cancel();
    if (timer_.timer_set) ngx_del_timer(&timer_);
    for (const std::vector<UnknownPost>* posts : {&round_, &waiting_}) {
        for (const UnknownPost& post : *posts) {
            std::string files = media_names(post.files);
            ngx_log_error(NGX_LOG_WARN, log_, 0,
                          "chatterd: %s: post %s: whether it was stored is still unknown at "
                          "worker exit; kept %s for the media sweep",
                          post.endpoint, post.id.c_str(), files.c_str());
        }
    }
}

namespace {
// This worker's resolvers, one per database setting that had a post of unknown outcome.
std::vector<std::unique_ptr<PostResolver>> resolvers;
}  // namespace

void resolve_post(PgPoolSpec& spec, UnknownPost post) noexcept try {
    post.handed_over = ngx_current_msec;
    for (const std::unique_ptr<PostResolver>& resolver : resolvers) {
        if (&resolver->spec() == &spec) return resolver->add(std::move(post));
    }
    resolvers.push_back(std::make_unique<PostResolver>(spec, ngx_cycle->log));
    resolvers.back()->add(std::move(post));
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "chatterd: %s: post %s cannot be settled (%s); its files are left to the media "
                  "sweep",
                  post.endpoint, post.id.c_str(), e.what());
}

void post_resolvers_stop() noexcept {
    resolvers.clear();
}

}  // namespace chatterd
