// POST /postimages: a multipart form with username, message and optional image and video ->
// the media files under their final names, one row pointing at them, answered {}.
#include "handlers/handlers.h"
#include "handlers/insert_chatt.h"

#include "core/media_name.h"
#include "ngx/conf.h"
#include "ngx/reply.h"
#include "ngx/upload.h"

namespace chatterd {
namespace {

// The base of media URLs: chatterd_media_url when absolute, else the request's scheme and
// Host (as the reference builds it) followed by chatterd_media_url.
std::string media_base_url(ngx_http_request_t* r) {
    std::string_view configured = to_view(loc_conf(r)->media_url);
    if (configured[0] != '/') return std::string(configured);
    std::string_view host;
    if (r->headers_in.host != nullptr) {
        host = to_view(r->headers_in.host->value);
    } else if (r->headers_in.server.len > 0) {
        host = to_view(r->headers_in.server);
    } else {
        auto* cscf = static_cast<ngx_http_core_srv_conf_t*>(
            ngx_http_get_module_srv_conf(r, ngx_http_core_module));
        host = to_view(cscf->server_name);
    }
#if (NGX_HTTP_SSL)
    std::string_view scheme = r->connection->ssl ? "https://" : "http://";
#else
    std::string_view scheme = "http://";
#endif
    std::string base;
    base.reserve(scheme.size() + host.size() + configured.size());
    base.append(scheme).append(host).append(configured);
    return base;
}

// Gives a received file its final name and returns its URL, or null on failure.
const char* publish(ngx_http_request_t* r, std::optional<ReceivedMedia>& media,
                    const std::string& username, const std::string& base_url, bool& failed) {
    if (!media || failed) return nullptr;
    std::string name = random_media_name(username, media->type.extension);
    if (!media->file.publish(name)) {
        failed = true;
        return nullptr;
    }
    const char* url = pool_c_string(r, base_url + name);
    failed = url == nullptr;
    return url;
}

// Files whose row was not stored are removed before the answer. When nobody knows yet whether
// the row was stored, its files are kept: a row must never name a missing file. If the row
// never appears, the media sweep removes them (media_sweep.h).
ngx_int_t answer_and_keep_media(ngx_http_request_t* r, const PgOutcome& outcome) {
    InsertFate fate = insert_fate(outcome);
    ReceivedForm& form = received_form(r);
    for (std::optional<ReceivedMedia>* media : {&form.image, &form.video}) {
        if (!*media) continue;
        if (fate == InsertFate::not_stored) {
            (*media)->file.discard();
            continue;
        }
        (*media)->file.commit();
        if (fate == InsertFate::unknown) {
            const std::string& name = (*media)->file.name();
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "chatterd: postimages: whether the row was stored is unknown (%s); "
                          "%*s is kept until the media sweep finds no row for it",
                          outcome.reason, name.size(), name.data());
        }
    }
    return insert_answer(r, outcome);
}

void store_chatt(ngx_http_request_t* r, ReceivedForm& form) noexcept try {
    const std::string base_url = media_base_url(r);
    bool failed = false;
    ChattRow row{pool_c_string(r, *form.username), pool_c_string(r, *form.message),
                 publish(r, form.image, *form.username, base_url, failed),
                 publish(r, form.video, *form.username, base_url, failed)};
    if (failed || row.username == nullptr || row.message == nullptr) {
        ngx_http_finalize_request(r, send_failure(r, Failure::internal, "Cannot store media"));
        return;
    }
    insert_chatt(r, row, answer_and_keep_media);
    ngx_http_finalize_request(r, NGX_DONE);
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postimages: %s", e.what());
    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}

}  // namespace

ngx_int_t postimages_handler(ngx_http_request_t* r) noexcept {
    ngx_int_t rc = require_method(r, NGX_HTTP_POST);
    if (rc != NGX_DECLINED) return rc;
    return receive_form(r, store_chatt);
}

}  // namespace chatterd
