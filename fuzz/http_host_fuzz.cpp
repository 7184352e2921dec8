// libFuzzer target for the Host check (core/http_host: valid_http_host), whose accepted values are
// copied into the media URLs served to every app user. Input: the Host header value. An accepted
// value must be made only of the characters of a host name, an IPv6 literal and a port (nothing
// that changes a URL's meaning or HTML around it: no '@', '/', '\\', '?', '#', '%', quotes, angle
// brackets, spaces, controls or non-ASCII), brackets only around the whole host, a port of at most
// 65535, and a name of at most 253 bytes.
#include "core/http_host.h"

#include "check.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace {

using chatterd_fuzz::check;

bool host_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '.' || c == '_' || c == ':' || c == '[' || c == ']';
}

void check_accepted(std::string_view host) {
    for (char c : host) {
        check(host_character(c), "accepted a character that is not a host's");
    }
    std::string_view name = host;
    const std::size_t bracket = host.rfind(']');
    if (!host.empty() && host.front() == '[') {
        check(bracket != std::string_view::npos, "accepted an unclosed '['");
        check(host.find('[', 1) == std::string_view::npos, "accepted a second '['");
        check(host.find(']') == bracket, "accepted a second ']'");
        name = host.substr(1, bracket - 1);
        host.remove_prefix(bracket + 1);
        check(host.empty() || host.front() == ':', "accepted bytes between ']' and the port");
    } else {
        check(host.find_first_of("[]") == std::string_view::npos,
              "accepted a bracket outside an IPv6 literal");
        const std::size_t colon = host.find(':');
        check(colon == host.rfind(':'), "accepted two colons outside an IPv6 literal");
        name = host.substr(0, colon);
        host.remove_prefix(colon == std::string_view::npos ? host.size() : colon);
        check(!name.empty() && name.size() <= 253, "accepted a name of 0 or more than 253 bytes");
    }
    if (!host.empty()) {  // ":port"
        const std::string_view port = host.substr(1);
        check(!port.empty() && port.size() <= 5
                  && port.find_first_not_of("0123456789") == std::string_view::npos,
              "accepted a port that is not 1 to 5 digits");
        check(std::stoul(std::string(port)) <= 65535, "accepted a port past 65535");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string host(reinterpret_cast<const char*>(data),
                           size);  // exactly its size on the heap
    const bool accepted = chatterd::valid_http_host(host);
    check(accepted == chatterd::valid_http_host(host), "two checks of one host differ");
    if (accepted) {
        check_accepted(host);
    }
    return 0;
}
