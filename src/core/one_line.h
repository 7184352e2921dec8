// One log line from a multi-line message.
#pragma once

#include <cstddef>
#include <string_view>

namespace chatterd {

// libpq's messages span lines (a trailing newline, "LINE 1:" and caret lines, tab-indented
// hints, one line per host tried); an nginx log entry must stay on one line. OneLine holds such
// a message with every line break folded: into "; " before a new line (so that the attempts on
// two hosts read as two), into one space before an indented continuation; cut at its capacity.
class OneLine {
public:
    explicit OneLine(std::string_view text) {
        enum class After { text, line_break, indented_break } after = After::text;
        for (char c : text) {
            if (length_ + 2 >= sizeof(text_)) break;
            if (c == '\n' || c == '\r') {
                if (after == After::text) after = After::line_break;
                continue;
            }
            if ((c == '\t' || c == ' ') && after != After::text) {
                after = After::indented_break;
                continue;
            }
            if (after != After::text && length_ > 0) {
                if (after == After::line_break) text_[length_++] = ';';
                text_[length_++] = ' ';
            }
            after = After::text;
            text_[length_++] = c;
        }
    }
    std::string_view view() const { return {text_, length_}; }

private:
    char text_[1024];
    std::size_t length_ = 0;
};

}  // namespace chatterd
