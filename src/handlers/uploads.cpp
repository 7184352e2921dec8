// The tus 1.0.0 location (`chatterd uploads`, API.md "Resumable uploads"): OPTIONS, POST
// (creation, creation-with-upload), HEAD, PATCH, DELETE (termination), with the expiration and
// checksum extensions. Each upload lives on disk (ngx/upload_store.h); a PATCH's bytes go to
// its data file as they arrive.
#include "handlers/handlers.h"

#include "core/media_type.h"
#include "core/tus_checksum.h"
#include "core/tus_headers.h"
#include "ngx/body_stream.h"
#include "ngx/conf.h"
#include "ngx/metrics.h"
#include "ngx/reply.h"
#include "ngx/upload_store.h"

#include <array>
#include <string>

namespace chatterd {
namespace {

constexpr ngx_uint_t kGone = 410;
constexpr ngx_uint_t kLocked = 423;
constexpr ngx_uint_t kChecksumMismatch = 460;
constexpr std::string_view kExtensions =
    "creation,creation-with-upload,termination,expiration,checksum";

void log_info(ngx_http_request_t* r, const char* what) {
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "chatterd: uploads: %V %V: %s",
                  &r->method_name, &r->uri, what);
}

bool add_number(ngx_http_request_t* r, std::string_view name, off_t n) {
    return add_header(r, name, std::to_string(n)) != nullptr;
}

bool add_expires(ngx_http_request_t* r, time_t when) {
    u_char date[sizeof("Mon, 28 Sep 1970 06:00:00 GMT")];
    u_char* end = ngx_http_time(date, when);
    return add_header(r, "Upload-Expires", {reinterpret_cast<char*>(date), std::size_t(end - date)})
           != nullptr;
}

std::optional<std::string_view> header_in(ngx_http_request_t* r, std::string_view name) {
    for (ngx_list_part_t* part = &r->headers_in.headers.part; part != nullptr; part = part->next) {
        auto* h = static_cast<ngx_table_elt_t*>(part->elts);
        for (ngx_uint_t i = 0; i < part->nelts; i++) {
            if (h[i].key.len == name.size()
                && ngx_strncasecmp(h[i].key.data,
                                   reinterpret_cast<u_char*>(const_cast<char*>(name.data())),
                                   name.size())
                       == 0)
                return to_view(h[i].value);
        }
    }
    return std::nullopt;
}

bool offset_octet_stream(ngx_http_request_t* r) {
    if (r->headers_in.content_type == nullptr) return false;
    std::string_view type = to_view(r->headers_in.content_type->value);
    type = type.substr(0, type.find(';'));
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    constexpr std::string_view kType = "application/offset+octet-stream";
    return type.size() == kType.size()
           && ngx_strncasecmp(reinterpret_cast<u_char*>(const_cast<char*>(type.data())),
                              reinterpret_cast<u_char*>(const_cast<char*>(kType.data())),
                              kType.size())
                  == 0;
}

bool has_body(ngx_http_request_t* r) {
    return r->headers_in.content_length_n > 0 || r->headers_in.chunked;
}

// An answer with no body (text empty) or a one-line text/plain one.
ngx_int_t send_tus(ngx_http_request_t* r, ngx_uint_t status, std::string_view text = {}) {
    r->headers_out.status = status;
    // Statuses nginx has no reason phrase for.
    if (status == kLocked) {
        ngx_str_set(&r->headers_out.status_line, "423 Locked");
    } else if (status == kChecksumMismatch) {
        ngx_str_set(&r->headers_out.status_line, "460 Checksum Mismatch");
    }
    std::string line = text.empty() ? std::string() : std::string(text) + "\n";
    r->headers_out.content_length_n = static_cast<off_t>(line.size());
    if (!line.empty()) {
        ngx_str_set(&r->headers_out.content_type, "text/plain");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }
    r->header_only = line.empty() || r->method == NGX_HTTP_HEAD;
    ngx_int_t rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
    ngx_buf_t* b = ngx_create_temp_buf(r->pool, line.size());
    if (b == nullptr) return NGX_ERROR;
    b->last = ngx_cpymem(b->pos, line.data(), line.size());
    b->last_buf = 1;
    b->last_in_chain = 1;
    ngx_chain_t out{b, nullptr};
    return ngx_http_output_filter(r, &out);
}

// A refusal before the body is read (logged): nginx reads and drops the body.
ngx_int_t refuse_unread(ngx_http_request_t* r, ngx_uint_t status, const char* why) {
    log_info(r, why);
    ngx_int_t rc = ngx_http_discard_request_body(r);
    return rc != NGX_OK ? rc : send_tus(r, status, why);
}

// Path-absolute: the client resolves it against the URL it posted to, whatever the Host.
std::string upload_location(ngx_http_request_t* r, const std::string& id) {
    std::string path(to_view(r->uri));
    if (path.empty() || path.back() != '/') path += '/';
    path += id;
    auto* src = reinterpret_cast<u_char*>(path.data());
    std::size_t escapes = ngx_escape_uri(nullptr, src, path.size(), NGX_ESCAPE_URI);
    std::string escaped(path.size() + 2 * escapes, '\0');
    ngx_escape_uri(reinterpret_cast<u_char*>(escaped.data()), src, path.size(), NGX_ESCAPE_URI);
    return escaped;
}

// Opens the upload the request's path names. 0 when it is open, else the status to answer.
ngx_uint_t open_upload(ngx_http_request_t* r, UploadFile& file, bool locked, const char** why) {
    LocConf& lc = *loc_conf(r);
    std::optional<std::string_view> id = upload_id_of_path(to_view(r->uri));
    *why = "no such upload";
    if (!id) return NGX_HTTP_NOT_FOUND;
    switch (file.open(to_view(lc.media_root), *id, lc.upload_expiry, locked)) {
    case UploadOpen::open: return 0;
    case UploadOpen::not_found: return NGX_HTTP_NOT_FOUND;
    case UploadOpen::expired:
        *why = "the upload has expired";
        if (locked) {
            file.remove();
            count_uploads(UploadCount::expired);
        }
        return kGone;
    case UploadOpen::locked: *why = "another request is changing this upload"; return kLocked;
    case UploadOpen::failed: break;
    }
    *why = "the upload cannot be read";
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

// The bytes of one PATCH (or of a creation's POST), written as they arrive at the upload's
// offset, the upload's data file locked meanwhile.
class UploadReceiver final : public BodyStream {
public:
    UploadReceiver(ngx_http_request_t* r, std::optional<UploadChecksum> checksum, bool creation)
        : BodyStream(r, "uploads"),
          conf_(*loc_conf(r)),
          log_(r->connection->log),
          file_(r->connection->log),
          checksum_(std::move(checksum)),
          creation_(creation) {}
    ~UploadReceiver() override;

    UploadFile& file() { return file_; }
    ngx_int_t receive();
    ngx_int_t answer_done();

private:
    std::optional<Failure> on_bytes(std::string_view bytes) override;
    std::optional<Failure> on_end() override;
    bool acceptable_head(std::string_view bytes, bool last);
    std::optional<Failure> drop(Failure failure);

    enum class State { idle, receiving, ended };
    const LocConf& conf_;
    ngx_log_t* log_;
    UploadFile file_;
    std::optional<UploadChecksum> checksum_;
    std::optional<ChecksumHasher> hasher_;
    bool creation_;
    State state_ = State::idle;
    off_t start_ = 0;                       // the offset before this request's bytes
    std::array<char, kSniffBytes> head_{};  // the upload's first bytes, until judged
    std::size_t head_size_ = 0;
    bool judged_ = true;
};

// The request ended while its body was still arriving (the client went away, or its time ran
// out): what reached the disk stays, for the client to resume from. Unless those bytes can no
// longer be verified (the PATCH carried a checksum: back to its start), or the upload was being
// created (its client never learnt its URL: it goes).
UploadReceiver::~UploadReceiver() {
    if (state_ != State::receiving) return;
    off_t reached = file_.offset();
    if (creation_) {
        file_.remove();
    } else if (checksum_) {
        file_.truncate(start_);
    }
    ngx_log_error(NGX_LOG_INFO, log_, 0,
                  "chatterd: uploads: upload %s: the body broke off at offset %O; %s",
                  file_.id().c_str(), reached,
                  creation_   ? "the upload is removed"
                  : checksum_ ? "its unverified bytes are dropped"
                              : "the bytes received are kept");
}

ngx_int_t UploadReceiver::receive() {
    start_ = file_.offset();
    if (start_ < static_cast<off_t>(kSniffBytes)) {
        judged_ = false;
        head_size_ = static_cast<std::size_t>(start_);
        if (head_size_ > 0 && !file_.read_head(head_.data(), head_size_)) {
            return refuse_unread(request(), NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "the upload cannot be read");
        }
    }
    if (checksum_) hasher_.emplace(checksum_->algorithm);
    state_ = State::receiving;
    return start();
}

// Judged once the first kSniffBytes have arrived, or all the upload's bytes if fewer: the same
// media types as postimages accepts, image or video.
bool UploadReceiver::acceptable_head(std::string_view bytes, bool last) {
    std::size_t n = std::min(bytes.size(), head_.size() - head_size_);
    bytes.copy(head_.data() + head_size_, n);
    head_size_ += n;
    if (head_size_ < head_.size() && !last) return true;
    judged_ = true;
    std::string_view head(head_.data(), head_size_);
    if (sniff_media_type(MediaField::image, head) || sniff_media_type(MediaField::video, head))
        return true;
    ngx_log_error(NGX_LOG_INFO, log_, 0,
                  "chatterd: uploads: upload %s is not a supported image or video; removed",
                  file_.id().c_str());
    return false;
}

// This request's bytes go, or the whole upload when it is refused as media or was being created.
std::optional<Failure> UploadReceiver::drop(Failure failure) {
    state_ = State::ended;
    if (creation_ || failure == Failure::unsupported_media) {
        file_.remove();
    } else {
        file_.truncate(start_);
    }
    file_.close();
    return failure;
}

std::optional<Failure> UploadReceiver::on_bytes(std::string_view bytes) {
    count_upload_bytes(Endpoint::uploads, bytes.size());
    off_t end = file_.offset() + static_cast<off_t>(bytes.size());
    if (end > file_.info().length) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: uploads: upload %s: the body goes beyond Upload-Length %L",
                      file_.id().c_str(), file_.info().length);
        return drop(Failure::payload_too_large);
    }
    if (!judged_ && !acceptable_head(bytes, end == file_.info().length))
        return drop(Failure::unsupported_media);
    if (hasher_) hasher_->feed(bytes);
    if (!file_.append(bytes)) return drop(Failure::internal);
    return std::nullopt;
}

