// Configuration of the module: what the chatterd_* directives set, per location.
#pragma once

#include "ngx/ngx.h"

namespace chatterd {

class MediaSweep;
class PgPool;

// One database target as configured. Locations with the same settings share one spec, and
// each worker process builds one PgPool per spec in init_process.
struct PgPoolSpec {
    ngx_str_t conninfo;      // NUL-terminated libpq conninfo or URI
    ngx_uint_t size;         // connections per worker
    ngx_uint_t queue;        // requests that may wait for a free connection
    ngx_msec_t timeout;      // connect + query deadline
    ngx_msec_t backoff_max;  // longest wait between connect attempts to a database that is down
    PgPool* pool;            // this worker's pool, or null before init_process
    ngx_uint_t index;        // its place in MainConf's pool_specs (the status page's pool label)
    bool lists_cached;       // a getchatts/getimages location with chatterd_list_cache on uses it
};

// One media root swept of the files no row names (media_sweep.h), with the database whose
// rows name its files. One per media root directory, however its locations spell it.
struct MediaSweepSpec {
    ngx_str_t media_root;
    dev_t dev;  // the root's identity
    ino_t ino;
    ngx_path_t* quarantine;  // where unnamed files go; emptied a period later (nginx creates it)
    PgPoolSpec* pool_spec;
    ngx_msec_t grace;          // files younger than this are never judged; also the interval
    ngx_uint_t limit;          // chatterd_media_sweep_limit: the most files one round may move
    ngx_msec_t query_timeout;  // chatterd_media_sweep_timeout: each of the sweep's queries
    MediaSweep* sweep;         // worker 0's sweep, or null
};

// The media root of one postimages location, whatever its sweep setting: one directory must
// never hold the files of two databases while one of them is swept.
struct MediaRootUse {
    dev_t dev;
    ino_t ino;
    ngx_str_t path;
    ngx_str_t conninfo;
    bool swept;
};

enum class Endpoint : ngx_uint_t { none, getchatts, postchatt, getimages, postimages, uploads };

// The endpoint's name, as the directive and the log lines spell it.
inline const char* endpoint_name(Endpoint endpoint) {
    static const char* const names[] = {"-",         "getchatts",  "postchatt",
                                        "getimages", "postimages", "uploads"};
    return names[static_cast<ngx_uint_t>(endpoint)];
}

// chatterd_media_metadata: whether location and device identity leave uploaded media.
enum class MediaMetadata : ngx_uint_t { strip, keep };

struct LocConf {
    Endpoint endpoint;
    ngx_str_t pg_conninfo;
    ngx_uint_t pg_pool_size;
    ngx_uint_t pg_queue;
    ngx_msec_t pg_timeout;
    ngx_msec_t pg_backoff_max;
    ngx_str_t media_root;  // without trailing slash
    ngx_str_t media_url;   // with trailing slash
    off_t media_max_size;
    ngx_flag_t media_fsync;  // chatterd_media_fsync: files and their names on disk before the row
    ngx_uint_t media_metadata;       // chatterd_media_metadata: a MediaMetadata
    ngx_msec_t media_sweep;          // chatterd_media_sweep; 0: off
    ngx_str_t media_quarantine;      // chatterd_media_quarantine; empty: "<media_root>.quarantine"
    ngx_uint_t media_sweep_limit;    // chatterd_media_sweep_limit
    ngx_msec_t media_sweep_timeout;  // chatterd_media_sweep_timeout
    ngx_msec_t body_time;      // chatterd_body_time: the longest a whole body may take; 0: off
    ngx_msec_t upload_expiry;  // chatterd_upload_expiry: a resumable upload left this long goes
    ngx_flag_t list_cache;  // chatterd_list_cache: getchatts/getimages answer from the node's file
    PgPoolSpec* pool_spec;  // resolved at merge time for locations that serve an endpoint
};

// The resumable uploads of one media root (ngx/upload_store.h), removed by worker 0 once
// abandoned for expiry (the longest of its uploads locations').
struct UploadExpirySpec {
    ngx_str_t media_root;
    ngx_msec_t expiry;
};

struct MainConf {
    ngx_array_t pool_specs;       // of PgPoolSpec*
    ngx_array_t media_sweeps;     // of MediaSweepSpec*
    ngx_array_t media_roots;      // of MediaRootUse: every postimages location's
    ngx_array_t upload_expiries;  // of UploadExpirySpec: one per uploads location's media root
    ngx_shm_zone_t* status_zone;  // the metrics of every worker (metrics.h)
    size_t answer_memory_max;     // chatterd_answer_memory_max: all answers of a worker; 0: none
    ngx_shm_zone_t* list_cache_zone;  // the cached listings (list_cache.h); null: none cached
    off_t list_cache_max_size;        // chatterd_list_cache_max_size: the largest file cached
};

// An ngx_array_t of T* (MainConf's specs), as a range; empty without an http block.
template <typename T>
struct SpecRange {
    T** first = nullptr;
    T** last = nullptr;
    T** begin() const { return first; }
    T** end() const { return last; }
};

template <typename T>
SpecRange<T> specs_of(ngx_cycle_t* cycle, ngx_array_t MainConf::*array) {
    auto* main = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (main == nullptr) return {};
    auto** elts = static_cast<T**>((main->*array).elts);
    return {elts, elts + (main->*array).nelts};
}

inline LocConf* loc_conf(ngx_http_request_t* r) {
    return static_cast<LocConf*>(ngx_http_get_module_loc_conf(r, ngx_http_chatterd_module));
}

}  // namespace chatterd
