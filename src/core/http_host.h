// The Host a client sent, as chatterd copies it into the media URLs it stores and serves to
// every app user: a value that is not plainly a host would poison those URLs for everyone
// ("chatter.example@evil.example" points them at evil.example; "\"><script>" at nothing).
#pragma once

#include <string_view>

namespace chatterd {

// Whether host (a Host header value, RFC 9110's uri-host [":" port]) is a host chatterd
// builds URLs from:
//   - a name of 1 to 253 ASCII letters, digits, '-', '.' and '_' (RFC 3986's reg-name
//     without its pct-encoded forms and sub-delims, and without '~': nothing a real host
//     name needs, nothing that changes the meaning of a URL or of HTML around it); an
//     IPv4 address is such a name;
//   - or an IPv6 address in brackets ("[::1]"; no zone, no IPvFuture);
// then optionally ':' and a port of 1 to 5 digits, at most 65535.
bool valid_http_host(std::string_view host);

}  // namespace chatterd