std::optional<Failure> UploadReceiver::on_end() {
    bool complete = file_.offset() == file_.info().length;
    if (!judged_ && complete && !acceptable_head({}, true)) return drop(Failure::unsupported_media);
    if (hasher_ && !hasher_->matches(checksum_->digest)) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: uploads: upload %s: Upload-Checksum %s does not match; the "
                      "PATCH's bytes are dropped",
                      file_.id().c_str(), checksum_->algorithm.c_str());
        drop(Failure::internal);
        ngx_http_finalize_request(request(), send_tus(request(), kChecksumMismatch,
                                                      "Upload-Checksum does not match the bytes"));
        return std::nullopt;
    }
    // Only the bytes of a finished upload must survive a crash: an unfinished one loses at most
    // its tail, and a tus client asks HEAD for the offset before it resumes.
    if (conf_.media_fsync && complete && !file_.sync()) return drop(Failure::internal);
    state_ = State::ended;
    if (complete && file_.offset() > start_) count_uploads(UploadCount::completed);
    file_.close();
    ngx_http_finalize_request(request(), answer_done());
    return std::nullopt;
}

// 201 for a creation (with its URL), 204 for a PATCH; the new offset either way.
ngx_int_t UploadReceiver::answer_done() {
    ngx_http_request_t* r = request();
    if (!add_number(r, "Upload-Offset", file_.offset())
        || !add_expires(r, file_.expires(conf_.upload_expiry)))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    if (!creation_) return send_tus(r, NGX_HTTP_NO_CONTENT);
    if (!add_header(r, "Location", upload_location(r, file_.id())))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    return send_tus(r, NGX_HTTP_CREATED);
}

