#include "ngx/metrics.h"

#include "ngx/pg_target.h"

#include <cerrno>
#include <csignal>
#include <vector>

namespace chatterd {

namespace {

constexpr std::size_t kEndpoints = 6;   // Endpoint's values, none included
constexpr std::size_t kStatuses = 600;  // by status; 0 holds any status outside 100..599
// Workers that publish gauges at once: a reload's new workers start while the old ones still
// finish their requests, and a worker that died leaves its slot to the next one.
constexpr std::size_t kSlots = 256;
constexpr std::size_t kPgErrors = 6;
constexpr std::size_t kBatchKinds = 2;  // combined, shared
// Requests per batched statement; at most kMaxBatchCalls (64), +Inf for the format's sake.
constexpr ngx_atomic_uint_t kBatchBounds[] = {2, 4, 8, 16, 32, 64};
constexpr std::size_t kBuckets = sizeof(kBatchBounds) / sizeof(kBatchBounds[0]) + 1;
constexpr std::size_t kLine = 64;  // cache line: workers write their own slots

const char* const kPgErrorNames[kPgErrors] = {"connect_failed", "connection_lost", "timeout",
                                              "refused",        "queue_full",      "no_descriptor"};
const char* const kBatchKindNames[kBatchKinds] = {"combined", "shared"};

struct alignas(kLine) Totals {
    ngx_atomic_t requests[kEndpoints][kStatuses];
    ngx_atomic_t upload_bytes[kEndpoints];
    ngx_atomic_t media[3];    // by MediaFate
    ngx_atomic_t sweep[6];    // by SweepCount
    ngx_atomic_t uploads[4];  // by UploadCount
    ngx_atomic_t answers_over_memory_bound;
    ngx_atomic_t list_cache[5];  // by ListCacheCount
};

struct alignas(kLine) PoolTotals {
    ngx_atomic_t queries;
    ngx_atomic_t connects;
    ngx_atomic_t errors[kPgErrors];
    ngx_atomic_t batch_buckets[kBatchKinds][kBuckets];  // not cumulative: each its own range
    ngx_atomic_t batch_sum[kBatchKinds];
};

// One worker's gauges of one pool, written by that worker only.
struct PoolGauges {
    ngx_atomic_t connecting;
    ngx_atomic_t idle;
    ngx_atomic_t busy;
    ngx_atomic_t waiting;
    ngx_atomic_t down_since;
    ngx_atomic_t listening;
};

struct alignas(kLine) WorkerSlot {
    ngx_atomic_t pid;  // 0: free
    ngx_atomic_t answer_bytes;
    // followed by PoolGauges[pools]
};

// The zone: Totals, PoolTotals[pools], then kSlots worker slots.
struct Layout {
    std::size_t pools;
    std::size_t slot_size;
    std::size_t size;
};

std::size_t round_up(std::size_t n) {
    return (n + kLine - 1) / kLine * kLine;
}

Layout layout_for(std::size_t pools) {
    std::size_t slot_size = round_up(sizeof(WorkerSlot) + pools * sizeof(PoolGauges));
    return {pools, slot_size, sizeof(Totals) + pools * sizeof(PoolTotals) + kSlots * slot_size};
}

// This worker's view of the zone.
struct Zone {
    Layout layout{};
    u_char* base = nullptr;
    WorkerSlot* own = nullptr;

