// ngx_http_chatterd_module: the directives, their configuration, the worker life cycle and the
// module object. The endpoints themselves live in handlers/, one file each.
#include "ngx/ngx.h"

#include "core/pg_hosts.h"
#include "handlers/handlers.h"
#include "ngx/answer_blocks.h"
#include "ngx/conf.h"
#include "ngx/list_cache.h"
#include "ngx/media_root.h"
#include "ngx/media_sweep.h"
#include "ngx/metrics.h"
#include "ngx/pg_pool.h"
#include "ngx/post_resolver.h"
#include "ngx/rows_json.h"
#include "ngx/upload_expiry.h"
#include "ngx/upload_guard.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <string>

namespace chatterd {
namespace {

struct EndpointEntry {
    ngx_str_t name;
    Endpoint endpoint;
    ngx_http_handler_pt handler;
};

// The directive's endpoints. A new one also needs its file in handlers/ (and in `config`), its
// handler in handlers.h, and its value in conf.h's Endpoint and endpoint_name
// (docs/ARCHITECTURE.md, "A new endpoint").
EndpointEntry endpoints[] = {
    {ngx_string("getchatts"), Endpoint::getchatts, getchatts_handler},
    {ngx_string("postchatt"), Endpoint::postchatt, postchatt_handler},
    {ngx_string("getimages"), Endpoint::getimages, getimages_handler},
    {ngx_string("postimages"), Endpoint::postimages, postimages_handler},
    {ngx_string("uploads"), Endpoint::uploads, uploads_handler},
};

constexpr ngx_uint_t kDefaultPoolSize = 4;
constexpr ngx_uint_t kDefaultQueue = 1024;
constexpr ngx_msec_t kDefaultTimeout = 5000;
// Probes of a database that is down: one within a second of its return, at most two a second
// per worker and pool meanwhile (delays drawn from 0.5 to 1 s; see core/backoff.h).
constexpr ngx_msec_t kDefaultBackoffMax = 1000;
constexpr ngx_msec_t kDefaultMediaSweep = 60 * 60 * 1000;
// A round that finds more unnamed files than this is a sign of the wrong database (a new or
// empty one after a configuration mistake) rather than of lost posts: it moves none.
constexpr ngx_uint_t kDefaultMediaSweepLimit = 1000;
// The sweep's query scans the whole table once per 10,000 files: its deadline only frees the
// pool's connection from a database that stalls, it must never cut a scan of a large table.
constexpr ngx_msec_t kDefaultMediaSweepTimeout = 10 * 60 * 1000;
constexpr size_t kDefaultAnswerMemoryMax = 256 * 1024 * 1024;
constexpr off_t kDefaultMediaMaxSize = 10 * 1024 * 1024;
constexpr ngx_msec_t kDefaultUploadExpiry = 24 * 60 * 60 * 1000;
// A 100,000-row getimages is about 20 MB: the default caches tables five times that size.
constexpr off_t kDefaultListCacheMaxSize = 100 * 1024 * 1024;

// ---- directive setters -------------------------------------------------------------------

char* set_endpoint(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
    auto* lc = static_cast<LocConf*>(conf);
    auto* value = static_cast<ngx_str_t*>(cf->args->elts);
    if (lc->endpoint != Endpoint::none) return const_cast<char*>("is duplicate");
    for (const EndpointEntry& e : endpoints) {
        if (value[1].len == e.name.len
            && ngx_strncmp(value[1].data, e.name.data, e.name.len) == 0) {
            lc->endpoint = e.endpoint;
            auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(
                ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
            clcf->handler = e.handler;
            return NGX_CONF_OK;
        }
    }
    ngx_conf_log_error(
        NGX_LOG_EMERG, cf, 0,
        "unknown chatterd endpoint \"%V\" (getchatts, postchatt, getimages, postimages, uploads)",
        &value[1]);
    return static_cast<char*>(NGX_CONF_ERROR);
}

std::optional<std::string> host_needing_lookup(const PQconninfoOption* options) {
    std::string_view host, hostaddr;
    for (const PQconninfoOption* o = options; o->keyword != nullptr; o++) {
        std::string_view value = o->val ? o->val : "";
        if (std::string_view(o->keyword) == "host") host = value;
        if (std::string_view(o->keyword) == "hostaddr") hostaddr = value;
    }
    return first_host_needing_lookup(host, hostaddr);
}

char* set_conninfo(ngx_conf_t* cf, ngx_command_t* cmd, void* conf) noexcept try {
    char* rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) return rv;
    auto* lc = static_cast<LocConf*>(conf);
    // libpq wants a C string; ngx_conf strings are NUL-terminated by the parser, but be explicit.
    u_char* text = static_cast<u_char*>(ngx_pnalloc(cf->pool, lc->pg_conninfo.len + 1));
    if (text == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    *ngx_cpymem(text, lc->pg_conninfo.data, lc->pg_conninfo.len) = '\0';
    lc->pg_conninfo.data = text;
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(reinterpret_cast<char*>(text), &error);
    if (options == nullptr) {
        OneLine why(error ? error : "out of memory");
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid chatterd_pg conninfo: %*s",
                           why.view().size(), why.view().data());
        PQfreemem(error);
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    std::optional<std::string> name = host_needing_lookup(options);
    PQconninfoFree(options);
    if (name) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "chatterd_pg: host \"%s\" is a name: libpq would look it up with a "
                           "blocking call inside nginx's event loop; give its address with "
                           "hostaddr= (host= may stay, for TLS and Kerberos), or an IP address "
                           "or unix-socket directory in host=",
                           name->c_str());
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    return NGX_CONF_OK;
} catch (const std::exception& e) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "chatterd_pg: %s", e.what());
    return static_cast<char*>(NGX_CONF_ERROR);
}

