// The one place nginx's C headers enter C++. nginx headers go first because they
// define _FILE_OFFSET_BITS/_GNU_SOURCE for everything that follows.
#pragma once

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

extern ngx_module_t ngx_http_chatterd_module;
}

#include <libpq-fe.h>

#include "core/one_line.h"

#include <string_view>

namespace chatterd {

inline std::string_view to_view(const ngx_str_t& s) {
    return {reinterpret_cast<const char*>(s.data), s.len};
}

// A NUL-terminated copy of text in the request pool, or null when out of memory.
inline const char* pool_c_string(ngx_http_request_t* r, std::string_view text) {
    auto* copy = static_cast<char*>(ngx_pnalloc(r->pool, text.size() + 1));
    if (copy == nullptr) return nullptr;
    copy[text.size()] = '\0';
    ngx_memcpy(copy, text.data(), text.size());
    return copy;
}

}  // namespace chatterd
