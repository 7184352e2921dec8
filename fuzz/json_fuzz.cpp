// libFuzzer target for the postchatt body parser (core/json: parse_chatt_json).
// Input: byte 0 picks the mode (bit 0); the rest is the payload.
//   raw mode:        the payload is the body. Parsing must give the same verdict twice; a
//                    refusal must say why; accepted fields must be valid UTF-8 (as PostgreSQL
//                    checks it) without NUL.
//   structured mode: the payload, cut at the first 0xFE byte, is a username and a message, sent
//                    as a JSON object with json_string's escaping (and a third, ignored key).
//                    They must come back byte-exact when they are valid UTF-8 without NUL, and be
//                    refused otherwise.
#include "core/json.h"
#include "core/utf8.h"

#include "check.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace {

using chatterd::ChattFields;
using chatterd::first_invalid_utf8;
using chatterd::json_string;
using chatterd::parse_chatt_json;

using chatterd_fuzz::check;

bool storable(std::string_view text) {
    return text.find('\0') == std::string_view::npos && !first_invalid_utf8(text);
}

void check_raw(std::string_view body) {
    // The body in its own heap block of exactly its size: a read past its end is an ASan report.
    const std::string copy(body);
    std::string why;
    const auto fields = parse_chatt_json(copy, why);
    std::string why_again;
    const auto again = parse_chatt_json(copy, why_again);
    check(fields.has_value() == again.has_value() && why == why_again,
          "two parses of one body differ");
    if (!fields) {
        check(!why.empty(), "refused without a reason");
        return;
    }
    check(fields->username == again->username && fields->message == again->message,
          "two parses differ");
    check(storable(fields->username), "accepted a username PostgreSQL cannot store");
    check(storable(fields->message), "accepted a message PostgreSQL cannot store");
}

void check_structured(std::string_view payload) {
    const std::size_t cut = payload.find('\xFE');
    const std::string_view username = payload.substr(0, cut);
    const std::string_view message =
        cut == std::string_view::npos ? std::string_view() : payload.substr(cut + 1);
    const std::string body = "{\"other\":[1,{\"username\":2}]," + std::string("\"username\":")
                             + json_string(username) + ",\"message\":" + json_string(message) + "}";
    std::string why;
    const auto fields = parse_chatt_json(body, why);
    if (storable(username) && storable(message)) {
        check(fields.has_value(), "refused a well-formed chatt");
        check(fields->username == username && fields->message == message,
              "fields not parsed back exactly");
    } else {
        check(!fields.has_value() && !why.empty(), "accepted a chatt PostgreSQL cannot store");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] & 1) {
        check_structured(payload);
    } else {
        check_raw(payload);
    }
    return 0;
}
