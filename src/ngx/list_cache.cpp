#include "ngx/list_cache.h"

#include "ngx/metrics.h"
#include "ngx/pg_listen.h"
#include "ngx/reply.h"
#include "ngx/rows_json.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>

namespace chatterd {

namespace {

constexpr std::size_t kListings = 2;  // getchatts, getimages

// One listing of one pool; written under the zone's mutex.
struct Entry {
    ngx_atomic_uint_t built_version;  // the version read before its query
    ngx_uint_t ready;                 // a file is published
    ngx_pid_t builder;                // the worker rebuilding it; 0: none
    off_t size;
    char etag[EtagHasher::kLength + 1];
    char path[kListCachePathMax];
};

struct Shared {
    ngx_atomic_t version;
    ngx_atomic_t generation;  // of file names: never reused while the zone lives
    Entry entries[1];         // pools * kListings
};

std::size_t zone_bytes(std::size_t pools) {
    return sizeof(Shared) + (pools * kListings) * sizeof(Entry);
}

// This worker's view of the zone; null in the master and without listings.
ngx_slab_pool_t* slab = nullptr;
Shared* shared = nullptr;
std::size_t entry_count = 0;

class ZoneLock {
public:
    ZoneLock() { ngx_shmtx_lock(&slab->mutex); }
    ~ZoneLock() { ngx_shmtx_unlock(&slab->mutex); }
    ZoneLock(const ZoneLock&) = delete;
    ZoneLock& operator=(const ZoneLock&) = delete;
};

ngx_int_t init_zone(ngx_shm_zone_t* zone, void* reused) noexcept {
    if (reused != nullptr) {
        zone->data = reused;
        return NGX_OK;
    }
    auto* pool = reinterpret_cast<ngx_slab_pool_t*>(zone->shm.addr);
    std::size_t size = *static_cast<std::size_t*>(zone->data);
    zone->data = ngx_slab_calloc(pool, size);
    return zone->data != nullptr ? NGX_OK : NGX_ERROR;
}

std::size_t listing_of(Endpoint endpoint) {
    return endpoint == Endpoint::getimages ? 1 : 0;
}

bool builder_alive(ngx_pid_t pid) {
    return pid == ngx_pid || kill(pid, 0) == 0 || errno != ESRCH;
}

// "<client_body_temp_path>/chatterd-list-<pool>-<endpoint>-<generation>.json"
bool file_name(ngx_http_request_t* r, ngx_atomic_uint_t generation,
               char (&path)[kListCachePathMax]) {
    auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(
        ngx_http_get_module_loc_conf(r, ngx_http_core_module));
    const LocConf* lc = loc_conf(r);
    const ngx_str_t& dir = clcf->client_body_temp_path->name;
    int n = std::snprintf(path, sizeof(path), "%.*s/chatterd-list-%lu-%s-%lu.json",
                          static_cast<int>(dir.len), reinterpret_cast<const char*>(dir.data),
                          static_cast<unsigned long>(lc->pool_spec->index),
                          endpoint_name(lc->endpoint), static_cast<unsigned long>(generation));
    return n > 0 && static_cast<std::size_t>(n) + 8 < sizeof(path);  // room for ".tmp"
}

// The answer's bytes into path, through a temporary name renamed into place. The worker writes
// into the page cache: one copy of the answer per rebuild, not per request.
bool write_file(ngx_log_t* log, const char* path, const RowsJson& json) {
    std::string temp = std::string(path) + ".tmp";
    ngx_fd_t fd =
        ngx_open_file(temp.c_str(), NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, NGX_FILE_DEFAULT_ACCESS);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno, "chatterd: list cache: cannot create \"%s\"",
                      temp.c_str());
        return false;
    }
    bool written = json.each_text([fd](std::string_view text) {
        while (!text.empty()) {
            ssize_t n = write(fd, text.data(), text.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            text.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    });
    ngx_err_t err = written ? 0 : ngx_errno;
    if (ngx_close_file(fd) == NGX_FILE_ERROR && written) {
        written = false;
        err = ngx_errno;
    }
    if (written && ngx_rename_file(temp.c_str(), path) == NGX_FILE_ERROR) {
        written = false;
        err = ngx_errno;
    }
    if (!written) {
        ngx_log_error(NGX_LOG_ERR, log, err, "chatterd: list cache: cannot write \"%s\"", path);
        ngx_delete_file(temp.c_str());
    }
    return written;
}

// Whether nginx's not_modified filter will answer 304 (a subset of its rule: the one tag the
// apps send back): the file need not be opened then.
bool will_not_modify(ngx_http_request_t* r, std::string_view etag) {
    if (r != r->main || r->disable_not_modified) return false;
    const ngx_table_elt_t* inm = r->headers_in.if_none_match;
    if (inm == nullptr || r->headers_in.if_modified_since != nullptr) return false;
    std::string_view value = to_view(inm->value);
    if (value.substr(0, 2) == "W/") value.remove_prefix(2);
    return value == etag;
}

// The file could not be opened: replaced since the look-up (nothing to do), or removed by
// someone else (a cleaner of the temporary directory): then the next request rebuilds it.
void forget_lost_file(const ListCacheTicket& ticket) {
    ZoneLock lock;
    Entry& entry = shared->entries[ticket.entry];
    if (entry.ready && ngx_strcmp(entry.path, ticket.path) == 0) entry.ready = 0;
}

}  // namespace

// ---- life cycle ----------------------------------------------------------------------------

ngx_int_t list_cache_configure(ngx_conf_t* cf) noexcept {
    auto* mc =
        static_cast<MainConf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_chatterd_module));
    bool any = false;
    for (PgPoolSpec* spec : SpecRange<PgPoolSpec>{
             static_cast<PgPoolSpec**>(mc->pool_specs.elts),
             static_cast<PgPoolSpec**>(mc->pool_specs.elts) + mc->pool_specs.nelts}) {
        any = any || spec->lists_cached;
    }
    if (!any) return NGX_OK;
    std::size_t bytes = zone_bytes(mc->pool_specs.nelts);
    ngx_str_t name;
    if (!specs_zone_name(cf, "chatterd_list_cache", sizeof(Entry), name)) return NGX_ERROR;
    auto* size = static_cast<std::size_t*>(ngx_palloc(cf->pool, sizeof(std::size_t)));
    if (size == nullptr) return NGX_ERROR;
    *size = bytes;
    std::size_t zone_size = ngx_align(bytes + 8 * ngx_pagesize, ngx_pagesize);
    mc->list_cache_zone = ngx_shared_memory_add(cf, &name, zone_size, &ngx_http_chatterd_module);
    if (mc->list_cache_zone == nullptr) return NGX_ERROR;
    mc->list_cache_zone->init = init_zone;
    mc->list_cache_zone->data = size;
    return NGX_OK;
}

