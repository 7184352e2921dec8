#include "ngx/upload.h"

#include "core/multipart.h"
#include "ngx/conf.h"
#include "ngx/metrics.h"
#include "ngx/reply.h"

#include <array>
#include <new>

namespace chatterd {
namespace {

// username and message are varchar(255): 255 characters are at most 1020 UTF-8 bytes. A field
// far beyond that can never be stored, so it is refused before it costs memory.
constexpr std::size_t kMaxTextFieldBytes = 64 * 1024;

// What one request's form has received so far. Lives in request-pool cleanup storage, so its
// media files are closed and removed with the request whatever ends it.
class FormReceiver final : public MultipartSink {
public:
    FormReceiver(ngx_http_request_t* r, std::string_view boundary, FormHandler on_form)
        : r_(r), conf_(*loc_conf(r)), parser_(boundary, *this), on_form_(on_form) {}

    // Feeds what nginx has read so far to the parser and asks nginx for more, until the body
    // ends (then the form handler runs) or something is wrong (then the answer is sent).
    void pump();
    ReceivedForm& form() { return form_; }

    bool on_part_begin(const PartHeaders& part) override;
    bool on_part_data(std::string_view bytes) override;
    bool on_part_end() override;

private:
    enum class Role { ignored, text, media };

    bool consume(ngx_chain_t* bufs);
    void finish_body();
    bool begin_media(std::optional<ReceivedMedia>& slot, MediaField field, const PartHeaders& part);
    bool take_media_bytes(std::string_view bytes);
    bool identify_media();
    bool reject(Failure failure);
    void refuse(Failure failure);
    void answer(ngx_int_t rc);

    ngx_http_request_t* r_;
    const LocConf& conf_;
    MultipartParser parser_;
    FormHandler on_form_;
    ReceivedForm form_;

    Role role_ = Role::ignored;
    std::string_view part_name_;  // "username", "message", "image" or "video"
    std::string* text_ = nullptr;
    ReceivedMedia* media_ = nullptr;
    MediaField media_field_ = MediaField::image;
    std::array<char, kSniffBytes> head_{};  // a media part's first bytes, for sniffing
    std::size_t head_size_ = 0;
    bool identified_ = false;

