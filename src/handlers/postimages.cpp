// POST /postimages: a multipart form with username, message and optional image and video ->
// the media files under their final names, one row pointing at them, answered {}.
#include "handlers/handlers.h"
#include "handlers/insert_chatt.h"
#include "handlers/postimages_form.h"

#include "core/http_host.h"
#include "core/media_name.h"
#include "ngx/conf.h"
#include "ngx/reply.h"
#include "ngx/upload_claim.h"

namespace chatterd {
namespace {

// The host of a relative chatterd_media_url, as the reference takes it: the Host header, or
// the request line's host, or for HTTP/1.0 without either, the server's name.
std::string_view request_host(ngx_http_request_t* r) {
    if (r->headers_in.host != nullptr) return to_view(r->headers_in.host->value);
    if (r->headers_in.server.len > 0) return to_view(r->headers_in.server);
    auto* cscf = static_cast<ngx_http_core_srv_conf_t*>(
        ngx_http_get_module_srv_conf(r, ngx_http_core_module));
    return to_view(cscf->server_name);
}

// The base of media URLs: chatterd_media_url when absolute, else the request's scheme and
// host followed by it. Every app user loads these URLs, so a host that is not plainly one
// ("a@evil.example", "\"><script>") is refused rather than stored.
std::optional<std::string> media_base_url(ngx_http_request_t* r) {
    std::string_view configured = to_view(loc_conf(r)->media_url);
    if (configured[0] != '/') return std::string(configured);
    std::string_view host = request_host(r);
    if (!valid_http_host(host)) {
        ngx_log_error(
            NGX_LOG_INFO, r->connection->log, 0,
            "chatterd: postimages: Host \"%*s\" is not a host media URLs can be built from",
            host.size(), host.data());
        return std::nullopt;
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

// One postimages request: its form as it arrives, then its row.
class Postimages final : public FormReceiver {
public:
    Postimages(ngx_http_request_t* r, std::string_view boundary, std::string base_url)
        : FormReceiver(r, boundary), base_url_(std::move(base_url)) {}
    ~Postimages() override {
        if (insert_.abandon({file(form().image), file(form().video)})) remove_uploads();
    }

private:
    void on_form(ReceivedForm& form) override;
    const char* claim_uploads(ReceivedForm& form, bool& failed);
    void remove_uploads();
    const char* publish(std::optional<ReceivedMedia>& media, bool& failed);
    static ngx_int_t answer_and_keep_media(ngx_http_request_t* r, const PgOutcome& outcome);
    static MediaFile* file(std::optional<ReceivedMedia>& media) {
        return media ? &media->file : nullptr;
    }

    std::string base_url_;
    ChattInsert insert_;
    std::optional<UploadClaim> image_upload_;  // imageupload's upload, locked till settled
    std::optional<UploadClaim> video_upload_;
};

void Postimages::on_form(ReceivedForm& form) {
    ngx_http_request_t* r = request();
    bool failed = false;
    try {
        if (const char* refusal = claim_uploads(form, failed)) {
            form.discard_media();
            ngx_http_finalize_request(r, send_failure(r, Failure::unprocessable, refusal));
            return;
        }
        ChattRow row{pool_c_string(r, *form.username), pool_c_string(r, *form.message),
                     publish(form.image, failed), publish(form.video, failed)};
        if (!failed && row.username != nullptr && row.message != nullptr) {
            insert_.start(r, row, answer_and_keep_media);
            ngx_http_finalize_request(r, NGX_DONE);
            return;
        }
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postimages: %s", e.what());
    }
    form.discard_media();  // an image named before the video failed must not stay servable
    ngx_http_finalize_request(r, send_failure(r, Failure::internal, "Cannot store media"));
}

// The finished uploads the form names become its image and video, unpublished. Returns why
// one cannot (the 422's text), or null; failed: a disk error.
const char* Postimages::claim_uploads(ReceivedForm& form, bool& failed) {
    struct Use {
        std::optional<std::string>& url;
        std::optional<ReceivedMedia>& media;
        std::optional<UploadClaim>& claim;
        MediaField field;
        const char* name;
    };
    ngx_log_t* log = request()->connection->log;
    const LocConf& conf = *loc_conf(request());
    for (const Use& use :
         {Use{form.imageupload, form.image, image_upload_, MediaField::image, "image"},
          Use{form.videoupload, form.video, video_upload_, MediaField::video, "video"}}) {
        if (!use.url) continue;
        UploadClaim& claim = use.claim.emplace(log);
        switch (claim.claim(to_view(conf.media_root), *use.url, conf.upload_expiry, use.field,
                            use.name)) {
        case UploadClaim::Result::refused: return claim.refusal();
        case UploadClaim::Result::failed: failed = true; return nullptr;
        case UploadClaim::Result::claimed: break;
        }
        use.media.emplace(log);
        use.media->type = claim.type();
        if (!claim.take_into(use.media->file, scrub_policy(conf))) {
            failed = true;
            return nullptr;
        }
    }
    return nullptr;
}

// The post's row is, or may be, stored: the uploads it took over are used up.
void Postimages::remove_uploads() {
    for (std::optional<UploadClaim>* claim : {&image_upload_, &video_upload_}) {
        if (*claim) (*claim)->remove();
    }
}

// Gives a received file its final name and returns its URL, or null on failure.
const char* Postimages::publish(std::optional<ReceivedMedia>& media, bool& failed) {
    if (!media || failed) return nullptr;
    std::string name = random_media_name(*form().username, media->type.extension);
    if (!media->file.publish(name, loc_conf(request())->media_fsync)) {
        failed = true;
        return nullptr;
    }
    const char* url = pool_c_string(request(), base_url_ + name);
    failed = url == nullptr;
    return url;
}

// Files whose row was not stored are removed before the answer. When nobody knows yet whether
// the row was stored, its files are kept: a row must never name a missing file. The post is
// then settled once the database answers (ngx/post_resolver.h).
ngx_int_t Postimages::answer_and_keep_media(ngx_http_request_t* r, const PgOutcome& outcome) {
    auto& post = body_stream<Postimages>(r);
    ReceivedForm& form = post.form();
    switch (post.insert_.settle(r, outcome, {file(form.image), file(form.video)})) {
    case InsertFate::stored:
        for (std::optional<ReceivedMedia>* media : {&form.image, &form.video}) {
            if (*media) (*media)->file.commit();
        }
        post.remove_uploads();
        break;
    case InsertFate::not_stored:  // the uploads stay: the client may post them again
        form.discard_media();
        break;
    // Removed now rather than by the resolver: a retry with the same upload could store a
    // second row if the first was stored; the client sends the bytes again, as after a 503
    // for a media part.
    case InsertFate::unknown: post.remove_uploads(); break;
    }
    return insert_answer(r, outcome);
}

}  // namespace

ngx_int_t postimages_handler(ngx_http_request_t* r) noexcept try {
    ngx_int_t rc = require_method(r, NGX_HTTP_POST);
    if (rc != NGX_DECLINED) return rc;
    std::optional<std::string> base_url = media_base_url(r);
    if (!base_url) return send_failure_unread(r, Failure::invalid_host);
    std::optional<std::string_view> boundary = form_boundary(r);
    if (!boundary) return send_failure_unread(r, Failure::unprocessable);
    auto* request = make_body_stream<Postimages>(r, r, *boundary, std::move(*base_url));
    return request != nullptr ? request->start() : NGX_HTTP_INTERNAL_SERVER_ERROR;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postimages: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