std::optional<UploadChecksum> checksum_of(ngx_http_request_t* r, bool& invalid) {
    std::optional<std::string_view> value = header_in(r, "Upload-Checksum");
    std::optional<UploadChecksum> checksum = value ? parse_upload_checksum(*value) : std::nullopt;
    invalid = value && !checksum;
    return checksum;
}

// ---- the methods -------------------------------------------------------------------------

ngx_int_t options(ngx_http_request_t* r) {
    ngx_int_t rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) return rc;
    if (!add_header(r, "Tus-Version", kTusVersion) || !add_header(r, "Tus-Extension", kExtensions)
        || !add_number(r, "Tus-Max-Size", loc_conf(r)->media_max_size)
        || !add_header(r, "Tus-Checksum-Algorithm", kTusChecksumAlgorithms))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    return send_tus(r, NGX_HTTP_NO_CONTENT);
}

ngx_int_t create(ngx_http_request_t* r) {
    LocConf& lc = *loc_conf(r);
    if (header_in(r, "Upload-Defer-Length"))
        return refuse_unread(r, NGX_HTTP_BAD_REQUEST, "Upload-Defer-Length is not supported");
    std::optional<std::string_view> length_value = header_in(r, "Upload-Length");
    std::optional<std::int64_t> length =
        length_value ? parse_tus_size(*length_value) : std::nullopt;
    if (!length) return refuse_unread(r, NGX_HTTP_BAD_REQUEST, "Upload-Length is required");
    if (*length > lc.media_max_size) {
        return refuse_unread(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                             "Upload-Length is more than Tus-Max-Size");
    }
    std::string_view metadata = header_in(r, "Upload-Metadata").value_or("");
    if (!valid_upload_metadata(metadata))
        return refuse_unread(r, NGX_HTTP_BAD_REQUEST, "Upload-Metadata is malformed");
    bool body = has_body(r);
    if (body && !offset_octet_stream(r)) {
        return refuse_unread(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "Content-Type must be application/offset+octet-stream");
    }
    if (r->headers_in.content_length_n > *length)
        return refuse_unread(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                             "the body exceeds Upload-Length");
    bool invalid = false;
    std::optional<UploadChecksum> checksum = checksum_of(r, invalid);
    if (invalid) return refuse_unread(r, NGX_HTTP_BAD_REQUEST, "Upload-Checksum is malformed");
    auto* upload = make_body_stream<UploadReceiver>(r, r, std::move(checksum), true);
    if (upload == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    UploadInfo info{*length, std::string(metadata)};
    if (!upload->file().create(to_view(lc.media_root), std::move(info), lc.media_fsync))
        return refuse_unread(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "the upload cannot be created");
    count_uploads(UploadCount::started);
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0, "chatterd: uploads: created %s",
                   upload->file().id().c_str());
    if (body) return upload->receive();
    upload->file().close();
    ngx_int_t rc = ngx_http_discard_request_body(r);
    return rc != NGX_OK ? rc : upload->answer_done();
}