    std::optional<Failure> failure_;  // why a sink callback stopped the parser
    bool finished_ = false;           // answered, or handed to the form handler
};

FormReceiver* receiver_of(ngx_http_request_t* r) {
    return static_cast<FormReceiver*>(ngx_http_get_module_ctx(r, ngx_http_chatterd_module));
}

void pump_body(ngx_http_request_t* r) noexcept {
    try {
        receiver_of(r)->pump();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postimages: %s", e.what());
        r->read_event_handler = ngx_http_block_reading;
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}

// ---- reading the body ----------------------------------------------------------------------

void FormReceiver::pump() {
    if (finished_) return;
    ngx_http_request_body_t* rb = r_->request_body;
    for (;;) {
        ngx_chain_t* bufs = rb->bufs;
        rb->bufs = nullptr;
        if (!consume(bufs)) return;
        if (!r_->reading_body) return finish_body();
        ngx_int_t rc = ngx_http_read_unbuffered_request_body(r_);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            // nginx logs a client that went away and a chunked body over client_max_body_size,
            // but not a body that stopped arriving.
            if (rc == NGX_HTTP_REQUEST_TIME_OUT) {
                ngx_log_error(NGX_LOG_INFO, r_->connection->log, 0,
                              "chatterd: postimages: no body data within client_body_timeout");
            }
            return answer(rc);
        }
        if (rb->bufs == nullptr && r_->reading_body) return;  // wait for the next read event
    }
}

// Every buffer is marked consumed, so nginx can reuse it for the next bytes.
bool FormReceiver::consume(ngx_chain_t* bufs) {
    for (ngx_chain_t* cl = bufs; cl != nullptr; cl = cl->next) {
        ngx_buf_t* b = cl->buf;
        if (b->in_file) {
            ngx_log_error(NGX_LOG_ALERT, r_->connection->log, 0,
                          "chatterd: request body unexpectedly buffered to a file");
            answer(NGX_HTTP_INTERNAL_SERVER_ERROR);
            return false;
        }
        std::string_view span(reinterpret_cast<const char*>(b->pos), b->last - b->pos);
        b->pos = b->last;
        count_upload_bytes(Endpoint::postimages, span.size());
        if (span.empty()) continue;
        MultipartStatus status = parser_.feed(span);
        if (status == MultipartStatus::stopped) {
            refuse(*failure_);
            return false;
        }
        if (status != MultipartStatus::ok) {
            ngx_log_error(NGX_LOG_ERR, r_->connection->log, 0, "chatterd: postimages: %s",
                          describe(status));
            refuse(Failure::unprocessable);
            return false;
        }
    }
    return true;
}

void FormReceiver::finish_body() {
    ngx_log_t* log = r_->connection->log;
    MultipartStatus status = parser_.finish();
    if (status != MultipartStatus::ok) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: postimages: %s", describe(status));
        return refuse(Failure::unprocessable);
    }
    if (!form_.username || !form_.message) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: postimages: form has no \"%s\" part",
                      form_.username ? "message" : "username");
        return refuse(Failure::unprocessable);
    }
    // libpq takes text parameters as C strings: a NUL would silently cut the value.
    for (const std::string* field : {&*form_.username, &*form_.message}) {
        if (field->find('\0') != std::string::npos) {
            ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: postimages: form part \"%s\" contains a NUL byte",
                          field == &*form_.username ? "username" : "message");
            return refuse(Failure::unprocessable);
        }
    }
    finished_ = true;
    // A client leaving now must not end the request: its files are kept or removed only once
    // the outcome of the INSERT is known.
    r_->read_event_handler = ngx_http_block_reading;
    on_form_(r_, form_);
}

// Refused before the body has ended: the rest is read and dropped by nginx (lingering close),
// and the client is told the connection will not be reused.
void FormReceiver::refuse(Failure failure) {
    if (r_->reading_body) r_->keepalive = 0;
    answer(send_failure(r_, failure));
}

void FormReceiver::answer(ngx_int_t rc) {
    finished_ = true;
    r_->read_event_handler = ngx_http_block_reading;
    ngx_http_finalize_request(r_, rc);
}

bool FormReceiver::reject(Failure failure) {
    failure_ = failure;
    return false;
}

// ---- parts ---------------------------------------------------------------------------------

bool FormReceiver::on_part_begin(const PartHeaders& part) {
    ngx_log_t* log = r_->connection->log;
    role_ = Role::ignored;
    if (part.name == "username" || part.name == "message") {
        std::optional<std::string>& field = part.name == "username" ? form_.username : form_.message;
        if (field) {
            ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: postimages: form part \"%*s\" sent twice",
                          part.name.size(), part.name.data());
            return reject(Failure::unprocessable);
        }
        field.emplace();
        text_ = &*field;
        part_name_ = part.name == "username" ? "username" : "message";
        role_ = Role::text;
        return true;
    }
    if (part.name == "image") return begin_media(form_.image, MediaField::image, part);
    if (part.name == "video") return begin_media(form_.video, MediaField::video, part);
    return true;  // unknown parts are ignored
}

bool FormReceiver::begin_media(std::optional<ReceivedMedia>& slot, MediaField field,
                               const PartHeaders& part) {
    ngx_log_t* log = r_->connection->log;
    part_name_ = field == MediaField::image ? "image" : "video";
    if (!part.has_filename) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: postimages: form part \"%s\" is not a file",
                      part_name_.data());
        return reject(Failure::unprocessable);
    }
    if (slot) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chatterd: postimages: form part \"%s\" sent twice",
                      part_name_.data());
        return reject(Failure::unprocessable);
    }
    slot.emplace(log);
    if (!slot->file.create(to_view(conf_.media_root))) {
        return reject(Failure::internal);
    }
    media_ = &*slot;
    media_field_ = field;
    head_size_ = 0;
    identified_ = false;
    role_ = Role::media;
    return true;
}