ngx_int_t list_cache_start(ngx_cycle_t* cycle) noexcept {
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
    auto* mc = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (mc == nullptr || mc->list_cache_zone == nullptr) return NGX_OK;
    slab = reinterpret_cast<ngx_slab_pool_t*>(mc->list_cache_zone->shm.addr);
    shared = static_cast<Shared*>(mc->list_cache_zone->data);
    entry_count = mc->pool_specs.nelts * kListings;
    return pg_listens_start(cycle, list_cache_changed);
}

void list_cache_stop() noexcept {
    pg_listens_stop();
    slab = nullptr;
    shared = nullptr;
    entry_count = 0;
}

void list_cache_changed() noexcept {
    if (shared != nullptr) ngx_atomic_fetch_add(&shared->version, 1);
}

// ---- requests ------------------------------------------------------------------------------

void list_cache_look_up(ngx_http_request_t* r, ListCacheTicket& ticket) noexcept {
    ticket.kind = ListCacheTicket::Kind::query;
    const LocConf* lc = loc_conf(r);
    if (shared == nullptr || !lc->list_cache || lc->pool_spec == nullptr) return;
    ticket.entry = lc->pool_spec->index * kListings + listing_of(lc->endpoint);
    if (ticket.entry >= entry_count) return;
    if (!pg_listening(*lc->pool_spec)) {
        count_list_cache(ListCacheCount::query_unlistened);
        return;
    }
    ZoneLock lock;
    Entry& entry = shared->entries[ticket.entry];
    ngx_atomic_uint_t version = shared->version;
    if (entry.ready && entry.built_version == version) {
        ticket.kind = ListCacheTicket::Kind::hit;
        ticket.size = entry.size;
        ngx_memcpy(ticket.etag, entry.etag, sizeof(ticket.etag));
        ngx_memcpy(ticket.path, entry.path, sizeof(ticket.path));
        return;
    }
    if (entry.builder != 0 && builder_alive(entry.builder)) {
        count_list_cache(ListCacheCount::query_building);
        return;
    }
    entry.builder = ngx_pid;
    ticket.kind = ListCacheTicket::Kind::build;
    ticket.version = version;
}

