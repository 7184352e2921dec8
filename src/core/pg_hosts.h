// The hosts of a libpq conninfo: which ones libpq would look up by name, and the conninfo cut
// into one per host.
//   libpq resolves names with a blocking getaddrinfo inside PQconnectPoll, which would stall
//   every request of an nginx worker behind a slow DNS server: chatterd accepts only hosts
//   that need no lookup.
//   libpq applies connect_timeout only in its blocking connects, and in a non-blocking connect
//   moves to the next host only when the current one fails: a host that drops SYNs would hold
//   every attempt until the kernel gives up, minutes later. chatterd tries each host on its own
//   instead, under its own deadline.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatterd {

// host and hostaddr as libpq takes them: comma-separated lists, position by position.
// Returns the first host that has no address (no hostaddr entry at its position) and is
// neither a unix-socket directory, an IP address, nor "localhost" (answered from /etc/hosts).
std::optional<std::string> first_host_needing_lookup(std::string_view host,
                                                     std::string_view hostaddr);

struct ConninfoOption {
    std::string keyword;
    std::string value;
};
using ConninfoOptions = std::vector<ConninfoOption>;

// One conninfo per host of a multi-host conninfo, in order: host, hostaddr and port hold the
// host's own entry (a single port serves every host, as in libpq), every other option is kept
// as given (target_session_attrs, connect_timeout, sslmode...). A conninfo of one host, or whose
// lists libpq would refuse (host and hostaddr, or port, of other lengths), comes back whole:
// libpq then reports what is wrong.
std::vector<ConninfoOptions> conninfo_per_host(const ConninfoOptions& options);

// The deadline libpq's connect_timeout asks for each host, in milliseconds: 0 when it is unset
// or not positive (no deadline of its own); libpq takes 1 second as 2.
unsigned long connect_timeout_ms(const ConninfoOptions& options);

}  // namespace chatterd
