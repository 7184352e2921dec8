// GET /status (chatterd_status): the metrics of every worker, in Prometheus's text format.
#include "handlers/handlers.h"

#include "ngx/conf.h"
#include "ngx/list_cache.h"
#include "ngx/metrics.h"
#include "ngx/reply.h"

namespace chatterd {

ngx_int_t status_handler(ngx_http_request_t* r) noexcept try {
    ngx_int_t rc = require_method(r, NGX_HTTP_GET | NGX_HTTP_HEAD);
    if (rc != NGX_DECLINED) return rc;
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) return rc;
    std::string page;
    auto* conf = static_cast<MainConf*>(ngx_http_get_module_main_conf(r, ngx_http_chatterd_module));
    if (!render_metrics(*conf, PageGauges{list_cache_bytes_held()}, page)) {
        return send_failure(r, Failure::internal, "no status zone in this process");
    }
    ngx_buf_t* b = ngx_create_temp_buf(r->pool, page.size());
    if (b == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    b->last = ngx_cpymem(b->pos, page.data(), page.size());
    b->last_buf = 1;
    b->last_in_chain = 1;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = static_cast<off_t>(page.size());
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->header_only = r->method == NGX_HTTP_HEAD;
    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
    ngx_chain_t out{b, nullptr};
    return ngx_http_output_filter(r, &out);
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: status: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