    Totals& totals() const { return *reinterpret_cast<Totals*>(base); }
    PoolTotals& pool(std::size_t i) const {
        return reinterpret_cast<PoolTotals*>(base + sizeof(Totals))[i];
    }
    WorkerSlot& slot(std::size_t i) const {
        return *reinterpret_cast<WorkerSlot*>(
            base + sizeof(Totals) + layout.pools * sizeof(PoolTotals) + i * layout.slot_size);
    }
    static PoolGauges& gauges(WorkerSlot& slot, std::size_t pool) {
        return reinterpret_cast<PoolGauges*>(reinterpret_cast<u_char*>(&slot)
                                             + sizeof(WorkerSlot))[pool];
    }
};

Zone zone;  // this worker's; empty in the master

void add(ngx_atomic_t& counter, ngx_atomic_uint_t n) {
    ngx_atomic_fetch_add(&counter, static_cast<ngx_atomic_int_t>(n));
}

// A pool's counters, or null without a zone (or for a pool the zone was not sized for).
PoolTotals* pool_totals(const PgPoolSpec& spec) {
    if (zone.base == nullptr || spec.index >= zone.layout.pools) return nullptr;
    return &zone.pool(spec.index);
}

bool alive(ngx_atomic_uint_t pid) {
    return pid != 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH);
}

// ---- configuration -----------------------------------------------------------------------

// A zone reused by a reload (same name, so the same pools) keeps its counts. Otherwise the
// counters are one zeroed block of the zone's slab pool; data holds its size until then.
ngx_int_t init_zone(ngx_shm_zone_t* shm_zone, void* reused) noexcept {
    if (reused != nullptr) {
        shm_zone->data = reused;
        return NGX_OK;
    }
    std::size_t size = *static_cast<std::size_t*>(shm_zone->data);
    shm_zone->data = ngx_slab_calloc(reinterpret_cast<ngx_slab_pool_t*>(shm_zone->shm.addr), size);
    return shm_zone->data != nullptr ? NGX_OK : NGX_ERROR;
}

ngx_int_t count_request(ngx_http_request_t* r) noexcept {
    LocConf* lc = loc_conf(r);
    if (zone.base == nullptr || lc == nullptr || lc->endpoint == Endpoint::none) return NGX_OK;
    // As nginx's $status: what was sent, or what the request ended with (499, 408...).
    ngx_uint_t status = r->err_status ? r->err_status : r->headers_out.status;
    if (status < 100 || status >= kStatuses) status = 0;
    add(zone.totals().requests[static_cast<std::size_t>(lc->endpoint)][status], 1);
    return NGX_OK;
}

// ---- the page ----------------------------------------------------------------------------

void escape_label(std::string& page, std::string_view value) {
    for (char c : value) {
        if (c == '\\' || c == '"') {
            page += '\\';
            page += c;
        } else if (c == '\n') {
            page += "\\n";
        } else {
            page += c;
        }
    }
}

class Page {
public:
    explicit Page(std::string& text) : text_(text) {}

