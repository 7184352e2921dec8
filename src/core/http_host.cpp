#include "core/http_host.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

namespace chatterd {
namespace {

constexpr std::size_t kMaxNameLength = 253;  // the longest DNS name, without its trailing dot

bool name_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '.' || c == '_';
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameLength) {
        return false;
    }
    for (char c : name) {
        if (!name_character(c)) {
            return false;
        }
    }
    return true;
}

bool valid_ipv6_literal(std::string_view literal) {
    if (literal.size() < 2 || literal.front() != '[' || literal.back() != ']') {
        return false;
    }
    std::string address(literal.substr(1, literal.size() - 2));
    if (address.find('\0') != std::string::npos) {
        return false;  // inet_pton would read only up to it: "[::1\0<anything>]" would pass
    }
    in6_addr parsed;
    return inet_pton(AF_INET6, address.c_str(), &parsed)
           == 1;  // refuses zones ("%eth0") and anything else
}

bool valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5) {
        return false;
    }
    unsigned long value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    return value <= 65535;
}

}  // namespace

bool valid_http_host(std::string_view host) {
    std::string_view port;
    std::size_t colon = host.rfind(':');
    std::size_t bracket = host.rfind(']');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
        if (!valid_port(port)) {
            return false;
        }
    }
    if (!host.empty() && host.front() == '[') {
        return valid_ipv6_literal(host);
    }
    return valid_name(host);
}

}  // namespace chatterd
