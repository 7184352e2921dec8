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

#include <string_view>

namespace chatterd {

inline std::string_view to_view(const ngx_str_t& s) {
    return {reinterpret_cast<const char*>(s.data), s.len};
}

// libpq's messages end with a newline; log lines must not.
inline std::string_view without_trailing_newlines(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    return text;
}

}  // namespace chatterd
