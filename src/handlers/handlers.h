// The content handlers, one per endpoint of API.md. Each reads top to bottom like the API.
#pragma once

#include "ngx/ngx.h"

namespace chatterd {

ngx_int_t getchatts_handler(ngx_http_request_t* r) noexcept;
ngx_int_t postchatt_handler(ngx_http_request_t* r) noexcept;
ngx_int_t getimages_handler(ngx_http_request_t* r) noexcept;
ngx_int_t postimages_handler(ngx_http_request_t* r) noexcept;
ngx_int_t uploads_handler(ngx_http_request_t* r) noexcept;
// chatterd_status: the metrics page (ngx/metrics.h).
ngx_int_t status_handler(ngx_http_request_t* r) noexcept;

}  // namespace chatterd