    void family(const char* name, const char* type, const char* help) {
        text_.append("# HELP ").append(name).append(" ").append(help).append("\n");
        text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }
    // labels: "name", "value" pairs, already fit for the page except for escaping.
    void sample(const char* name, std::initializer_list<std::string_view> labels,
                std::string_view value) {
        text_.append(name);
        if (labels.size() > 0) {
            text_ += '{';
            bool first = true;
            for (auto it = labels.begin(); it != labels.end(); it += 2) {
                if (!first) text_ += ',';
                first = false;
                text_.append(*it).append("=\"");
                escape_label(text_, *(it + 1));
                text_ += '"';
            }
            text_ += '}';
        }
        text_.append(" ").append(value).append("\n");
    }
    void sample(const char* name, std::initializer_list<std::string_view> labels,
                ngx_atomic_uint_t value) {
        sample(name, labels, std::to_string(value));
    }

private:
    std::string& text_;
};

struct PoolSums {
    ngx_atomic_uint_t connecting = 0, idle = 0, busy = 0, waiting = 0;
    ngx_atomic_uint_t down_since = 0;  // the earliest of the workers that see it down
    ngx_atomic_uint_t listening = 0;
};

void render_totals(Page& page) {
    const Totals& totals = zone.totals();
    page.family("chatterd_requests_total", "counter",
                "Requests answered in the locations of an endpoint, by endpoint and status "
                "(as nginx logs it: 499 for a client that left).");
    for (std::size_t e = 1; e < kEndpoints; e++) {
        for (std::size_t status = 0; status < kStatuses; status++) {
            ngx_atomic_uint_t n = totals.requests[e][status];
            if (n == 0) continue;
            std::string code = status == 0 ? "000" : std::to_string(status);
            page.sample("chatterd_requests_total",
                        {"endpoint", endpoint_name(static_cast<Endpoint>(e)), "status", code}, n);
        }
    }
    page.family("chatterd_upload_bytes_total", "counter",
                "Request body bytes read by postchatt, postimages and uploads (postimages and "
                "uploads: as they arrive, refused uploads included).");
    for (Endpoint e : {Endpoint::postchatt, Endpoint::postimages, Endpoint::uploads}) {
        std::size_t i = static_cast<std::size_t>(e);
        page.sample("chatterd_upload_bytes_total",
                    {"endpoint", endpoint_name(static_cast<Endpoint>(i))}, totals.upload_bytes[i]);
    }
    page.family("chatterd_media_files_kept_total", "counter",
                "Media files kept with their row (stored, or whose row's fate was unknown).");
    page.sample("chatterd_media_files_kept_total", {},
                totals.media[static_cast<std::size_t>(MediaFate::kept)]);
    page.family("chatterd_media_files_removed_total", "counter",
                "Published media files removed because no row names them: by the request that "
                "wrote them, or by the media sweep.");
    page.sample("chatterd_media_files_removed_total", {"by", "request"},
                totals.media[static_cast<std::size_t>(MediaFate::removed_by_request)]);
    page.sample("chatterd_media_files_removed_total", {"by", "sweep"},
                totals.media[static_cast<std::size_t>(MediaFate::removed_by_sweep)]);
    page.family("chatterd_answers_over_memory_bound_total", "counter",
                "getchatts and getimages requests answered 503 because their answer would have "
                "crossed chatterd_answer_memory_max (every request that shared the refused run).");
    page.sample("chatterd_answers_over_memory_bound_total", {}, totals.answers_over_memory_bound);
}

// A family of one sample without labels.
void single(Page& page, const char* name, const char* type, const char* help,
            ngx_atomic_uint_t value) {
    page.family(name, type, help);
    page.sample(name, {}, value);
}

void render_list_cache(Page& page, off_t bytes_held) {
    const Totals& totals = zone.totals();
    auto cache = [&totals](ListCacheCount what) {
        return totals.list_cache[static_cast<std::size_t>(what)];
    };
    single(page, "chatterd_list_cache_hits_total", "counter",
           "getchatts and getimages requests answered from the node's cached file (200 or 304), "
           "without a query.",
           cache(ListCacheCount::hit));
    single(page, "chatterd_list_cache_rebuilds_total", "counter",
           "Cached listing files written: once per change of the tables, not per request.",
           cache(ListCacheCount::rebuild));
    page.family("chatterd_list_cache_queries_total", "counter",
                "Listing requests that queried although the cache is on: while another request "
                "rebuilt the file, or while their worker's LISTEN connection was down.");
    page.sample("chatterd_list_cache_queries_total", {"reason", "building"},
                cache(ListCacheCount::query_building));
    page.sample("chatterd_list_cache_queries_total", {"reason", "listen_down"},
                cache(ListCacheCount::query_unlistened));
    single(page, "chatterd_list_cache_too_big_total", "counter",
           "Listing answers not cached because beyond chatterd_list_cache_max_size.",
           cache(ListCacheCount::too_big));
    single(page, "chatterd_list_cache_bytes", "gauge", "Bytes of the node's cached listing files.",
           static_cast<ngx_atomic_uint_t>(bytes_held));
}

void render_sweep_totals(Page& page) {
    const Totals& totals = zone.totals();
    auto count = [&totals](SweepCount what) {
        return totals.sweep[static_cast<std::size_t>(what)];
    };
    page.family("chatterd_media_sweep_files_total", "counter",
                "Media files the sweep looked up in the rows (judged), moved out of the media "
                "root to its quarantine because no row names them, and emptied from the "
                "quarantine a period later.");
    page.sample("chatterd_media_sweep_files_total", {"fate", "judged"}, count(SweepCount::judged));
    page.sample("chatterd_media_sweep_files_total", {"fate", "quarantined"},
                count(SweepCount::quarantined));
    page.sample("chatterd_media_sweep_files_total", {"fate", "emptied"},
                count(SweepCount::emptied));
    page.family("chatterd_media_sweep_rounds_total", "counter",
                "Rounds of the media sweep: done, skipped (nothing judged: a standby, a session "
                "or prepared transaction it cannot see the start of, no quarantine), stopped "
                "(more unnamed files than chatterd_media_sweep_limit: nothing moved).");
    page.sample("chatterd_media_sweep_rounds_total", {"result", "done"},
                count(SweepCount::rounds_done));
    page.sample("chatterd_media_sweep_rounds_total", {"result", "skipped"},
                count(SweepCount::rounds_skipped));
    page.sample("chatterd_media_sweep_rounds_total", {"result", "stopped"},
                count(SweepCount::rounds_stopped));
}

void render_upload_totals(Page& page) {
    const Totals& totals = zone.totals();
    page.family("chatterd_uploads_total", "counter",
                "Resumable (tus) uploads: started (created), completed (every byte received), "
                "expired (removed after chatterd_upload_expiry without activity), terminated "
                "(removed by DELETE).");
    static const char* const kNames[] = {"started", "completed", "expired", "terminated"};
    for (std::size_t i = 0; i < 4; i++)
        page.sample("chatterd_uploads_total", {"event", kNames[i]}, totals.uploads[i]);
}

void pool_counter(Page& page, const char* name, const char* help, const std::string* labels,
                  std::size_t pools, ngx_atomic_t PoolTotals::*counter) {
    page.family(name, "counter", help);
    for (std::size_t p = 0; p < pools; p++)
        page.sample(name, {"pool", labels[p]}, zone.pool(p).*counter);
}

void render_pool_totals(Page& page, const std::string* labels, std::size_t pools) {
    pool_counter(page, "chatterd_pg_queries_total",
                 "Statements sent to PostgreSQL (one per request, or one for a batch).", labels,
                 pools, &PoolTotals::queries);
    page.family("chatterd_pg_batch_requests", "histogram",
                "Requests served by one statement, for statements serving several: combined "
                "INSERTs and shared COPYs.");
    for (std::size_t p = 0; p < pools; p++) {
        for (std::size_t k = 0; k < kBatchKinds; k++) {
            const PoolTotals& totals = zone.pool(p);
            ngx_atomic_uint_t cumulative = 0;
            for (std::size_t b = 0; b < kBuckets; b++) {
                cumulative += totals.batch_buckets[k][b];
                std::string le = b + 1 < kBuckets ? std::to_string(kBatchBounds[b]) : "+Inf";
                page.sample("chatterd_pg_batch_requests_bucket",
                            {"pool", labels[p], "kind", kBatchKindNames[k], "le", le}, cumulative);
            }
            page.sample("chatterd_pg_batch_requests_sum",
                        {"pool", labels[p], "kind", kBatchKindNames[k]}, totals.batch_sum[k]);
            page.sample("chatterd_pg_batch_requests_count",
                        {"pool", labels[p], "kind", kBatchKindNames[k]}, cumulative);
        }
    }
    pool_counter(page, "chatterd_pg_connects_total",
                 "Connections the pool started to open (the first ones and every reconnect).",
                 labels, pools, &PoolTotals::connects);
    page.family("chatterd_pg_errors_total", "counter",
                "Pool failures: connects that failed, open connections that broke, requests "
                "that timed out, were refused while the database was down, or found the queue "
                "full, and connects that found no descriptor (or connection) left in the worker.");
    for (std::size_t p = 0; p < pools; p++) {
        for (std::size_t e = 0; e < kPgErrors; e++) {
            page.sample("chatterd_pg_errors_total", {"pool", labels[p], "error", kPgErrorNames[e]},
                        zone.pool(p).errors[e]);
        }
    }
}

void render_gauges(Page& page, const std::string* labels, const std::string* targets,
                   std::size_t pools) {
    std::vector<PoolSums> sums(pools);
    ngx_atomic_uint_t answer_bytes = 0;
    ngx_atomic_uint_t workers = 0;
    for (std::size_t s = 0; s < kSlots; s++) {
        WorkerSlot& slot = zone.slot(s);
        if (!alive(slot.pid)) continue;
        workers++;
        answer_bytes += slot.answer_bytes;
        for (std::size_t p = 0; p < pools; p++) {
            const PoolGauges& g = Zone::gauges(slot, p);
            sums[p].connecting += g.connecting;
            sums[p].idle += g.idle;
            sums[p].busy += g.busy;
            sums[p].waiting += g.waiting;
            sums[p].listening += g.listening;
            if (g.down_since != 0
                && (sums[p].down_since == 0 || g.down_since < sums[p].down_since)) {
                sums[p].down_since = g.down_since;
            }
        }
    }
    page.family("chatterd_workers", "gauge", "Worker processes whose gauges the page sums.");
    page.sample("chatterd_workers", {}, workers);
    page.family("chatterd_answer_bytes", "gauge",
                "Memory held by JSON answers of getchatts and getimages being built or sent.");
    page.sample("chatterd_answer_bytes", {}, answer_bytes);
    page.family("chatterd_pg_up", "gauge",
                "1 when every worker's pool reaches its database, 0 while one is backing off.");
    for (std::size_t p = 0; p < pools; p++) {
        page.sample("chatterd_pg_up", {"pool", labels[p], "target", targets[p]},
                    sums[p].down_since == 0 ? 1 : 0);
    }
    page.family("chatterd_pg_down_since_seconds", "gauge",
                "Unix time of the first failed connect of the current outage; 0 while up.");
    for (std::size_t p = 0; p < pools; p++) {
        page.sample("chatterd_pg_down_since_seconds", {"pool", labels[p], "target", targets[p]},
                    sums[p].down_since);
    }
    page.family("chatterd_pg_connections", "gauge", "The pools' connections, by state.");
    for (std::size_t p = 0; p < pools; p++) {
        page.sample("chatterd_pg_connections", {"pool", labels[p], "state", "connecting"},
                    sums[p].connecting);
        page.sample("chatterd_pg_connections", {"pool", labels[p], "state", "idle"}, sums[p].idle);
        page.sample("chatterd_pg_connections", {"pool", labels[p], "state", "busy"}, sums[p].busy);
    }
    page.family("chatterd_pg_listening_workers", "gauge",
                "Workers whose LISTEN connection is up (chatterd_list_cache): the others answer "
                "listings by querying.");
    for (std::size_t p = 0; p < pools; p++) {
        page.sample("chatterd_pg_listening_workers", {"pool", labels[p]}, sums[p].listening);
    }
    page.family("chatterd_pg_queue_length", "gauge",
                "Requests waiting for a connection or for the next statement of their kind.");
    for (std::size_t p = 0; p < pools; p++) {
        page.sample("chatterd_pg_queue_length", {"pool", labels[p]}, sums[p].waiting);
    }
}

}  // namespace

