#include "ngx/upload_guard.h"

#include "ngx/upload_store.h"

namespace chatterd {
namespace {

// Whether the path has a segment ".uploads". nginx has already decoded and normalized the URI
// ("%2e", "//", "/./", "/../"), so no other spelling reaches the directory.
bool names_uploads_directory(std::string_view path) {
    constexpr std::string_view segment = "/.uploads";
    static_assert(segment.substr(1) == kUploadsDirectory);
    for (std::size_t at = path.find(segment); at != std::string_view::npos;
         at = path.find(segment, at + 1)) {
        std::size_t end = at + segment.size();
        if (end == path.size() || path[end] == '/') return true;
    }
    return false;
}

ngx_int_t guard(ngx_http_request_t* r) noexcept try {
    auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(
        ngx_http_get_module_loc_conf(r, ngx_http_core_module));
    if (clcf->handler != nullptr || !names_uploads_directory(to_view(r->uri))) return NGX_DECLINED;
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "chatterd: \"%V\" names a directory of partial uploads: 404", &r->uri);
    return NGX_HTTP_NOT_FOUND;
} catch (const std::exception&) {
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace

ngx_int_t upload_guard_configure(ngx_conf_t* cf) noexcept {
    auto* mc =
        static_cast<MainConf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_chatterd_module));
    if (mc->upload_expiries.nelts == 0) return NGX_OK;
    auto* cmcf = static_cast<ngx_http_core_main_conf_t*>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));
    auto* handler = static_cast<ngx_http_handler_pt*>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers));
    if (handler == nullptr) return NGX_ERROR;
    *handler = guard;
    return NGX_OK;
}

}  // namespace chatterd
