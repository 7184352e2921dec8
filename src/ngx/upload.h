// Receiving a multipart/form-data body: nginx's own body reader (unbuffered, so bytes are
// parsed as they arrive) -> the streaming multipart parser -> text fields in memory and media
// parts straight into their files in the media root.
#pragma once

#include "core/media_name.h"
#include "ngx/media_file.h"

#include <optional>
#include <string>

namespace chatterd {

struct ReceivedMedia {
    explicit ReceivedMedia(ngx_log_t* log) : file(log) {}
    MediaFile file;
    MediaType type{};  // known once the first bytes have been sniffed
};

// The form once the whole body has arrived and every media part is on disk (unpublished).
struct ReceivedForm {
    std::optional<std::string> username;
    std::optional<std::string> message;
    std::optional<ReceivedMedia> image;
    std::optional<ReceivedMedia> video;
};

// Called once the form is complete. It owns the rest of the request: it must finalize r
// (directly or after asynchronous work). The form lives as long as the request.
using FormHandler = void (*)(ngx_http_request_t* r, ReceivedForm& form);

// Starts receiving r's body as a form; returns the content handler's code. Every failure
// (not multipart, malformed, a media part over chatterd_media_max_size, not an image/video,
// disk errors, client gone, body timeout) is answered here, logged, and leaves no file.
ngx_int_t receive_form(ngx_http_request_t* r, FormHandler on_form) noexcept;

// The form of a request whose FormHandler has run (for its later asynchronous steps).
ReceivedForm& received_form(ngx_http_request_t* r);

}  // namespace chatterd
