// One cached answer per listing (getchatts, getimages) and database, shared by the node's
// workers, kept fresh by PostgreSQL's LISTEN/NOTIFY.
//   The answer is a file in the location's client_body_temp_path, written once by the worker
//   whose request ran the query (the whole JSON is in memory then: it is written and renamed
//   into place) and sent by every worker with a file buffer (sendfile). Replacing it unlinks
//   the old name: requests still sending it keep their descriptor.
//   A small shared zone describes each file: the version of the databases it was built at,
//   its ETag, name and size, and which worker is building the next one.
//   The version is the node's count of changes: bumped by every notification a worker's LISTEN
//   connection hears (schema.sql's trigger), every LISTEN that (re)connects (notifications may
//   have been lost meanwhile), and every post this node answers 200 (before the 200: a listing
//   asked for after it, on any worker, queries).
//   A file is served only when built at the current version and only by a worker whose own
//   LISTEN connection is up. Otherwise the request queries as before: one request at a time
//   rebuilds the file, the others never wait for it.
#pragma once

#include "core/etag.h"
#include "ngx/conf.h"

namespace chatterd {

class RowsJson;

// Configuration time (postconfiguration): the zone, sized for the configured pools.
ngx_int_t list_cache_configure(ngx_conf_t* cf) noexcept;
// Worker life cycle: the zone, and the LISTEN connections (ngx/pg_listen.h).
ngx_int_t list_cache_start(ngx_cycle_t* cycle) noexcept;
void list_cache_stop() noexcept;

// Something changed in a database: every cached listing is stale.
void list_cache_changed() noexcept;

// The longest file name the zone holds: a longer client_body_temp_path is not cached (warned).
constexpr std::size_t kListCachePathMax = 512;

// What a listing request does with its cache entry.
struct ListCacheTicket {
    enum class Kind {
        query,  // not cached (off, this worker's LISTEN down, too big, or built elsewhere)
        build,  // the file is stale and this request rebuilds it from its query
        hit,    // the file is current: sent as it is
    };
    Kind kind = Kind::query;
    std::size_t entry = 0;
    ngx_atomic_uint_t version = 0;  // build: the version read before the query
    off_t size = 0;                 // hit
    char etag[EtagHasher::kLength + 1] = {};
    char path[kListCachePathMax] = {};  // hit
};

// Looks r's listing up, and claims the rebuild when it is stale and nobody builds it.
void list_cache_look_up(ngx_http_request_t* r, ListCacheTicket& ticket) noexcept;
// hit: sends the file (or the 304 nginx makes of it). Returns the content handler's code, or
// NGX_DECLINED when the file has gone meanwhile (replaced): then the request queries.
ngx_int_t list_cache_send(ngx_http_request_t* r, const ListCacheTicket& ticket) noexcept;
// build: the query's answer is ready; it becomes the file unless beyond the size bound.
void list_cache_publish(ngx_http_request_t* r, ListCacheTicket& ticket,
                        const RowsJson& json) noexcept;
// build: gives the claim up (the query failed, the client left); idempotent.
void list_cache_abandon(ListCacheTicket& ticket) noexcept;

// The validators of every listing answer: the ETag and "Cache-Control: no-cache". False when
// out of memory.
bool set_listing_validators(ngx_http_request_t* r, std::string_view etag) noexcept;

// The bytes of the published files, for the status page.
off_t list_cache_bytes_held() noexcept;

}  // namespace chatterd
