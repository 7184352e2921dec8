#include "ngx/reply.h"

#include "core/json.h"

namespace chatterd {
namespace {

// nginx has no reason phrase for 422 and would send a bare "HTTP/1.1 422 ".
constexpr ngx_uint_t kUnprocessable = 422;

struct FailureAnswer {
    ngx_uint_t status;
    std::string_view text;
};

FailureAnswer answer_for(Failure failure) {
    switch (failure) {
    case Failure::unprocessable: return {kUnprocessable, "Unprocessable entity"};
    case Failure::payload_too_large:
        return {NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "Payload too large"};
    case Failure::unsupported_media:
        return {NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"};
    case Failure::message_too_long: return {NGX_HTTP_BAD_REQUEST, "Message too long"};
    case Failure::invalid_host: return {NGX_HTTP_BAD_REQUEST, "Invalid Host header"};
    case Failure::unavailable: return {NGX_HTTP_SERVICE_UNAVAILABLE, "Service unavailable"};
    case Failure::method_not_allowed: return {NGX_HTTP_NOT_ALLOWED, "Method not allowed"};
    case Failure::bad_request: return {NGX_HTTP_BAD_REQUEST, "Bad request"};
    case Failure::internal: break;
    }
    return {NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error"};
}

ngx_str_t allow_value(ngx_uint_t allowed) {
    if (allowed & NGX_HTTP_POST) return ngx_string("POST");
    return ngx_string("GET, HEAD");
}

}  // namespace

ngx_int_t send_json(ngx_http_request_t* r, ngx_uint_t status, ngx_chain_t* body, off_t length) {
    r->headers_out.status = status;
    if (status == kUnprocessable) {
        ngx_str_set(&r->headers_out.status_line, "422 Unprocessable Entity");
    }
    r->headers_out.content_length_n = length;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = nullptr;
    if (body == nullptr || length == 0) r->header_only = 1;

    ngx_int_t rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;

    ngx_chain_t* last = body;
    while (last->next != nullptr) last = last->next;
    last->buf->last_buf = (r == r->main) ? 1 : 0;
    last->buf->last_in_chain = 1;
    return ngx_http_output_filter(r, body);
}

ngx_int_t send_json_text(ngx_http_request_t* r, ngx_uint_t status, std::string_view json) {
    ngx_buf_t* b = ngx_create_temp_buf(r->pool, json.size());
    ngx_chain_t* out = ngx_alloc_chain_link(r->pool);
    if (b == nullptr || out == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    b->last = ngx_cpymem(b->last, json.data(), json.size());
    out->buf = b;
    out->next = nullptr;
    return send_json(r, status, out, static_cast<off_t>(json.size()));
}

ngx_int_t send_failure(ngx_http_request_t* r, Failure failure, std::string_view cause) {
    FailureAnswer answer = answer_for(failure);
    bool has_cause = failure == Failure::internal || failure == Failure::unprocessable
                     || failure == Failure::bad_request;
    if (has_cause && !cause.empty()) answer.text = cause;
    try {
        return send_json_text(r, answer.status, json_string(answer.text));
    } catch (const std::exception&) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}

ngx_int_t require_method(ngx_http_request_t* r, ngx_uint_t allowed) {
    if (r->method & allowed) return NGX_DECLINED;
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "chatterd: method %V not allowed here",
                  &r->method_name);
    ngx_table_elt_t* h = static_cast<ngx_table_elt_t*>(ngx_list_push(&r->headers_out.headers));
    if (h == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value = allow_value(allowed);
    return send_failure_unread(r, Failure::method_not_allowed);
}

ngx_table_elt_t* add_header(ngx_http_request_t* r, std::string_view name, std::string_view value) {
    auto* h = static_cast<ngx_table_elt_t*>(ngx_list_push(&r->headers_out.headers));
    const char* copy = pool_c_string(r, value);
    if (h == nullptr || copy == nullptr) return nullptr;
    h->hash = 1;
    h->key = {name.size(), reinterpret_cast<u_char*>(const_cast<char*>(name.data()))};
    h->value = {value.size(), reinterpret_cast<u_char*>(const_cast<char*>(copy))};
    return h;
}

ngx_int_t send_failure_unread(ngx_http_request_t* r, Failure failure) {
    ngx_int_t rc = ngx_http_discard_request_body(r);
    return rc != NGX_OK ? rc : send_failure(r, failure);
}

}  // namespace chatterd
