// Streaming multipart/form-data parser (RFC 7578 over RFC 2046): request body spans in, part events
// out. Memory is bounded by the boundary and the per-part header limit whatever the body size.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace chatterd {

// Returns the boundary when content_type is multipart/form-data (case-insensitive, parameters in
// any order, boundary quoted or not, 1..70 chars); std::nullopt otherwise. The view points into
// content_type. Boundaries with characters RFC 2046 forbids, or given twice, are refused.
std::optional<std::string_view> multipart_boundary(std::string_view content_type);

struct PartHeaders {  // views valid only during MultipartSink::on_part_begin
    std::string_view name;
    std::string_view filename;  // decoded; empty when absent
    bool has_filename = false;  // a filename= or filename*= parameter was present (even if empty)
    std::string_view content_type;  // empty when absent
};

class MultipartSink {
public:
    virtual ~MultipartSink() = default;
    // Each returns false to stop parsing.
    virtual bool on_part_begin(const PartHeaders& part) = 0;
    // Any number of calls per part, each with a non-empty span.
    virtual bool on_part_data(std::string_view bytes) = 0;
    virtual bool on_part_end() = 0;
};

enum class MultipartStatus {
    ok,
    stopped,                  // the sink returned false
    invalid_boundary,         // a boundary RFC 2046 forbids: empty, over 70 chars, bad chars
    missing_first_delimiter,  // the body ended without any "--boundary" line
    garbage_after_boundary,   // a boundary line goes on with something other than padding and CRLF
    header_too_large,         // a part's header block exceeds max_header_bytes
    header_line_without_colon,
    invalid_header_line,  // empty or non-token name, folded (obs-fold) line, bare CR or LF, NUL
    duplicate_header,     // Content-Disposition or Content-Type twice in one part
    missing_content_disposition,
    invalid_content_disposition,  // syntax error, repeated parameter, undecodable filename*
    not_form_data,                // Content-Disposition type other than form-data
    missing_name,                 // Content-Disposition without name=
    truncated,                    // the body ended before the close delimiter
};

// A short English text for logs, e.g. "multipart part header too large".
const char* describe(MultipartStatus status);

class MultipartParser {
public:
    // The boundary is copied. max_header_bytes bounds each part's header block, blank line
    // included.
    MultipartParser(std::string_view boundary, MultipartSink& sink,
                    std::size_t max_header_bytes = 16 * 1024);
    // Returns ok while the form is fine so far; stopped when the sink returned false. After any
    // status other than ok, later calls return that same status.
    MultipartStatus feed(std::string_view span);
    // The end of the body: ok only when the close delimiter was seen, else an error (truncated).
    MultipartStatus finish();
    // The close delimiter has been seen.
    bool complete() const;

private:
    enum class State {
        preamble,         // before the first delimiter: bytes are ignored
        part_data,        // between a part's headers and the next delimiter
        after_delimiter,  // just after "\r\n--boundary"
        close_dash,       // after "\r\n--boundary-"
        line_padding,     // spaces and tabs before the CRLF that ends a boundary line
        line_feed,        // after that CR
        part_headers,     // collecting a part's header block
        epilogue,         // after the close delimiter: bytes are ignored
    };
    static constexpr std::size_t kMaxDelimiterSize = 4 + 70;  // "\r\n--" + the longest boundary

    std::string_view delimiter() const;
    std::string_view scan_for_delimiter(std::string_view span);
    std::string_view scan_across_edge(std::string_view span);
    std::size_t delimiter_prefix_at_end(std::string_view bytes) const;
    void hold(std::string_view tail);
    bool deliver(std::string_view bytes);
    void reach_delimiter();
    std::string_view read_boundary_line(std::string_view span);
    std::string_view reject_boundary_line();
    void start_part_headers();
    std::string_view read_part_headers(std::string_view span);
    void begin_part(std::string_view crlf_header_lines);
    MultipartStatus fail(MultipartStatus status);

    MultipartSink& sink_;
    std::size_t max_header_bytes_;
    std::array<char, kMaxDelimiterSize> delimiter_{};
    std::size_t delimiter_size_ = 0;
    // The held tail (a possible delimiter start) followed, while a span's edge is examined, by that
    // span's head.
    std::array<char, 2 * kMaxDelimiterSize> window_{};
    std::size_t held_ = 0;
    // The current part's header block, after the CRLF that ended its boundary line.
    std::string header_;
    std::string decoded_;  // the current part's name and filename, unquoted / percent-decoded
    State state_ = State::preamble;
    MultipartStatus status_ = MultipartStatus::ok;
};

}  // namespace chatterd
