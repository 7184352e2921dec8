#include "ngx/body_stream.h"

#include "ngx/conf.h"

#include <algorithm>
#include <string>

namespace chatterd {

ngx_int_t BodyStream::start() {
    // A subrequest (mirror, ssi, auth_request...) shares the main request's body: taking its
    // buffers as they come, as this stream does, would empty them for the main request (a
    // mirrored post would then be stored twice, or the main one stored empty). The operator
    // pointed a subrequest here by mistake: it is refused, before any byte is touched.
    if (r_ != r_->main) {
        ngx_log_error(NGX_LOG_ERR, r_->connection->log, 0,
                      "chatterd: %s: \"%V\" is a subrequest (mirror, ssi, auth_request): it is not "
                      "served, since reading the body would take it from the main request "
                      "\"%V\"; 500",
                      endpoint_, &r_->uri, &r_->main->uri);
        return send_failure(r_, Failure::internal, "Not served to a subrequest");
    }
    if (too_large(r_->headers_in.content_length_n, "announces")) {
        // Not read, not even to drop it: the connection closes after the answer, so the client
        // sees the end at once (lingering close drops what it had already sent).
        r_->keepalive = 0;
        r_->lingering_close = 1;
        return send_failure(r_, Failure::payload_too_large);
    }
    r_->request_body_no_buffering = 1;
    if (ngx_msec_t body_time = loc_conf(r_)->body_time; body_time > 0) {
        deadline_.handler = on_deadline;
        deadline_.data = this;
        deadline_.log = r_->connection->log;
        // The connection's own timers keep a worker that is shutting down until the request ends.
        deadline_.cancelable = 1;
        ngx_add_timer(&deadline_, body_time);
    }
    ngx_int_t rc = ngx_http_read_client_request_body(r_, on_read_event);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) return rc;
    return NGX_DONE;
}

// The first call comes from nginx's reader as its post handler; the next ones are read events.
void BodyStream::on_read_event(ngx_http_request_t* r) noexcept {
    auto* stream = static_cast<BodyStream*>(ngx_http_get_module_ctx(r, ngx_http_chatterd_module));
    r->read_event_handler = on_read_event;
    try {
        stream->pump();
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: %s: %s", stream->endpoint_,
                      e.what());
        stream->answer(NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}

// The body has taken longer than chatterd_body_time: the request ends as at client_body_timeout,
// the connection closed without an answer (408 in the access log).
void BodyStream::on_deadline(ngx_event_t* ev) noexcept {
    auto* stream = static_cast<BodyStream*>(ev->data);
    ngx_connection_t* c = stream->r_->connection;
    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "chatterd: %s: the body did not arrive within chatterd_body_time %Mms "
                  "(%O bytes received)",
                  stream->endpoint_, loc_conf(stream->r_)->body_time, stream->received_);
    c->timedout = 1;
    stream->answer(NGX_HTTP_REQUEST_TIME_OUT);
    ngx_http_run_posted_requests(c);
}

void BodyStream::stop_deadline() {
    if (deadline_.timer_set) ngx_del_timer(&deadline_);
}

void BodyStream::pump() {
    if (finished_) return;
    for (;;) {
        // nginx leaves no body at all for a body already discarded, and
        // reads a body it has wholly received at once: both end the body here.
        ngx_http_request_body_t* rb = r_->request_body;
        ngx_chain_t* bufs = rb != nullptr ? rb->bufs : nullptr;
        if (rb != nullptr) rb->bufs = nullptr;
        if (!consume(bufs)) return;
        if (!r_->reading_body) return finish();
        ngx_int_t rc = ngx_http_read_unbuffered_request_body(r_);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            // nginx logs a client that went away and a chunked body over client_max_body_size,
            // but not a body that stopped arriving.
            if (rc == NGX_HTTP_REQUEST_TIME_OUT) {
                ngx_log_error(NGX_LOG_INFO, r_->connection->log, 0,
                              "chatterd: %s: no body data within client_body_timeout", endpoint_);
            }
            return answer(rc);
        }
        if (r_->request_body->bufs == nullptr && r_->reading_body)
            return;  // wait for the next read event
    }
}

// Every buffer is marked consumed, so nginx can reuse it for the next bytes.
bool BodyStream::consume(ngx_chain_t* bufs) {
    for (ngx_chain_t* cl = bufs; cl != nullptr; cl = cl->next) {
        ngx_buf_t* b = cl->buf;
        if (b->in_file) {
            if (!take_file(b)) return false;
            continue;
        }
        std::string_view span(reinterpret_cast<const char*>(b->pos), b->last - b->pos);
        b->pos = b->last;
        if (!span.empty() && !take(span)) return false;
    }
    return true;
}

// A body another module read first (mirror's mirror_request_body) may lie in nginx's
// temporary file: read back from the page cache it was just written to, a piece at a time.
bool BodyStream::take_file(ngx_buf_t* b) {
    static constexpr off_t kPiece = 64 * 1024;
    std::string piece;
    while (b->file_pos < b->file_last) {
        piece.resize(static_cast<std::size_t>(std::min(kPiece, b->file_last - b->file_pos)));
        ssize_t n = ngx_read_file(b->file, reinterpret_cast<u_char*>(piece.data()), piece.size(),
                                  b->file_pos);
        if (n <= 0) {
            ngx_log_error(NGX_LOG_ALERT, r_->connection->log, 0,
                          "chatterd: %s: reading the request body back from \"%V\" failed",
                          endpoint_, &b->file->name);
            answer(NGX_HTTP_INTERNAL_SERVER_ERROR);
            return false;
        }
        b->file_pos += n;
        if (!take({piece.data(), static_cast<std::size_t>(n)})) return false;
    }
    return true;
}

bool BodyStream::take(std::string_view bytes) {
    received_ += static_cast<off_t>(bytes.size());
    if (too_large(received_, "delivered")) {
        refuse(Failure::payload_too_large);
        return false;
    }
    std::optional<Failure> failure = on_bytes(bytes);
    if (failure) refuse(*failure);
    return !failure;
}

bool BodyStream::too_large(off_t bytes, const char* how) const {
    if (max_bytes_ <= 0 || bytes <= max_bytes_) return false;
    ngx_log_error(NGX_LOG_INFO, r_->connection->log, 0,
                  "chatterd: %s: the body %s more than %O bytes, more than a valid request can be",
                  endpoint_, how, max_bytes_);
    return true;
}

void BodyStream::finish() {
    finished_ = true;
    stop_deadline();
    r_->read_event_handler = ngx_http_block_reading;
    std::optional<Failure> failure = on_end();
    if (failure) answer(send_failure(r_, *failure));
}

// Refused before the body has ended: the rest is read and dropped by nginx (lingering close),
// and the client is told the connection will not be reused.
void BodyStream::refuse(Failure failure) {
    if (r_->reading_body) r_->keepalive = 0;
    answer(send_failure(r_, failure));
}

void BodyStream::answer(ngx_int_t rc) {
    finished_ = true;
    stop_deadline();
    r_->read_event_handler = ngx_http_block_reading;
    ngx_http_finalize_request(r_, rc);
}

}  // namespace chatterd
