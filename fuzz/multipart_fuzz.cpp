// libFuzzer target for the streaming multipart parser.
// Input: byte 0 picks the boundary (bits 0-1) and the mode (bit 2); byte 1 picks how the body is
// cut into spans; the rest is the payload.
//   raw mode:        the payload is the body; feeding it whole and in pieces must give the
//                    same events, which must be well nested, and no part's data may contain
//                    the delimiter.
//   structured mode: the payload, split at 0xFE bytes, is the content of successive parts of a
//                    well-formed form; every content must come back byte-exact.
#include "core/multipart.h"

#include <algorithm>
#include "check.h"

#include <cstdint>
#include <string>
#include <vector>

namespace {

using chatterd::MultipartParser;
using chatterd::MultipartStatus;
using chatterd::PartHeaders;

constexpr std::string_view kBoundaries[] = {"XyZ", "------------------------d74496d66958873e", "--",
                                            "a"};
constexpr char kContentSeparator = '\xFE';

using chatterd_fuzz::check;

// Records events with consecutive data merged, and checks their nesting as they come.
class CheckingSink : public chatterd::MultipartSink {
public:
    explicit CheckingSink(std::string delimiter) : delimiter_(std::move(delimiter)) {}

    std::vector<std::string> events;

    bool on_part_begin(const PartHeaders& part) override {
        check(!in_part_, "part begins inside a part");
        check(part.has_filename || part.filename.empty(), "filename without has_filename");
        in_part_ = true;
        events.push_back("begin " + std::string(part.name) + '\0' + std::string(part.filename)
                         + '\0' + std::string(part.content_type) + (part.has_filename ? "+" : "-"));
        return true;
    }
    bool on_part_data(std::string_view bytes) override {
        check(in_part_, "data outside a part");
        check(!bytes.empty(), "empty data span");
        if (events.back().rfind("data ", 0) != 0) {
            events.emplace_back("data ");
        }
        events.back().append(bytes);
        return true;
    }
    bool on_part_end() override {
        check(in_part_, "part ends outside a part");
        const bool had_data = events.back().rfind("data ", 0) == 0;
        check(!had_data || events.back().find(delimiter_) == std::string::npos,
              "part data holds the delimiter");
        in_part_ = false;
        events.emplace_back("end");
        return true;
    }

private:
    std::string delimiter_;
    bool in_part_ = false;
};

struct Outcome {
    std::vector<std::string> events;
    MultipartStatus status;
    bool complete;

    bool operator==(const Outcome& other) const {
        return events == other.events && status == other.status && complete == other.complete;
    }
};

// Span sizes: 1 byte each when cut_seed is 0, else pseudo-random sizes up to cut_seed.
std::vector<std::size_t> span_sizes(std::size_t body_size, std::uint8_t cut_seed) {
    std::vector<std::size_t> sizes;
    std::uint32_t state = cut_seed;
    for (std::size_t fed = 0; fed < body_size;) {
        state = state * 1103515245u + 12345u;
        const std::size_t size = cut_seed == 0 ? 1 : 1 + (state >> 16) % cut_seed;
        sizes.push_back(size);
        fed += size;
    }
    return sizes;
}

Outcome parse(std::string_view body, std::string_view boundary,
              const std::vector<std::size_t>& sizes) {
    CheckingSink sink("\r\n--" + std::string(boundary));
    MultipartParser parser(boundary, sink, 512);
    MultipartStatus status = MultipartStatus::ok;
    for (std::size_t size : sizes) {
        const auto fed = parser.feed(body.substr(0, size));
        check(status == MultipartStatus::ok || fed == status, "status changed after an error");
        status = fed;
        body.remove_prefix(std::min(size, body.size()));
    }
    const auto finished = parser.finish();
    check(status == MultipartStatus::ok || finished == status, "finish changed the error");
    check((finished == MultipartStatus::ok) == parser.complete(),
          "finish disagrees with complete()");
    return {sink.events, finished, parser.complete()};
}

void check_raw_body(std::string_view body, std::string_view boundary, std::uint8_t cut_seed) {
    const auto whole = parse(body, boundary, {body.size()});
    check(parse(body, boundary, span_sizes(body.size(), cut_seed)) == whole,
          "pieces and whole body differ");
}

void check_structured_form(std::string_view payload, std::string_view boundary,
                           std::uint8_t cut_seed) {
    const std::string dash_boundary = "--" + std::string(boundary);
    std::string body;
    std::vector<std::string> expected;
    for (std::size_t index = 0; !payload.empty() || index == 0; ++index) {
        const auto content = payload.substr(0, payload.find(kContentSeparator));
        payload.remove_prefix(std::min(payload.size(), content.size() + 1));
        if (content.find("\r\n" + dash_boundary) != std::string_view::npos) {
            return;  // such content cannot be sent with this boundary
        }
        const std::string name = "p" + std::to_string(index);
        body += dash_boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n";
        body.append(content).append("\r\n");
        expected.push_back("begin " + name + '\0' + '\0' + '-');
        if (!content.empty()) {
            expected.push_back("data " + std::string(content));
        }
        expected.emplace_back("end");
    }
    body += dash_boundary + "--";
    check(parse(body, boundary, span_sizes(body.size(), cut_seed))
              == Outcome{expected, MultipartStatus::ok, true},
          "well-formed form not parsed back exactly");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const std::string_view boundary = kBoundaries[data[0] & 3];
    const bool structured = (data[0] & 4) != 0;
    const std::string_view payload(reinterpret_cast<const char*>(data) + 2, size - 2);
    if (structured) {
        check_structured_form(payload, boundary, data[1]);
    } else {
        check_raw_body(payload, boundary, data[1]);
    }
    return 0;
}
