// Which hosts of a libpq conninfo libpq would look up by name. libpq resolves names with a
// blocking getaddrinfo inside PQconnectPoll, which would stall every request of an nginx
// worker behind a slow DNS server: chatterd accepts only hosts that need no lookup.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace chatterd {

// host and hostaddr as libpq takes them: comma-separated lists, position by position.
// Returns the first host that has no address (no hostaddr entry at its position) and is
// neither a unix-socket directory, an IP address, nor "localhost" (answered from /etc/hosts).
std::optional<std::string> first_host_needing_lookup(std::string_view host,
                                                     std::string_view hostaddr);

}  // namespace chatterd