// ---- life cycle ----------------------------------------------------------------------------

bool specs_zone_name(ngx_conf_t* cf, const char* prefix, std::size_t salt, ngx_str_t& name) {
    auto* mc =
        static_cast<MainConf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_chatterd_module));
    uint32_t crc;
    ngx_crc32_init(crc);
    auto** specs = static_cast<PgPoolSpec**>(mc->pool_specs.elts);
    for (ngx_uint_t i = 0; i < mc->pool_specs.nelts; i++) {
        ngx_crc32_update(&crc, specs[i]->conninfo.data, specs[i]->conninfo.len + 1);
    }
    ngx_crc32_update(&crc, reinterpret_cast<u_char*>(&salt), sizeof(salt));
    ngx_crc32_final(crc);
    auto* text = static_cast<u_char*>(ngx_pnalloc(cf->pool, 128));
    if (text == nullptr) return false;
    name.data = text;
    name.len = ngx_snprintf(text, 128, "%s_%ui_%08xD", prefix, mc->pool_specs.nelts, crc) - text;
    return true;
}

ngx_int_t metrics_configure(ngx_conf_t* cf) noexcept {
    auto* mc =
        static_cast<MainConf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_chatterd_module));
    // The zone's name tells its layout: a reload with the same pools keeps the counts, one
    // with other pools starts a new zone (the old workers keep theirs until they exit).
    // A module with other counters (a reload after an upgrade) gets a zone of its own too.
    Layout layout = layout_for(mc->pool_specs.nelts);
    auto* size = static_cast<std::size_t*>(ngx_palloc(cf->pool, sizeof(std::size_t)));
    ngx_str_t zone_name;
    if (size == nullptr || !specs_zone_name(cf, "chatterd_status", sizeof(Totals), zone_name))
        return NGX_ERROR;
    *size = layout.size;
    // Room for the slab pool's own pages and page table (nginx's minimum is 8 pages).
    std::size_t zone_size =
        ngx_align(layout.size + layout.size / 64 + 8 * ngx_pagesize, ngx_pagesize);
    mc->status_zone = ngx_shared_memory_add(cf, &zone_name, zone_size, &ngx_http_chatterd_module);
    if (mc->status_zone == nullptr) return NGX_ERROR;
    mc->status_zone->init = init_zone;
    mc->status_zone->data = size;

    auto* cmcf = static_cast<ngx_http_core_main_conf_t*>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));
    auto* handler = static_cast<ngx_http_handler_pt*>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers));
    if (handler == nullptr) return NGX_ERROR;
    *handler = count_request;
    return NGX_OK;
}