bool FormReceiver::on_part_data(std::string_view bytes) {
    switch (role_) {
    case Role::ignored: return true;
    case Role::media: return take_media_bytes(bytes);
    case Role::text: break;
    }
    if (text_->size() + bytes.size() > kMaxTextFieldBytes) {
        ngx_log_error(NGX_LOG_ERR, r_->connection->log, 0,
                      "chatterd: postimages: form part \"%s\" is longer than %uz bytes",
                      part_name_.data(), kMaxTextFieldBytes);
        return reject(Failure::message_too_long);
    }
    text_->append(bytes);
    return true;
}

bool FormReceiver::take_media_bytes(std::string_view bytes) {
    if (media_->file.size() + static_cast<off_t>(bytes.size()) > conf_.media_max_size) {
        ngx_log_error(NGX_LOG_ERR, r_->connection->log, 0,
                      "chatterd: postimages: media part \"%s\" exceeds chatterd_media_max_size %O",
                      part_name_.data(), conf_.media_max_size);
        return reject(Failure::payload_too_large);
    }
    if (!media_->file.write(bytes)) return reject(Failure::internal);
    if (identified_) return true;
    std::size_t n = std::min(bytes.size(), head_.size() - head_size_);
    bytes.copy(head_.data() + head_size_, n);
    head_size_ += n;
    return head_size_ < head_.size() || identify_media();
}

bool FormReceiver::on_part_end() {
    bool ok = role_ != Role::media || identified_ || identify_media();
    role_ = Role::ignored;
    return ok;
}

bool FormReceiver::identify_media() {
    identified_ = true;
    std::optional<MediaType> type = sniff_media_type(media_field_, {head_.data(), head_size_});
    if (!type) {
        ngx_log_error(NGX_LOG_ERR, r_->connection->log, 0,
                      "chatterd: postimages: media part \"%s\" is not a supported %s (%uz bytes)",
                      part_name_.data(), part_name_.data(), static_cast<std::size_t>(media_->file.size()));
        return reject(Failure::unsupported_media);
    }
    media_->type = *type;
    return true;
}

}  // namespace

ReceivedForm& received_form(ngx_http_request_t* r) {
    return receiver_of(r)->form();
}

ngx_int_t receive_form(ngx_http_request_t* r, FormHandler on_form) noexcept try {
    std::optional<std::string_view> boundary;
    if (r->headers_in.content_type != nullptr)
        boundary = multipart_boundary(to_view(r->headers_in.content_type->value));
    if (!boundary) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chatterd: postimages: body is not multipart/form-data with a boundary");
        ngx_int_t rc = ngx_http_discard_request_body(r);
        return rc != NGX_OK ? rc : send_failure(r, Failure::unprocessable);
    }

    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(r->pool, sizeof(FormReceiver));
    if (cleanup == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    auto* receiver = new (cleanup->data) FormReceiver(r, *boundary, on_form);
    cleanup->handler = [](void* data) { static_cast<FormReceiver*>(data)->~FormReceiver(); };
    ngx_http_set_ctx(r, receiver, ngx_http_chatterd_module);

    // Unbuffered: nginx hands over each piece as it arrives instead of spooling the body to a
    // temporary file; its limits, chunked decoding, HTTP/2 and timeouts still apply.
    r->request_body_no_buffering = 1;
    ngx_int_t rc = ngx_http_read_client_request_body(r, [](ngx_http_request_t* req) {
        req->read_event_handler = pump_body;
        pump_body(req);
    });
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) return rc;
    return NGX_DONE;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postimages: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
