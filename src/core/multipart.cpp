#include "core/multipart.h"

#include <algorithm>
#include <cstring>

namespace chatterd {

namespace {

constexpr std::size_t kMaxBoundarySize = 70;
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kHeaderBlockEnd = "\r\n\r\n";
constexpr std::string_view kSpaceOrTab = " \t";
constexpr auto npos = std::string_view::npos;

std::string_view trim_left(std::string_view text) {
    return text.substr(std::min(text.size(), text.find_first_not_of(kSpaceOrTab)));
}

std::string_view trim(std::string_view text) {
    text = trim_left(text);
    return text.substr(0, text.find_last_not_of(kSpaceOrTab) + 1);  // npos + 1 == 0 when all blank
}

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

bool is_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_token_char(char c)  // RFC 7230 tchar
{
    return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != npos;
}

// RFC 2046 bchars: the boundary never contains CR, so "\r\n--" can only start a delimiter at a CR.
bool is_valid_boundary(std::string_view boundary) {
    const auto is_boundary_char = [](char c) {
        return is_alnum(c) || std::string_view("'()+_,-./:=? ").find(c) != npos;
    };
    return !boundary.empty() && boundary.size() <= kMaxBoundarySize && boundary.back() != ' '
           && std::all_of(boundary.begin(), boundary.end(), is_boundary_char);
}

std::string_view leading_token(std::string_view text) {
    const auto end = std::find_if_not(text.begin(), text.end(), is_token_char);
    return text.substr(0, static_cast<std::size_t>(end - text.begin()));
}

// A `name=value` parameter of a header value; a quoted value is kept as written between the quotes.
struct Parameter {
    std::string_view name;
    std::string_view value;
    bool quoted = false;
};

enum class NextParameter { found, end, malformed };

// Index of the quote closing the quoted-string that starts at text[0]; npos when it is
// unterminated.
std::size_t closing_quote(std::string_view text) {
    for (auto at = text.find_first_of("\"\\", 1); at != npos;
         at = text.find_first_of("\"\\", at + 2)) {
        if (text[at] == '"') {
            return at;
        }
    }
    return npos;
}

bool read_parameter_value(std::string_view& rest, Parameter& parameter) {
    parameter.quoted = !rest.empty() && rest.front() == '"';
    if (parameter.quoted) {
        const auto close = closing_quote(rest);
        if (close == npos) {
            return false;
        }
        parameter.value = rest.substr(1, close - 1);
        rest.remove_prefix(close + 1);
        return true;
    }
    parameter.value = rest.substr(0, rest.find_first_of("; \t\""));
    rest.remove_prefix(parameter.value.size());
    return !parameter.value.empty() && (rest.empty() || rest.front() != '"');
}

// Takes the next `; name=value` (RFC 7231) off the front of rest. Whitespace around "=" and empty
// parameters (";;", a trailing ";") are tolerated: clients write both.
NextParameter next_parameter(std::string_view& rest, Parameter& parameter) {
    rest = trim_left(rest);
    if (rest.empty()) {
        return NextParameter::end;
    }
    if (rest.front() != ';') {
        return NextParameter::malformed;
    }
    while (!rest.empty() && rest.front() == ';') {
        rest = trim_left(rest.substr(1));
    }
    if (rest.empty()) {
        return NextParameter::end;
    }
    parameter.name = leading_token(rest);
    rest = trim_left(rest.substr(parameter.name.size()));
    if (parameter.name.empty() || rest.empty() || rest.front() != '=') {
        return NextParameter::malformed;
    }
    rest = trim_left(rest.substr(1));
    return read_parameter_value(rest, parameter) ? NextParameter::found : NextParameter::malformed;
}

void append_value(std::string& out, const Parameter& parameter) {
    std::string_view text = parameter.value;
    if (parameter.quoted) {  // a backslash quotes the next character; closing_quote() made sure
                             // there is one
        for (auto at = text.find('\\'); at != npos; at = text.find('\\')) {
            out.append(text.substr(0, at));
            out.push_back(text[at + 1]);
            text.remove_prefix(at + 2);
        }
    }
    out.append(text);
}

int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = ascii_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// RFC 5987 ext-value: charset "'" [language] "'" percent-encoded bytes. Only UTF-8 is accepted: the
// bytes are not transcoded, so another charset would reach the caller as if it were UTF-8.
bool append_ext_value(std::string& out, const Parameter& parameter) {
    const auto charset_end = parameter.value.find('\'');
    if (parameter.quoted || charset_end == npos
        || !iequals(parameter.value.substr(0, charset_end), "UTF-8")) {
        return false;
    }
    const auto language_end = parameter.value.find('\'', charset_end + 1);
    if (language_end == npos) {
        return false;
    }
    std::string_view encoded = parameter.value.substr(language_end + 1);
    for (auto at = encoded.find('%'); at != npos; at = encoded.find('%')) {
        const bool has_two_digits = at + 2 < encoded.size();
        const int high = has_two_digits ? hex_digit_value(encoded[at + 1]) : -1;
        const int low = has_two_digits ? hex_digit_value(encoded[at + 2]) : -1;
        if (high < 0 || low < 0) {
            return false;
        }
        out.append(encoded.substr(0, at));
        out.push_back(static_cast<char>(high * 16 + low));
        encoded.remove_prefix(at + 3);
    }
    out.append(encoded);
    return true;
}

struct DispositionParameters {
    std::optional<Parameter> name;
    std::optional<Parameter> filename;
    std::optional<Parameter> filename_ext;  // filename*=
};

std::optional<Parameter>* parameter_slot(DispositionParameters& found, std::string_view name) {
    return iequals(name, "name")        ? &found.name
           : iequals(name, "filename")  ? &found.filename
           : iequals(name, "filename*") ? &found.filename_ext
                                        : nullptr;
}

// Decodes name and filename into one buffer and points part at them; the views are taken once both
// are in, so the buffer's growth cannot invalidate them.
MultipartStatus decode_disposition(const DispositionParameters& found, std::string& decoded,
                                   PartHeaders& part) {
    decoded.clear();
    append_value(decoded, *found.name);
    const std::size_t name_size = decoded.size();
    if (found.filename_ext) {  // RFC 6266: filename* takes precedence over filename
        if (!append_ext_value(decoded, *found.filename_ext)) {
            return MultipartStatus::invalid_content_disposition;
        }
    } else if (found.filename) {
        append_value(decoded, *found.filename);
    }
    part.name = std::string_view(decoded).substr(0, name_size);
    part.filename = std::string_view(decoded).substr(name_size);
    part.has_filename = found.filename || found.filename_ext;
    return MultipartStatus::ok;
}

MultipartStatus parse_content_disposition(std::string_view value, std::string& decoded,
                                          PartHeaders& part) {
    const auto type = leading_token(value);
    if (type.empty()) {
        return MultipartStatus::invalid_content_disposition;
    }
    if (!iequals(type, "form-data")) {
        return MultipartStatus::not_form_data;
    }
    std::string_view rest = value.substr(type.size());
    DispositionParameters found;
    Parameter parameter;
    for (auto next = next_parameter(rest, parameter); next != NextParameter::end;
         next = next_parameter(rest, parameter)) {
        auto* slot = next == NextParameter::found ? parameter_slot(found, parameter.name) : nullptr;
        if (next == NextParameter::malformed
            || (slot && *slot)) {  // a repeated parameter is ambiguous
            return MultipartStatus::invalid_content_disposition;
        }
        if (slot) {
            *slot = parameter;
        }
    }
    if (!found.name) {
        return MultipartStatus::missing_name;
    }
    return decode_disposition(found, decoded, part);
}

struct HeaderField {
    std::string_view name;
    std::string_view value;
};

MultipartStatus split_header_line(std::string_view line, HeaderField& field) {
    if (line.find_first_of(std::string_view("\r\n\0", 3)) != npos
        || line.find_first_of(kSpaceOrTab) == 0) {
        return MultipartStatus::invalid_header_line;  // bare CR/LF, NUL, or an obs-fold
                                                      // continuation
    }
    const auto colon = line.find(':');
    if (colon == npos) {
        return MultipartStatus::header_line_without_colon;
    }
    field.name = line.substr(0, colon);
    field.value = trim(line.substr(colon + 1));
    const bool valid_name =
        !field.name.empty() && leading_token(field.name).size() == field.name.size();
    return valid_name ? MultipartStatus::ok : MultipartStatus::invalid_header_line;
}

// crlf_lines holds each header line preceded by its CRLF: "\r\nName: value\r\nName: value".
MultipartStatus parse_part_headers(std::string_view crlf_lines, std::string& decoded,
                                   PartHeaders& part) {
    std::optional<std::string_view> disposition;
    std::optional<std::string_view> content_type;
    while (!crlf_lines.empty()) {
        crlf_lines.remove_prefix(kCrlf.size());
        const auto line = crlf_lines.substr(0, crlf_lines.find(kCrlf));
        crlf_lines.remove_prefix(line.size());
        HeaderField field;
        const auto status = split_header_line(line, field);
        if (status != MultipartStatus::ok) {
            return status;
        }
        auto* slot = iequals(field.name, "Content-Disposition") ? &disposition
                     : iequals(field.name, "Content-Type")      ? &content_type
                                                                : nullptr;
        if (slot && *slot) {
            return MultipartStatus::duplicate_header;
        }
        if (slot) {  // others (OkHttp's Content-Length, Content-Transfer-Encoding, ...) change
                     // nothing for us
            *slot = field.value;
        }
    }
    if (!disposition) {
        return MultipartStatus::missing_content_disposition;
    }
    part.content_type = content_type.value_or(std::string_view{});
    return parse_content_disposition(*disposition, decoded, part);
}

}  // namespace

std::optional<std::string_view> multipart_boundary(std::string_view content_type) {
    std::string_view rest = trim_left(content_type);
    const auto media_type = rest.substr(0, rest.find_first_of("; \t"));
    if (!iequals(media_type, "multipart/form-data")) {
        return std::nullopt;
    }
    rest.remove_prefix(media_type.size());
    std::optional<std::string_view> boundary;
    Parameter parameter;
    for (auto next = next_parameter(rest, parameter); next != NextParameter::end;
         next = next_parameter(rest, parameter)) {
        const bool is_boundary =
            next == NextParameter::found && iequals(parameter.name, "boundary");
        if (next == NextParameter::malformed || (is_boundary && boundary)) {
            return std::nullopt;
        }
        if (is_boundary) {
            boundary = parameter.value;
        }
    }
    // A quoted boundary is usable as written: backslash and quote are not boundary characters
    // anyway.
    return boundary && is_valid_boundary(*boundary) ? boundary : std::nullopt;
}

const char* describe(MultipartStatus status) {
    switch (status) {
    case MultipartStatus::ok: return "multipart form ok";
    case MultipartStatus::stopped: return "multipart parsing stopped by its consumer";
    case MultipartStatus::invalid_boundary: return "invalid multipart boundary";
    case MultipartStatus::missing_first_delimiter: return "multipart body has no boundary line";
    case MultipartStatus::garbage_after_boundary:
        return "unexpected bytes after a multipart boundary";
    case MultipartStatus::header_too_large: return "multipart part header too large";
    case MultipartStatus::header_line_without_colon:
        return "multipart part header line without colon";
    case MultipartStatus::invalid_header_line: return "invalid multipart part header line";
    case MultipartStatus::duplicate_header:
        return "duplicate Content-Disposition or Content-Type in a multipart part";
    case MultipartStatus::missing_content_disposition:
        return "multipart part without Content-Disposition";
    case MultipartStatus::invalid_content_disposition:
        return "invalid Content-Disposition in a multipart part";
    case MultipartStatus::not_form_data: return "multipart part is not form-data";
    case MultipartStatus::missing_name: return "multipart part without a name";
    case MultipartStatus::truncated: return "multipart body ended before its close boundary";
    }
    return "unknown multipart status";
}

MultipartParser::MultipartParser(std::string_view boundary, MultipartSink& sink,
                                 std::size_t max_header_bytes)
    : sink_(sink), max_header_bytes_(max_header_bytes) {
    if (!is_valid_boundary(boundary)) {
        status_ = MultipartStatus::invalid_boundary;
        return;
    }
    constexpr std::string_view dash_dash = "\r\n--";
    std::copy(dash_dash.begin(), dash_dash.end(), delimiter_.begin());
    std::copy(boundary.begin(), boundary.end(), delimiter_.begin() + dash_dash.size());
    delimiter_size_ = dash_dash.size() + boundary.size();
    // The first delimiter may open the body with no CRLF before it: start as if one had just been
    // seen.
    hold(kCrlf);
    header_.reserve(kCrlf.size() + max_header_bytes_);
}

MultipartStatus MultipartParser::feed(std::string_view span) {
    while (status_ == MultipartStatus::ok && !span.empty()) {
        switch (state_) {
        case State::preamble:
        case State::part_data: span = scan_for_delimiter(span); break;
        case State::after_delimiter:
        case State::close_dash:
        case State::line_padding:
        case State::line_feed: span = read_boundary_line(span); break;
        case State::part_headers: span = read_part_headers(span); break;
        case State::epilogue: span = {}; break;
        }
    }
    return status_;
}

MultipartStatus MultipartParser::finish() {
    if (status_ != MultipartStatus::ok || complete()) {
        return status_;
    }
    return fail(state_ == State::preamble ? MultipartStatus::missing_first_delimiter
                                          : MultipartStatus::truncated);
}

bool MultipartParser::complete() const {
    return state_ == State::epilogue;
}

std::string_view MultipartParser::delimiter() const {
    return {delimiter_.data(), delimiter_size_};
}

// Delivers the span's bytes up to the next delimiter, keeping back a tail that may begin one.
std::string_view MultipartParser::scan_for_delimiter(std::string_view span) {
    if (held_ > 0) {
        return scan_across_edge(span);
    }
    const auto at = span.find(delimiter());
    if (at != npos) {
        if (deliver(span.substr(0, at))) {
            reach_delimiter();
        }
        return span.substr(at + delimiter_size_);
    }
    const auto keep = delimiter_prefix_at_end(span);
    if (deliver(span.substr(0, span.size() - keep))) {
        hold(span.substr(span.size() - keep));
    }
    return {};
}

// The held tail joined with the span's first delimiter_size - 1 bytes holds whole any delimiter
// that starts in the tail; one that starts later is left to the plain scan of the span.
std::string_view MultipartParser::scan_across_edge(std::string_view span) {
    const std::size_t held = held_;
    const std::size_t joined = std::min(span.size(), delimiter_size_ - 1);
    std::memcpy(window_.data() + held, span.data(), joined);
    const std::string_view window(window_.data(), held + joined);
    held_ = 0;
    const auto at = window.find(delimiter());
    if (at != npos) {
        if (deliver(window.substr(0, at))) {
            reach_delimiter();
        }
        return span.substr(at + delimiter_size_ - held);
    }
    if (joined == span.size()) {  // the window ends where the span does: its own tail may begin a
                                  // delimiter
        const auto keep = delimiter_prefix_at_end(window);
        if (deliver(window.substr(0, window.size() - keep))) {
            hold(window.substr(window.size() - keep));
        }
        return {};
    }
    deliver(window.substr(0, held));  // no delimiter starts in the held bytes
    return span;
}

// Size of the longest tail of bytes that is a proper prefix of the delimiter: what must be held
// back.
std::size_t MultipartParser::delimiter_prefix_at_end(std::string_view bytes) const {
    const auto delimiter = this->delimiter();
    const std::size_t from =
        bytes.size() >= delimiter.size() ? bytes.size() - (delimiter.size() - 1) : 0;
    for (auto at = bytes.find(delimiter.front(), from); at != npos;
         at = bytes.find(delimiter.front(), at + 1)) {
        const auto tail = bytes.substr(at);
        if (delimiter.substr(0, tail.size()) == tail) {
            return tail.size();
        }
    }
    return 0;
}

void MultipartParser::hold(std::string_view tail) {
    std::memmove(window_.data(), tail.data(), tail.size());  // tail may already lie in window_
    held_ = tail.size();
}

// Part bytes go to the sink; preamble bytes are dropped.
bool MultipartParser::deliver(std::string_view bytes) {
    if (state_ != State::part_data || bytes.empty() || sink_.on_part_data(bytes)) {
        return true;
    }
    fail(MultipartStatus::stopped);
    return false;
}

void MultipartParser::reach_delimiter() {
    if (state_ == State::part_data && !sink_.on_part_end()) {
        fail(MultipartStatus::stopped);
        return;
    }
    state_ = State::after_delimiter;
}

// After "\r\n--boundary" comes "--" (the close delimiter) or transport padding and CRLF.
std::string_view MultipartParser::read_boundary_line(std::string_view span) {
    const char next = span.front();
    if (state_ == State::after_delimiter) {
        state_ = next == '-' ? State::close_dash : State::line_padding;
        return next == '-' ? span.substr(1) : span;
    }
    if (state_ == State::close_dash) {
        if (next != '-') {
            return reject_boundary_line();
        }
        state_ = State::epilogue;  // whatever follows, even nothing, is epilogue: RFC 2046 says to
                                   // ignore it
        return span.substr(1);
    }
    if (state_ == State::line_padding) {
        const auto end = span.find_first_not_of(kSpaceOrTab);
        if (end == npos) {
            return {};
        }
        if (span[end] != '\r') {
            return reject_boundary_line();
        }
        state_ = State::line_feed;
        return span.substr(end + 1);
    }
    if (next != '\n') {  // State::line_feed
        return reject_boundary_line();
    }
    start_part_headers();
    return span.substr(1);
}

std::string_view MultipartParser::reject_boundary_line() {
    fail(MultipartStatus::garbage_after_boundary);
    return {};
}

// The header block is kept after the CRLF ending the boundary line, so that a part with no header
// lines ends at the same "\r\n\r\n" as any other.
void MultipartParser::start_part_headers() {
    header_.assign(kCrlf);
    state_ = State::part_headers;
}

std::string_view MultipartParser::read_part_headers(std::string_view span) {
    const std::size_t old_size = header_.size();
    const std::size_t capacity = kCrlf.size() + max_header_bytes_;
    // Copy no further than the block's end: a form of many tiny parts must not cost a full buffer
    // each.
    const auto end_in_span = span.find(kHeaderBlockEnd);
    const auto wanted = end_in_span == npos ? span.size() : end_in_span + kHeaderBlockEnd.size();
    header_.append(span.substr(0, std::min(wanted, capacity - old_size)));
    // The block's end may also begin in the bytes kept from earlier spans.
    const auto end =
        header_.find(kHeaderBlockEnd, old_size - std::min(old_size, kHeaderBlockEnd.size() - 1));
    if (end == npos) {
        if (header_.size() == capacity) {
            fail(MultipartStatus::header_too_large);
        }
        return {};
    }
    begin_part(std::string_view(header_).substr(0, end));
    return span.substr(end + kHeaderBlockEnd.size() - old_size);
}

void MultipartParser::begin_part(std::string_view crlf_header_lines) {
    PartHeaders part;
    const auto status = parse_part_headers(crlf_header_lines, decoded_, part);
    if (status != MultipartStatus::ok) {
        fail(status);
    } else if (!sink_.on_part_begin(part)) {
        fail(MultipartStatus::stopped);
    } else {
        state_ = State::part_data;
    }
}

MultipartStatus MultipartParser::fail(MultipartStatus status) {
    status_ = status;
    return status;
}

}  // namespace chatterd