ngx_int_t metrics_start(ngx_cycle_t* cycle) noexcept {
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
    auto* mc = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (mc == nullptr || mc->status_zone == nullptr || mc->status_zone->data == nullptr)
        return NGX_OK;
    zone.layout = layout_for(mc->pool_specs.nelts);
    zone.base = static_cast<u_char*>(mc->status_zone->data);
    for (std::size_t s = 0; s < kSlots; s++) {
        WorkerSlot& slot = zone.slot(s);
        ngx_atomic_uint_t pid = slot.pid;
        if (alive(pid)
            || !ngx_atomic_cmp_set(&slot.pid, pid, static_cast<ngx_atomic_uint_t>(ngx_pid))) {
            continue;
        }
        // A dead worker's slot: its gauges died with it.
        ngx_memzero(reinterpret_cast<u_char*>(&slot) + sizeof(slot.pid),
                    zone.layout.slot_size - sizeof(slot.pid));
        zone.own = &slot;
        return NGX_OK;
    }
    ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                  "chatterd: no free slot for this worker's gauges in the status zone (%uz "
                  "workers publish theirs); its counters still count",
                  kSlots);
    return NGX_OK;
}

void metrics_stop() noexcept {
    if (zone.own == nullptr) return;
    ngx_memzero(reinterpret_cast<u_char*>(zone.own) + sizeof(zone.own->pid),
                zone.layout.slot_size - sizeof(zone.own->pid));
    zone.own->pid = 0;
    zone.own = nullptr;
}

