// POST /postchatt: {"username": "...", "message": "..."} -> one row, answered {}.
#include "handlers/handlers.h"
#include "handlers/insert_chatt.h"

#include "core/json.h"
#include "ngx/body_text.h"
#include "ngx/metrics.h"
#include "ngx/reply.h"

namespace chatterd {
namespace {

void insert_posted_chatt(ngx_http_request_t* r) noexcept try {
    std::string body;
    if (!read_body_text(r, body)) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    count_upload_bytes(Endpoint::postchatt, body.size());
    std::string why;
    std::optional<ChattFields> fields = parse_chatt_json(body, why);
    if (!fields) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postchatt body rejected: %s",
                      why.c_str());
        ngx_http_finalize_request(r, send_failure(r, Failure::unprocessable));
        return;
    }
    ChattRow row{pool_c_string(r, fields->username), pool_c_string(r, fields->message), nullptr,
                 nullptr};
    if (row.username == nullptr || row.message == nullptr) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    r->read_event_handler = ngx_http_test_reading;
    insert_chatt(r, row, insert_answer);
    ngx_http_finalize_request(r, NGX_DONE);
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postchatt: %s", e.what());
    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}

}  // namespace

ngx_int_t postchatt_handler(ngx_http_request_t* r) noexcept {
    ngx_int_t rc = require_method(r, NGX_HTTP_POST);
    if (rc != NGX_DECLINED) return rc;
    rc = ngx_http_read_client_request_body(r, insert_posted_chatt);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) return rc;
    return NGX_DONE;
}

}  // namespace chatterd