ngx_int_t head(ngx_http_request_t* r) {
    UploadFile file(r->connection->log);
    const char* why = nullptr;
    if (ngx_uint_t status = open_upload(r, file, false, &why)) return refuse_unread(r, status, why);
    const UploadInfo& info = file.info();
    if (!add_number(r, "Upload-Offset", file.offset())
        || !add_number(r, "Upload-Length", info.length)
        || (!info.metadata.empty() && !add_header(r, "Upload-Metadata", info.metadata))
        || !add_header(r, "Cache-Control", "no-store")
        || !add_expires(r, file.expires(loc_conf(r)->upload_expiry)))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    ngx_int_t rc = ngx_http_discard_request_body(r);
    return rc != NGX_OK ? rc : send_tus(r, NGX_HTTP_OK);
}

ngx_int_t patch(ngx_http_request_t* r) {
    if (!offset_octet_stream(r)) {
        return refuse_unread(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "Content-Type must be application/offset+octet-stream");
    }
    std::optional<std::string_view> offset_value = header_in(r, "Upload-Offset");
    std::optional<std::int64_t> offset =
        offset_value ? parse_tus_size(*offset_value) : std::nullopt;
    if (!offset) return refuse_unread(r, NGX_HTTP_BAD_REQUEST, "Upload-Offset is required");
    bool invalid = false;
    std::optional<UploadChecksum> checksum = checksum_of(r, invalid);
    if (invalid) return refuse_unread(r, NGX_HTTP_BAD_REQUEST, "Upload-Checksum is malformed");
    auto* upload = make_body_stream<UploadReceiver>(r, r, std::move(checksum), false);
    if (upload == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    UploadFile& file = upload->file();
    const char* why = nullptr;
    if (ngx_uint_t status = open_upload(r, file, true, &why)) {
        file.close();  // the lock, before the body is read and dropped
        return refuse_unread(r, status, why);
    }
    if (*offset != file.offset()) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chatterd: uploads: upload %s: Upload-Offset %L, but its offset is %O",
                      file.id().c_str(), *offset, file.offset());
        file.close();
        return refuse_unread(r, NGX_HTTP_CONFLICT, "Upload-Offset is not the upload's offset");
    }
    if (r->headers_in.content_length_n > file.info().length - file.offset()) {
        file.close();
        return refuse_unread(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                             "the body goes beyond Upload-Length");
    }
    return upload->receive();
}