// ---- counting ------------------------------------------------------------------------------

void count_upload_bytes(Endpoint endpoint, std::size_t bytes) noexcept {
    if (zone.base != nullptr)
        add(zone.totals().upload_bytes[static_cast<std::size_t>(endpoint)], bytes);
}

void count_media_files(MediaFate fate, ngx_uint_t files) noexcept {
    if (zone.base != nullptr) add(zone.totals().media[static_cast<std::size_t>(fate)], files);
}

void count_media_sweep(SweepCount what, ngx_uint_t n) noexcept {
    if (zone.base != nullptr && n > 0) add(zone.totals().sweep[static_cast<std::size_t>(what)], n);
}

void count_uploads(UploadCount what) noexcept {
    if (zone.base != nullptr) add(zone.totals().uploads[static_cast<std::size_t>(what)], 1);
}

void count_pg_error(const PgPoolSpec& spec, PgError error) noexcept {
    if (PoolTotals* totals = pool_totals(spec))
        add(totals->errors[static_cast<std::size_t>(error)], 1);
}

void count_pg_connect(const PgPoolSpec& spec) noexcept {
    if (PoolTotals* totals = pool_totals(spec)) add(totals->connects, 1);
}

void count_pg_statement(const PgPoolSpec& spec, std::size_t requests, PgServed served) noexcept {
    PoolTotals* totals = pool_totals(spec);
    if (totals == nullptr) return;
    add(totals->queries, 1);
    if (served == PgServed::alone || requests < 2) return;
    std::size_t kind = served == PgServed::combined ? 0 : 1;
    std::size_t bucket = 0;
    while (bucket + 1 < kBuckets && requests > kBatchBounds[bucket]) bucket++;
    add(totals->batch_buckets[kind][bucket], 1);
    add(totals->batch_sum[kind], requests);
}

