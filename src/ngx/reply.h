// Sending JSON answers: a body built elsewhere, a small literal, or one of the API's errors.
#pragma once

#include "ngx/ngx.h"

namespace chatterd {

// The API's failure answers. One table (reply.cpp) maps each to its status and JSON body;
// the caller writes the error-log line that says what happened.
enum class Failure {
    unprocessable,       // 422 "Unprocessable entity"
    payload_too_large,   // 413 "Payload too large"
    unsupported_media,   // 415 "Unsupported media type"
    message_too_long,    // 400 "Message too long"
    invalid_host,        // 400 "Invalid Host header"
    unavailable,         // 503 "Service unavailable"
    method_not_allowed,  // 405 "Method not allowed", with Allow
    bad_request,         // 400 with the given cause (a page's parameters)
    internal,            // 500 with the given cause
};

// Sends status with body (a chain of memory buffers, possibly null for an empty body) of
// length bytes as application/json. Returns the code to finalize the request with.
ngx_int_t send_json(ngx_http_request_t* r, ngx_uint_t status, ngx_chain_t* body, off_t length);

// Sends a short JSON text, copied into the request pool.
ngx_int_t send_json_text(ngx_http_request_t* r, ngx_uint_t status, std::string_view json);

// Sends the failure's status and JSON string body. `cause` replaces the body text for
// Failure::internal, Failure::unprocessable and Failure::bad_request (require_method adds the
// Allow header of a 405).
ngx_int_t send_failure(ngx_http_request_t* r, Failure failure, std::string_view cause = {});

// Sends the failure before the body is read: nginx reads and drops the body.
ngx_int_t send_failure_unread(ngx_http_request_t* r, Failure failure);

// 405 unless the method is one of `allowed` (NGX_HTTP_GET | NGX_HTTP_HEAD, ...).
// Returns NGX_DECLINED when the method is allowed and the handler goes on; otherwise the 405
// has been sent and the return value is the code to finalize the request with.
ngx_int_t require_method(ngx_http_request_t* r, ngx_uint_t allowed);

// Adds a response header: name must outlive the request (a literal), value is copied into the
// request's pool. Null when out of memory.
ngx_table_elt_t* add_header(ngx_http_request_t* r, std::string_view name, std::string_view value);

}  // namespace chatterd
