// The numbers behind chatterd_status: counters and gauges summed over every worker of the
// instance, kept in one shared memory zone as nginx's own zones are (added at configuration
// time, set up by its init callback, inherited by the workers).
//   counters: atomic adds into the zone, by whichever worker counts;
//   gauges: each worker writes its own slot (claimed at its start, released at its exit); the
//     page sums the slots of the workers that are alive, so a worker that died takes its
//     connections and memory off the page with it.
// Without a zone (the master, nginx -t) every call does nothing.
#pragma once

#include "ngx/conf.h"

#include <ctime>
#include <string>

namespace chatterd {

// Configuration time (postconfiguration): the zone, sized for the configured pools, and the
// log-phase handler that counts every answer of an endpoint's location.
ngx_int_t metrics_configure(ngx_conf_t* cf) noexcept;
// A shared zone's name for this configuration's pools: prefix, their count, and a CRC of
// their conninfos and salt (the zone's layout), so that a reload keeps a zone only when it
// describes the same databases the same way. Allocated in cf's pool; false when out of memory.
bool specs_zone_name(ngx_conf_t* cf, const char* prefix, std::size_t salt, ngx_str_t& name);
// Worker life cycle: claim this worker's gauge slot, and give it back.
ngx_int_t metrics_start(ngx_cycle_t* cycle) noexcept;
void metrics_stop() noexcept;

// Body bytes an endpoint read from its clients.
void count_upload_bytes(Endpoint endpoint, std::size_t bytes) noexcept;

// Media files: kept with their row, or removed because no row names them (by the request
// that wrote them, or by the media sweep).
enum class MediaFate { kept, removed_by_request, removed_by_sweep };
void count_media_files(MediaFate fate, ngx_uint_t files = 1) noexcept;

// The media sweep's files (judged: looked up in the rows; quarantined: moved out of the media
// root; emptied: removed from the quarantine) and rounds (done, skipped: nothing judged,
// stopped: more unnamed files than chatterd_media_sweep_limit).
enum class SweepCount { judged, quarantined, emptied, rounds_done, rounds_skipped, rounds_stopped };
void count_media_sweep(SweepCount what, ngx_uint_t n = 1) noexcept;

// Resumable uploads (ngx/upload_store.h) by what happened to them.
enum class UploadCount { started, completed, expired, terminated };
void count_uploads(UploadCount what) noexcept;

// The pools' counters.
enum class PgError { connect_failed, connection_lost, timeout, refused, queue_full, no_descriptor };
void count_pg_error(const PgPoolSpec& spec, PgError error) noexcept;
void count_pg_connect(const PgPoolSpec& spec) noexcept;
// A statement sent for `requests` requests, and how they were served together (PgBatch).
enum class PgServed { alone, combined, shared };
void count_pg_statement(const PgPoolSpec& spec, std::size_t requests, PgServed served) noexcept;

// What one worker's pool looks like now; down_since is the unix time the outage began (0: up).
struct PgGauges {
    ngx_uint_t connecting = 0;
    ngx_uint_t idle = 0;
    ngx_uint_t busy = 0;
    ngx_uint_t waiting = 0;
    time_t down_since = 0;
};
void publish_pg_gauges(const PgPoolSpec& spec, const PgGauges& gauges) noexcept;

// Bytes held by JSON answers (getchatts, getimages) in this worker; negative to let go.
void add_answer_bytes(ngx_int_t bytes) noexcept;
// A request answered 503 because its answer would have crossed chatterd_answer_memory_max.
void count_answer_over_memory_bound() noexcept;

// Listing requests and the node's cached listings (list_cache.h): answered from the file
// (hit), rebuilt (a file written), queried because another request was rebuilding it or this
// worker's LISTEN connection was down, and answers beyond chatterd_list_cache_max_size.
enum class ListCacheCount { hit, rebuild, query_building, query_unlistened, too_big };
void count_list_cache(ListCacheCount what) noexcept;
// Whether this worker's LISTEN connection to spec's database is up (pg_listen.h).
void publish_listening(const PgPoolSpec& spec, bool up) noexcept;

// What the page shows beside the zone's counters, from the mechanisms that know it (passed in,
// so that metrics depends on none of them).
struct PageGauges {
    off_t list_cache_bytes;  // list_cache_bytes_held()
};

// The page, in Prometheus's text exposition format 0.0.4. False without a zone.
bool render_metrics(const MainConf& conf, const PageGauges& gauges, std::string& page);

}  // namespace chatterd