// A string returned by a directive handler is logged by nginx as "\"<directive>\" directive
// <string>".
char* check_num_bounds(ngx_conf_t* cf, void* post, void* data) noexcept {
    auto* value = static_cast<ngx_uint_t*>(data);
    auto* bounds = static_cast<ngx_conf_num_bounds_t*>(post);
    if (*value >= static_cast<ngx_uint_t>(bounds->low)
        && *value <= static_cast<ngx_uint_t>(bounds->high))
        return NGX_CONF_OK;
    auto* message = static_cast<u_char*>(ngx_pnalloc(cf->pool, 64));
    if (message == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    ngx_sprintf(message, "must be between %i and %i%Z", bounds->low, bounds->high);
    return reinterpret_cast<char*>(message);
}

char* set_status(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
    auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(
        ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    if (static_cast<LocConf*>(conf)->endpoint != Endpoint::none || clcf->handler != nullptr) {
        return const_cast<char*>("needs a location of its own");
    }
    clcf->handler = status_handler;
    return NGX_CONF_OK;
}

ngx_conf_num_bounds_t pool_bounds = {check_num_bounds, 1, 1000};
ngx_conf_num_bounds_t queue_bounds = {check_num_bounds, 0, 1000000};
ngx_conf_num_bounds_t sweep_limit_bounds = {check_num_bounds, 1, 100000000};

char* check_positive_msec(ngx_conf_t*, void*, void* data) noexcept {
    if (*static_cast<ngx_msec_t*>(data) == 0) return const_cast<char*>("must be greater than 0");
    return NGX_CONF_OK;
}
ngx_conf_post_t positive_msec = {check_positive_msec};

char* check_positive_size(ngx_conf_t*, void*, void* data) noexcept {
    if (*static_cast<off_t*>(data) <= 0) return const_cast<char*>("must be greater than 0");
    return NGX_CONF_OK;
}
ngx_conf_post_t positive_size = {check_positive_size};

ngx_conf_enum_t media_metadata_policies[] = {
    {ngx_string("strip"), static_cast<ngx_uint_t>(MediaMetadata::strip)},
    {ngx_string("keep"), static_cast<ngx_uint_t>(MediaMetadata::keep)},
    {ngx_null_string, 0},
};

char* set_media_root(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
    auto* lc = static_cast<LocConf*>(conf);
    auto* value = static_cast<ngx_str_t*>(cf->args->elts);
    if (lc->media_root.data != nullptr) return const_cast<char*>("is duplicate");
    ngx_str_t path = value[1];
    if (path.len == 0) return const_cast<char*>("must name a directory");
    while (path.len > 1 && path.data[path.len - 1] == '/') path.len--;
    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK)
        return static_cast<char*>(NGX_CONF_ERROR);
    struct stat st;
    if (stat(reinterpret_cast<char*>(path.data), &st) != 0 || !S_ISDIR(st.st_mode)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "chatterd_media_root \"%V\" is not a directory", &path);
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    lc->media_root = path;
    return NGX_CONF_OK;
}

char* set_media_quarantine(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
    auto* lc = static_cast<LocConf*>(conf);
    auto* value = static_cast<ngx_str_t*>(cf->args->elts);
    if (lc->media_quarantine.data != nullptr) return const_cast<char*>("is duplicate");
    ngx_str_t path = value[1];
    while (path.len > 1 && path.data[path.len - 1] == '/') path.len--;
    if (path.len == 0 || to_view(path) == "/") return const_cast<char*>("must name a directory");
    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK)
        return static_cast<char*>(NGX_CONF_ERROR);
    // NUL-terminated at its length: nginx creates it by that name (ngx_create_paths).
    u_char* text = static_cast<u_char*>(ngx_pnalloc(cf->pool, path.len + 1));
    if (text == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    *ngx_cpymem(text, path.data, path.len) = '\0';
    lc->media_quarantine = {path.len, text};
    return NGX_CONF_OK;
}

char* set_media_url(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
    auto* lc = static_cast<LocConf*>(conf);
    auto* value = static_cast<ngx_str_t*>(cf->args->elts);
    if (lc->media_url.data != nullptr) return const_cast<char*>("is duplicate");
    std::string_view url = to_view(value[1]);
    bool absolute = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
    if (!absolute && (url.empty() || url[0] != '/')) {
        ngx_conf_log_error(
            NGX_LOG_EMERG, cf, 0,
            "chatterd_media_url \"%V\" must start with \"/\", \"http://\" or \"https://\"",
            &value[1]);
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    bool slash = url.back() == '/';
    u_char* text = static_cast<u_char*>(ngx_pnalloc(cf->pool, url.size() + 1));
    if (text == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    u_char* end = ngx_cpymem(text, url.data(), url.size());
    if (!slash) *end++ = '/';
    lc->media_url.data = text;
    lc->media_url.len = end - text;
    return NGX_CONF_OK;
}

// A time greater than 0, or "off" (0): chatterd_media_sweep, chatterd_body_time.
char* set_msec_or_off(ngx_conf_t* cf, ngx_command_t* cmd, void* conf) noexcept {
    auto& msec = *reinterpret_cast<ngx_msec_t*>(static_cast<char*>(conf) + cmd->offset);
    auto* value = static_cast<ngx_str_t*>(cf->args->elts);
    if (msec != NGX_CONF_UNSET_MSEC) return const_cast<char*>("is duplicate");
    if (to_view(value[1]) == "off") {
        msec = 0;
        return NGX_CONF_OK;
    }
    ngx_msec_t time = ngx_parse_time(&value[1], 0);
    if (time == static_cast<ngx_msec_t>(NGX_ERROR) || time == 0) {
        return const_cast<char*>("takes a time greater than 0, or \"off\"");
    }
    msec = time;
    return NGX_CONF_OK;
}

ngx_command_t commands[] = {
    {ngx_string("chatterd"), NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_endpoint,
     NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("chatterd_status"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, set_status,
     NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("chatterd_pg"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_conninfo,
     NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, pg_conninfo), nullptr},
    {ngx_string("chatterd_pg_pool"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_num_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, pg_pool_size),
     &pool_bounds},
    {ngx_string("chatterd_pg_queue"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_num_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, pg_queue), &queue_bounds},
    {ngx_string("chatterd_pg_timeout"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, pg_timeout),
     &positive_msec},
    {ngx_string("chatterd_pg_backoff_max"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, pg_backoff_max),
     &positive_msec},
    {ngx_string("chatterd_media_root"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_media_root,
     NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("chatterd_media_url"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_media_url,
     NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("chatterd_media_max_size"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_off_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, media_max_size),
     &positive_size},
    {ngx_string("chatterd_answer_memory_max"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_size_slot, NGX_HTTP_MAIN_CONF_OFFSET, offsetof(MainConf, answer_memory_max),
     nullptr},
    {ngx_string("chatterd_media_fsync"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG,
     ngx_conf_set_flag_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, media_fsync), nullptr},
    {ngx_string("chatterd_media_metadata"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_enum_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, media_metadata),
     media_metadata_policies},
    {ngx_string("chatterd_media_sweep"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_msec_or_off,
     NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, media_sweep), nullptr},
    {ngx_string("chatterd_media_quarantine"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     set_media_quarantine, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("chatterd_media_sweep_limit"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_num_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, media_sweep_limit),
     &sweep_limit_bounds},
    {ngx_string("chatterd_media_sweep_timeout"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, media_sweep_timeout),
     &positive_msec},
    {ngx_string("chatterd_body_time"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_msec_or_off,
     NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, body_time), nullptr},
    {ngx_string("chatterd_upload_expiry"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, upload_expiry),
     &positive_msec},
    {ngx_string("chatterd_list_cache"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG,
     ngx_conf_set_flag_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(LocConf, list_cache), nullptr},
    {ngx_string("chatterd_list_cache_max_size"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_off_slot, NGX_HTTP_MAIN_CONF_OFFSET, offsetof(MainConf, list_cache_max_size),
     &positive_size},
    ngx_null_command,
};

// ---- configuration structures ------------------------------------------------------------

void* create_main_conf(ngx_conf_t* cf) noexcept {
    auto* mc = static_cast<MainConf*>(ngx_pcalloc(cf->pool, sizeof(MainConf)));
    if (mc == nullptr || ngx_array_init(&mc->pool_specs, cf->pool, 4, sizeof(PgPoolSpec*)) != NGX_OK
        || ngx_array_init(&mc->media_sweeps, cf->pool, 2, sizeof(MediaSweepSpec*)) != NGX_OK
        || ngx_array_init(&mc->media_roots, cf->pool, 2, sizeof(MediaRootUse)) != NGX_OK
        || ngx_array_init(&mc->upload_expiries, cf->pool, 1, sizeof(UploadExpirySpec)) != NGX_OK)
        return nullptr;
    mc->answer_memory_max = NGX_CONF_UNSET_SIZE;
    mc->list_cache_max_size = NGX_CONF_UNSET;
    return mc;
}

char* init_main_conf(ngx_conf_t*, void* conf) noexcept {
    auto* mc = static_cast<MainConf*>(conf);
    ngx_conf_init_size_value(mc->answer_memory_max, kDefaultAnswerMemoryMax);
    ngx_conf_init_value(mc->list_cache_max_size, kDefaultListCacheMaxSize);
    return NGX_CONF_OK;
}

void* create_loc_conf(ngx_conf_t* cf) noexcept {
    auto* lc = static_cast<LocConf*>(ngx_pcalloc(cf->pool, sizeof(LocConf)));
    if (lc == nullptr) return nullptr;
    lc->endpoint = Endpoint::none;
    lc->pg_pool_size = NGX_CONF_UNSET_UINT;
    lc->pg_queue = NGX_CONF_UNSET_UINT;
    lc->pg_timeout = NGX_CONF_UNSET_MSEC;
    lc->pg_backoff_max = NGX_CONF_UNSET_MSEC;
    lc->media_max_size = NGX_CONF_UNSET;
    lc->media_fsync = NGX_CONF_UNSET;
    lc->media_metadata = NGX_CONF_UNSET_UINT;
    lc->media_sweep = NGX_CONF_UNSET_MSEC;
    lc->media_sweep_limit = NGX_CONF_UNSET_UINT;
    lc->media_sweep_timeout = NGX_CONF_UNSET_MSEC;
    lc->body_time = NGX_CONF_UNSET_MSEC;
    lc->upload_expiry = NGX_CONF_UNSET_MSEC;
    lc->list_cache = NGX_CONF_UNSET;
    return lc;
}

bool same_spec(const PgPoolSpec& spec, const LocConf& lc) {
    return spec.size == lc.pg_pool_size && spec.queue == lc.pg_queue
           && spec.timeout == lc.pg_timeout && spec.backoff_max == lc.pg_backoff_max
           && to_view(spec.conninfo) == to_view(lc.pg_conninfo);
}

// Locations with identical database settings share one pool per worker.
PgPoolSpec* pool_spec_for(ngx_conf_t* cf, const LocConf& lc) {
    auto* mc =
        static_cast<MainConf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_chatterd_module));
    auto** specs = static_cast<PgPoolSpec**>(mc->pool_specs.elts);
    for (ngx_uint_t i = 0; i < mc->pool_specs.nelts; i++) {
        if (same_spec(*specs[i], lc)) return specs[i];
    }
    auto* spec = static_cast<PgPoolSpec*>(ngx_pcalloc(cf->pool, sizeof(PgPoolSpec)));
    auto** slot = static_cast<PgPoolSpec**>(ngx_array_push(&mc->pool_specs));
    if (spec == nullptr || slot == nullptr) return nullptr;
    spec->conninfo = lc.pg_conninfo;
    spec->size = lc.pg_pool_size;
    spec->queue = lc.pg_queue;
    spec->timeout = lc.pg_timeout;
    spec->backoff_max = lc.pg_backoff_max;
    spec->index = mc->pool_specs.nelts - 1;
    *slot = spec;
    return spec;
}

// An [emerg] line about the configuration; what a directive handler returns then.
template <typename... Args>
char* conf_error(ngx_conf_t* cf, ngx_err_t err, const char* fmt, const Args*... args) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, err, fmt, args...);
    return static_cast<char*>(NGX_CONF_ERROR);
}

// A path with its symbolic links resolved; a missing last component is kept as given (nginx
// creates the quarantine later). Empty when even its parent cannot be resolved.
std::string resolved_path(const ngx_str_t& path) {
    std::string text(to_view(path));
    char buf[PATH_MAX];
    if (realpath(text.c_str(), buf) != nullptr) return buf;
    std::size_t slash = text.rfind('/');
    std::string parent = slash == 0 ? "/" : text.substr(0, slash);
    if (realpath(parent.c_str(), buf) == nullptr) return {};
    std::string dir = buf;
    return (dir == "/" ? "" : dir) + text.substr(slash);
}

MainConf* main_conf(ngx_conf_t* cf) {
    return static_cast<MainConf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_chatterd_module));
}

// Whether a directory is the media root of a postimages location, or the quarantine of one:
// quarantined files must never be served, nor taken for another root's.
bool is_media_root(ngx_conf_t* cf, const struct stat& dir) {
    MainConf* mc = main_conf(cf);
    auto* uses = static_cast<MediaRootUse*>(mc->media_roots.elts);
    for (ngx_uint_t i = 0; i < mc->media_roots.nelts; i++) {
        if (uses[i].dev == dir.st_dev && uses[i].ino == dir.st_ino) return true;
    }
    return false;
}

bool is_quarantine(ngx_conf_t* cf, const struct stat& dir) {
    MainConf* mc = main_conf(cf);
    auto** sweeps = static_cast<MediaSweepSpec**>(mc->media_sweeps.elts);
    for (ngx_uint_t i = 0; i < mc->media_sweeps.nelts; i++) {
        struct stat st;
        if (stat(reinterpret_cast<char*>(sweeps[i]->quarantine->name.data), &st) == 0
            && st.st_dev == dir.st_dev && st.st_ino == dir.st_ino)
            return true;
    }
    return false;
}

// The quarantine of a swept root: outside the root (so whatever serves the root never serves
// it), on the root's filesystem (a rename moves a file there, and back), a directory or made one
// by nginx (ngx_create_paths, owned by the workers' user). Its default is "<root>.quarantine",
// beside the root once symbolic links are resolved; a root that is a mount point has no such
// place: then *quarantine stays null (warned: the root is not swept) unless one is configured.
char* quarantine_for(ngx_conf_t* cf, const LocConf& lc, const struct stat& root,
                     ngx_path_t** quarantine) {
    *quarantine = nullptr;
    std::string root_dir = resolved_path(lc.media_root);
    bool by_default = lc.media_quarantine.len == 0;
    ngx_str_t path = lc.media_quarantine;
    if (by_default) {
        std::string name = root_dir + ".quarantine";
        path.len = name.size();
        path.data = static_cast<u_char*>(ngx_pnalloc(cf->pool, path.len + 1));
        if (path.data == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
        *ngx_cpymem(path.data, name.data(), name.size()) = '\0';
    }
    std::string where = resolved_path(path);
    if (where.empty() || root_dir.empty()) {
        return conf_error(cf, ngx_errno,
                          "chatterd_media_quarantine \"%V\": its directory cannot be found", &path);
    }
    if (where == root_dir || where.rfind(root_dir + "/", 0) == 0) {
        return conf_error(cf, 0,
                          "chatterd_media_quarantine \"%V\" is inside chatterd_media_root \"%V\": "
                          "whatever serves the media root would serve the quarantined files",
                          &path, &lc.media_root);
    }
    struct stat st;
    std::string parent = where.substr(0, where.rfind('/'));
    bool exists = stat(where.c_str(), &st) == 0;
    if ((exists && !S_ISDIR(st.st_mode))
        || (!exists && stat(parent.empty() ? "/" : parent.c_str(), &st) != 0)) {
        return conf_error(cf, ngx_errno, "chatterd_media_quarantine \"%V\" is not a directory",
                          &path);
    }
    if (exists && is_media_root(cf, st)) {
        return conf_error(cf, 0, "chatterd_media_quarantine \"%V\" is a media root", &path);
    }
    if (st.st_dev != root.st_dev && by_default) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "chatterd_media_root \"%V\" is not swept: it is a mount point, so its "
                           "default quarantine \"%V\" would be on another filesystem; set "
                           "chatterd_media_quarantine to a directory of its filesystem outside "
                           "it, or \"chatterd_media_sweep off\"",
                           &lc.media_root, &path);
        return NGX_CONF_OK;
    }
    if (st.st_dev != root.st_dev) {
        return conf_error(cf, 0,
                          "chatterd_media_quarantine \"%V\" is not on the filesystem of "
                          "chatterd_media_root \"%V\": files are moved there with a rename",
                          &path, &lc.media_root);
    }
    auto* made = static_cast<ngx_path_t*>(ngx_pcalloc(cf->pool, sizeof(ngx_path_t)));
    if (made == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    made->name = path;
    made->conf_file = cf->conf_file->file.name.data;
    made->line = cf->conf_file->line;
    if (ngx_add_path(cf, &made) != NGX_OK) return static_cast<char*>(NGX_CONF_ERROR);
    *quarantine = made;
    return NGX_CONF_OK;
}

// One media root directory must not hold the files of two databases while either location
// sweeps it: the sweep would take the other database's files for unnamed ones. Directories
// are compared by identity, so that "media/", "./media" or a symbolic link are the same one.
char* check_media_root_use(ngx_conf_t* cf, const LocConf& lc, const struct stat& root) {
    if (is_quarantine(cf, root)) {
        return conf_error(cf, 0, "chatterd_media_root \"%V\" is a media sweep's quarantine",
                          &lc.media_root);
    }
    MainConf* mc = main_conf(cf);
    auto* uses = static_cast<MediaRootUse*>(mc->media_roots.elts);
    bool swept = lc.media_sweep != 0;
    for (ngx_uint_t i = 0; i < mc->media_roots.nelts; i++) {
        const MediaRootUse& use = uses[i];
        if (use.dev != root.st_dev || use.ino != root.st_ino) continue;
        if (to_view(use.conninfo) != to_view(lc.pg_conninfo) && (use.swept || swept)) {
            return conf_error(cf, 0,
                              "chatterd_media_root \"%V\" (the directory of \"%V\") serves two "
                              "databases: the media sweep would remove the files of one as "
                              "unnamed by the other; use one media root per database, or "
                              "\"chatterd_media_sweep off\" in every location of both",
                              &lc.media_root, &use.path);
        }
    }
    auto* use = static_cast<MediaRootUse*>(ngx_array_push(&mc->media_roots));
    if (use == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    *use = {root.st_dev, root.st_ino, lc.media_root, lc.pg_conninfo, swept};
    return NGX_CONF_OK;
}

// Each media root is swept once, against the one database whose rows name its files.
char* add_media_sweep(ngx_conf_t* cf, const LocConf& lc, const struct stat& root) {
    if (lc.media_sweep <= lc.pg_timeout) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chatterd_media_sweep\" must be longer than \"chatterd_pg_timeout\": "
                           "a file younger than a post's deadline may still get its row");
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    MainConf* mc = main_conf(cf);
    auto** sweeps = static_cast<MediaSweepSpec**>(mc->media_sweeps.elts);
    for (ngx_uint_t i = 0; i < mc->media_sweeps.nelts; i++) {
        MediaSweepSpec& sweep = *sweeps[i];
        if (sweep.dev != root.st_dev || sweep.ino != root.st_ino) continue;
        // Without a quarantine of its own, another spelling of the root shares the first's.
        ngx_path_t* quarantine = sweep.quarantine;
        char* rv =
            lc.media_quarantine.len == 0 ? NGX_CONF_OK : quarantine_for(cf, lc, root, &quarantine);
        if (rv != NGX_CONF_OK) return rv;
        if (sweep.quarantine != quarantine) {
            return conf_error(cf, 0,
                              "chatterd_media_root \"%V\" has two quarantines: \"%V\" here, and "
                              "\"%V\" where it is also swept",
                              &lc.media_root, &quarantine->name, &sweep.quarantine->name);
        }
        // The most careful of the locations' settings.
        sweep.grace = ngx_max(sweep.grace, lc.media_sweep);
        sweep.limit = ngx_min(sweep.limit, lc.media_sweep_limit);
        sweep.query_timeout = ngx_max(sweep.query_timeout, lc.media_sweep_timeout);
        return NGX_CONF_OK;
    }
    ngx_path_t* quarantine;
    char* rv = quarantine_for(cf, lc, root, &quarantine);
    if (rv != NGX_CONF_OK || quarantine == nullptr) return rv;
    auto* sweep = static_cast<MediaSweepSpec*>(ngx_pcalloc(cf->pool, sizeof(MediaSweepSpec)));
    auto** slot = static_cast<MediaSweepSpec**>(ngx_array_push(&mc->media_sweeps));
    if (sweep == nullptr || slot == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    sweep->media_root = lc.media_root;
    sweep->dev = root.st_dev;
    sweep->ino = root.st_ino;
    sweep->quarantine = quarantine;
    sweep->pool_spec = lc.pool_spec;
    sweep->grace = lc.media_sweep;
    sweep->limit = lc.media_sweep_limit;
    sweep->query_timeout = lc.media_sweep_timeout;
    *slot = sweep;
    return NGX_CONF_OK;
}

// A postimages location's media root: its identity checked against every other one, and its
// sweep.
char* add_media_root(ngx_conf_t* cf, const LocConf& lc) noexcept try {
    struct stat root;
    std::string path(to_view(lc.media_root));
    if (stat(path.c_str(), &root) != 0 || !S_ISDIR(root.st_mode)) {
        return conf_error(cf, ngx_errno, "chatterd_media_root \"%V\" is not a directory",
                          &lc.media_root);
    }
    char* rv = check_media_root_use(cf, lc, root);
    if (rv != NGX_CONF_OK || lc.media_sweep == 0) return rv;
    return add_media_sweep(cf, lc, root);
} catch (const std::exception& e) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "chatterd_media_root: %s", e.what());
    return static_cast<char*>(NGX_CONF_ERROR);
}

// An uploads location's media root, expired by worker 0 after the longest of its locations'
// chatterd_upload_expiry.
char* add_upload_expiry(ngx_conf_t* cf, const LocConf& lc) {
    MainConf* mc = main_conf(cf);
    auto* specs = static_cast<UploadExpirySpec*>(mc->upload_expiries.elts);
    for (ngx_uint_t i = 0; i < mc->upload_expiries.nelts; i++) {
        if (to_view(specs[i].media_root) != to_view(lc.media_root)) continue;
        specs[i].expiry = ngx_max(specs[i].expiry, lc.upload_expiry);
        return NGX_CONF_OK;
    }
    auto* spec = static_cast<UploadExpirySpec*>(ngx_array_push(&mc->upload_expiries));
    if (spec == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    *spec = {lc.media_root, lc.upload_expiry};
    return NGX_CONF_OK;
}

char* merge_loc_conf(ngx_conf_t* cf, void* parent_conf, void* child_conf) noexcept {
    auto* prev = static_cast<LocConf*>(parent_conf);
    auto* conf = static_cast<LocConf*>(child_conf);
    ngx_conf_merge_str_value(conf->pg_conninfo, prev->pg_conninfo, "");
    ngx_conf_merge_uint_value(conf->pg_pool_size, prev->pg_pool_size, kDefaultPoolSize);
    ngx_conf_merge_uint_value(conf->pg_queue, prev->pg_queue, kDefaultQueue);
    ngx_conf_merge_msec_value(conf->pg_timeout, prev->pg_timeout, kDefaultTimeout);
    ngx_conf_merge_msec_value(conf->pg_backoff_max, prev->pg_backoff_max, kDefaultBackoffMax);
    ngx_conf_merge_str_value(conf->media_root, prev->media_root, "");
    ngx_conf_merge_str_value(conf->media_url, prev->media_url, "/media/");
    ngx_conf_merge_off_value(conf->media_max_size, prev->media_max_size, kDefaultMediaMaxSize);
    ngx_conf_merge_value(conf->media_fsync, prev->media_fsync, 1);
    ngx_conf_merge_uint_value(conf->media_metadata, prev->media_metadata,
                              static_cast<ngx_uint_t>(MediaMetadata::strip));
    ngx_conf_merge_msec_value(conf->media_sweep, prev->media_sweep, kDefaultMediaSweep);
    ngx_conf_merge_str_value(conf->media_quarantine, prev->media_quarantine, "");
    ngx_conf_merge_uint_value(conf->media_sweep_limit, prev->media_sweep_limit,
                              kDefaultMediaSweepLimit);
    ngx_conf_merge_msec_value(conf->media_sweep_timeout, prev->media_sweep_timeout,
                              kDefaultMediaSweepTimeout);
    ngx_conf_merge_msec_value(conf->body_time, prev->body_time, 0);
    ngx_conf_merge_msec_value(conf->upload_expiry, prev->upload_expiry, kDefaultUploadExpiry);
    ngx_conf_merge_value(conf->list_cache, prev->list_cache, 1);

    if (conf->endpoint == Endpoint::none) return NGX_CONF_OK;
    if (conf->endpoint == Endpoint::uploads) {
        // Uploads live on disk only: no database.
        if (conf->media_root.len != 0) return add_upload_expiry(cf, *conf);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chatterd uploads\" needs \"chatterd_media_root\" to be set");
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    if (conf->pg_conninfo.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"chatterd\" needs \"chatterd_pg\" to be set");
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    if (conf->endpoint == Endpoint::postimages && conf->media_root.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chatterd postimages\" needs \"chatterd_media_root\" to be set");
        return static_cast<char*>(NGX_CONF_ERROR);
    }
    conf->pool_spec = pool_spec_for(cf, *conf);
    if (conf->pool_spec == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    bool listing = conf->endpoint == Endpoint::getchatts || conf->endpoint == Endpoint::getimages;
    if (listing && conf->list_cache) conf->pool_spec->lists_cached = true;
    if (conf->endpoint == Endpoint::postimages) return add_media_root(cf, *conf);
    return NGX_CONF_OK;
}

ngx_int_t postconfiguration(ngx_conf_t* cf) noexcept {
    ngx_int_t rc = metrics_configure(cf);
    if (rc == NGX_OK) rc = upload_guard_configure(cf);
    return rc == NGX_OK ? list_cache_configure(cf) : rc;
}

ngx_http_module_t module_ctx = {
    nullptr,            // preconfiguration
    postconfiguration,  // postconfiguration
    create_main_conf,   // create main configuration
    init_main_conf,     // init main configuration
    nullptr,            // create server configuration
    nullptr,            // merge server configuration
    create_loc_conf,    // create location configuration
    merge_loc_conf,     // merge location configuration
};

// Pools belong to worker processes: created here, never in the master, whose descriptors
// every worker would inherit.
ngx_int_t init_process(ngx_cycle_t* cycle) noexcept {
    auto* mc = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (mc != nullptr) RowsJson::bound_worker_memory(mc->answer_memory_max);
    // The gauge slot first: the pools publish theirs as they start.
    ngx_int_t rc = metrics_start(cycle);
    if (rc == NGX_OK) rc = pg_pools_start(cycle);
    if (rc == NGX_OK) rc = upload_expiry_start(cycle);
    if (rc == NGX_OK) rc = list_cache_start(cycle);
    return rc == NGX_OK ? media_sweeps_start(cycle) : rc;
}
void exit_process(ngx_cycle_t* cycle) noexcept {
    upload_expiry_stop();
    media_sweeps_stop(cycle);  // before the pools its queries run on
    post_resolvers_stop();     // likewise
    list_cache_stop();
    pg_pools_stop(cycle);
    release_answer_blocks();
    close_media_roots();
    metrics_stop();
}

}  // namespace
}  // namespace chatterd

ngx_module_t ngx_http_chatterd_module = {
    NGX_MODULE_V1,
    &chatterd::module_ctx,   // module context
    chatterd::commands,      // module directives
    NGX_HTTP_MODULE,         // module type
    nullptr,                 // init master
    nullptr,                 // init module
    chatterd::init_process,  // init process
    nullptr,                 // init thread
    nullptr,                 // exit thread
    chatterd::exit_process,  // exit process
    nullptr,                 // exit master
    NGX_MODULE_V1_PADDING,
};