ngx_int_t terminate(ngx_http_request_t* r) {
    UploadFile file(r->connection->log);
    const char* why = nullptr;
    if (ngx_uint_t status = open_upload(r, file, true, &why)) return refuse_unread(r, status, why);
    file.remove();
    count_uploads(UploadCount::terminated);
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0, "chatterd: uploads: terminated %s",
                   file.id().c_str());
    ngx_int_t rc = ngx_http_discard_request_body(r);
    return rc != NGX_OK ? rc : send_tus(r, NGX_HTTP_NO_CONTENT);
}

}  // namespace

ngx_int_t uploads_handler(ngx_http_request_t* r) noexcept try {
    if (!add_header(r, "Tus-Resumable", kTusVersion)) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    if (r->method == NGX_HTTP_OPTIONS) return options(r);
    if (header_in(r, "Tus-Resumable") != kTusVersion) {
        if (!add_header(r, "Tus-Version", kTusVersion)) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        return refuse_unread(r, NGX_HTTP_PRECONDITION_FAILED, "Tus-Resumable 1.0.0 is required");
    }
    switch (r->method) {
    case NGX_HTTP_POST: return create(r);
    case NGX_HTTP_HEAD: return head(r);
    case NGX_HTTP_PATCH: return patch(r);
    case NGX_HTTP_DELETE: return terminate(r);
    default: break;
    }
    if (!add_header(r, "Allow", "OPTIONS, POST, HEAD, PATCH, DELETE"))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    return refuse_unread(r, NGX_HTTP_NOT_ALLOWED, "method not allowed");
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: uploads: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