ngx_int_t list_cache_send(ngx_http_request_t* r, const ListCacheTicket& ticket) noexcept {
    ngx_chain_t* out = nullptr;
    if (!will_not_modify(r, ticket.etag)) {
        ngx_pool_cleanup_t* cleanup =
            ngx_pool_cleanup_add(r->pool, sizeof(ngx_pool_cleanup_file_t));
        auto* b = static_cast<ngx_buf_t*>(ngx_calloc_buf(r->pool));
        auto* file = static_cast<ngx_file_t*>(ngx_pcalloc(r->pool, sizeof(ngx_file_t)));
        out = ngx_alloc_chain_link(r->pool);
        if (cleanup == nullptr || b == nullptr || file == nullptr || out == nullptr)
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_fd_t fd = ngx_open_file(ticket.path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            forget_lost_file(ticket);
            return NGX_DECLINED;
        }
        auto* closer = static_cast<ngx_pool_cleanup_file_t*>(cleanup->data);
        closer->fd = fd;
        closer->name = reinterpret_cast<u_char*>(const_cast<char*>(ticket.path));
        closer->log = r->connection->log;
        cleanup->handler = ngx_pool_cleanup_file;
        file->fd = fd;
        file->name.data = closer->name;
        file->name.len = ngx_strlen(ticket.path);
        file->log = r->connection->log;
        file->directio = 0;
        b->in_file = 1;
        b->file = file;
        b->file_pos = 0;
        b->file_last = ticket.size;
        out->buf = b;
        out->next = nullptr;
    }
    count_list_cache(ListCacheCount::hit);
    if (!set_listing_validators(r, ticket.etag)) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    if (out == nullptr) {
        // nginx's not_modified filter makes it a 304: no body.
        r->headers_out.status = NGX_HTTP_OK;
        r->headers_out.content_length_n = ticket.size;
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->header_only = 1;
        return ngx_http_send_header(r);
    }
    return send_json(r, NGX_HTTP_OK, out, ticket.size);
}

void list_cache_publish(ngx_http_request_t* r, ListCacheTicket& ticket,
                        const RowsJson& json) noexcept try {
    if (ticket.kind != ListCacheTicket::Kind::build) return;
    auto* mc = static_cast<MainConf*>(ngx_http_get_module_main_conf(r, ngx_http_chatterd_module));
    if (json.length() > mc->list_cache_max_size) {
        count_list_cache(ListCacheCount::too_big);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chatterd: list cache: %s's answer (%O bytes) is beyond "
                      "chatterd_list_cache_max_size: not cached",
                      endpoint_name(loc_conf(r)->endpoint), json.length());
        return list_cache_abandon(ticket);
    }
    char path[kListCachePathMax];
    if (!file_name(r, ngx_atomic_fetch_add(&shared->generation, 1), path)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chatterd: list cache: client_body_temp_path is too long a directory "
                      "name for the cache's files: not cached");
        return list_cache_abandon(ticket);
    }
    if (!write_file(r->connection->log, path, json)) return list_cache_abandon(ticket);
    std::string old;
    bool published = false;
    {
        ZoneLock lock;
        Entry& entry = shared->entries[ticket.entry];
        if (entry.builder == ngx_pid) {
            if (entry.ready) old = entry.path;
            entry.built_version = ticket.version;
            entry.ready = 1;
            entry.builder = 0;
            entry.size = json.length();
            // EtagHasher::kLength characters, and the NUL that ends the zone's copy.
            json.etag().copy(entry.etag, EtagHasher::kLength);
            ngx_cpystrn(reinterpret_cast<u_char*>(entry.path), reinterpret_cast<u_char*>(path),
                        sizeof(entry.path));
            published = true;
        }
    }
    ticket.kind = ListCacheTicket::Kind::query;
    // Requests sending the old file keep their descriptor.
    if (!old.empty()) ngx_delete_file(old.c_str());
    if (!published) {
        ngx_delete_file(path);
        return;
    }
    count_list_cache(ListCacheCount::rebuild);
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "chatterd: list cache: \"%s\" published at version %uA, %O bytes", path,
                   ticket.version, json.length());
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: list cache: %s", e.what());
    list_cache_abandon(ticket);
}

void list_cache_abandon(ListCacheTicket& ticket) noexcept {
    if (ticket.kind != ListCacheTicket::Kind::build || shared == nullptr) return;
    ticket.kind = ListCacheTicket::Kind::query;
    ZoneLock lock;
    Entry& entry = shared->entries[ticket.entry];
    if (entry.builder == ngx_pid) entry.builder = 0;
}

bool set_listing_validators(ngx_http_request_t* r, std::string_view etag) noexcept {
    ngx_table_elt_t* tag = add_header(r, "ETag", etag);
    if (tag == nullptr || add_header(r, "Cache-Control", "no-cache") == nullptr) return false;
    r->headers_out.etag = tag;
    return true;
}

off_t list_cache_bytes_held() noexcept {
    if (shared == nullptr) return 0;
    off_t bytes = 0;
    ZoneLock lock;
    for (std::size_t i = 0; i < entry_count; i++) {
        if (shared->entries[i].ready) bytes += shared->entries[i].size;
    }
    return bytes;
}

}  // namespace chatterd
