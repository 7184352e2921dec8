// A request body taken as it arrives: nginx's own reader in unbuffered mode, so its limits
// (client_max_body_size, counted on the bytes received), chunked decoding, HTTP/2, Expect and
// client_body_timeout still apply, but each piece is handed over and its buffer given back at
// once: a body costs what the receiver keeps of it, never a whole copy or a temporary file.
// client_body_timeout bounds each wait for the next bytes; chatterd_body_time bounds the whole
// body, so that a client trickling a byte now and then cannot hold an upload for ever.
#pragma once

#include "ngx/ngx.h"
#include "ngx/reply.h"

#include <new>
#include <optional>
#include <string_view>
#include <utility>

namespace chatterd {

class BodyStream {
public:
    // endpoint names the log lines; max_bytes > 0 refuses (413) a body that announces or
    // delivers more, before the rest is read.
    BodyStream(ngx_http_request_t* r, const char* endpoint, off_t max_bytes = 0)
        : r_(r), endpoint_(endpoint), max_bytes_(max_bytes) {}
    virtual ~BodyStream() { stop_deadline(); }
    BodyStream(const BodyStream&) = delete;
    BodyStream& operator=(const BodyStream&) = delete;

    // Starts reading; returns the content handler's code. The stream must be r's module
    // context (make_body_stream). Every failure is answered here or by the stream later.
    ngx_int_t start();

protected:
    // The next bytes of the body. A failure (the receiver has logged why) is answered and
    // ends the reading; the client is told the connection will not be reused.
    virtual std::optional<Failure> on_bytes(std::string_view bytes) = 0;
    // The whole body has arrived. A failure is answered; otherwise the receiver has taken
    // the request over and finalizes it (read events are blocked until it says otherwise).
    virtual std::optional<Failure> on_end() = 0;

    ngx_http_request_t* request() const { return r_; }
    const char* endpoint() const { return endpoint_; }

private:
    static void on_read_event(ngx_http_request_t* r) noexcept;
    static void on_deadline(ngx_event_t* ev) noexcept;
    void stop_deadline();
    void pump();
    bool consume(ngx_chain_t* bufs);
    bool take_file(ngx_buf_t* b);
    bool take(std::string_view bytes);
    void finish();
    void refuse(Failure failure);
    void answer(ngx_int_t rc);
    bool too_large(off_t bytes, const char* how) const;

    ngx_http_request_t* r_;
    const char* endpoint_;
    off_t max_bytes_;
    off_t received_ = 0;
    bool finished_ = false;   // answered, or handed over by on_end
    ngx_event_t deadline_{};  // chatterd_body_time, while the body is being read
};

// A Stream (a BodyStream) built in r's pool cleanup storage, so that it is destroyed with
// the request whatever ends it, and set as r's module context. Null when out of memory.
template <class Stream, class... Args>
Stream* make_body_stream(ngx_http_request_t* r, Args&&... args) {
    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(r->pool, sizeof(Stream));
    if (cleanup == nullptr) return nullptr;
    auto* stream = new (cleanup->data) Stream(std::forward<Args>(args)...);
    cleanup->handler = [](void* data) noexcept { static_cast<Stream*>(data)->~Stream(); };
    ngx_http_set_ctx(r, static_cast<BodyStream*>(stream), ngx_http_chatterd_module);
    return stream;
}

// The Stream that make_body_stream made for r.
template <class Stream>
Stream& body_stream(ngx_http_request_t* r) {
    return static_cast<Stream&>(
        *static_cast<BodyStream*>(ngx_http_get_module_ctx(r, ngx_http_chatterd_module)));
}

}  // namespace chatterd
