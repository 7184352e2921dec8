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

// libpq's messages span lines (a trailing newline, "LINE 1:" and caret lines, tab-indented
// hints); an nginx log entry must stay on one line. OneLine holds such a message with every line
// break and the indentation after it folded into one space, cut at its capacity.
class OneLine {
public:
    explicit OneLine(std::string_view text) {
        for (char c : text) {
            if (length_ == sizeof(text_)) break;
            bool blank = c == '\n' || c == '\r' || (c == '\t' && after_break_);
            if (blank && (after_break_ || length_ == 0)) continue;
            text_[length_++] = blank ? ' ' : c;
            after_break_ = blank;
        }
        while (length_ > 0 && text_[length_ - 1] == ' ') length_--;
    }
    std::string_view view() const { return {text_, length_}; }

private:
    char text_[1024];
    std::size_t length_ = 0;
    bool after_break_ = false;
};

}  // namespace chatterd