void publish_pg_gauges(const PgPoolSpec& spec, const PgGauges& gauges) noexcept {
    if (zone.own == nullptr || spec.index >= zone.layout.pools) return;
    PoolGauges& own = Zone::gauges(*zone.own, spec.index);
    own.connecting = gauges.connecting;
    own.idle = gauges.idle;
    own.busy = gauges.busy;
    own.waiting = gauges.waiting;
    // The outage's start as first seen: the page does not move with each publication.
    if (gauges.down_since == 0 || own.down_since == 0) {
        own.down_since = static_cast<ngx_atomic_uint_t>(gauges.down_since);
    }
}

void add_answer_bytes(ngx_int_t bytes) noexcept {
    if (zone.own != nullptr) zone.own->answer_bytes += static_cast<ngx_atomic_uint_t>(bytes);
}

void count_list_cache(ListCacheCount what) noexcept {
    if (zone.base != nullptr) add(zone.totals().list_cache[static_cast<std::size_t>(what)], 1);
}

void publish_listening(const PgPoolSpec& spec, bool up) noexcept {
    if (zone.own == nullptr || spec.index >= zone.layout.pools) return;
    Zone::gauges(*zone.own, spec.index).listening = up ? 1 : 0;
}

void count_answer_over_memory_bound() noexcept {
    if (zone.base != nullptr) add(zone.totals().answers_over_memory_bound, 1);
}

// ---- the page ------------------------------------------------------------------------------

bool render_metrics(const MainConf& conf, const PageGauges& gauges, std::string& text) {
    if (zone.base == nullptr) return false;
    std::size_t pools = zone.layout.pools;
    std::vector<std::string> labels(pools), targets(pools);
    auto** specs = static_cast<PgPoolSpec**>(conf.pool_specs.elts);
    for (PgPoolSpec* spec : SpecRange<PgPoolSpec>{specs, specs + conf.pool_specs.nelts}) {
        if (spec->index >= pools) continue;
        labels[spec->index] = std::to_string(spec->index);
        targets[spec->index] = pg_target(spec->conninfo);
    }
    Page page(text);
    render_totals(page);
    render_sweep_totals(page);
    render_upload_totals(page);
    render_list_cache(page, gauges.list_cache_bytes);
    render_gauges(page, labels.data(), targets.data(), pools);
    render_pool_totals(page, labels.data(), pools);
    return true;
}

}  // namespace chatterd
