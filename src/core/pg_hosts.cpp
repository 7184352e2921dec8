#include "core/pg_hosts.h"

#include <arpa/inet.h>

#include <vector>

namespace chatterd {

namespace {
std::vector<std::string> split_commas(std::string_view list) {
    std::vector<std::string> items;
    if (list.empty()) return items;
    std::size_t start = 0;
    while (true) {
        std::size_t comma = list.find(',', start);
        items.emplace_back(
            list.substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (comma == std::string_view::npos) return items;
        start = comma + 1;
    }
}

bool needs_no_lookup(const std::string& host) {
    if (host.empty() || host[0] == '/' || host[0] == '@' || host == "localhost") return true;
    unsigned char address[16];
    return inet_pton(AF_INET, host.c_str(), address) == 1
           || inet_pton(AF_INET6, host.c_str(), address) == 1;
}
}  // namespace

std::optional<std::string> first_host_needing_lookup(std::string_view host,
                                                     std::string_view hostaddr) {
    std::vector<std::string> hosts = split_commas(host);
    std::vector<std::string> addresses = split_commas(hostaddr);
    for (std::size_t i = 0; i < hosts.size(); i++) {
        bool has_address = i < addresses.size() && !addresses[i].empty();
        if (!has_address && !needs_no_lookup(hosts[i])) return hosts[i];
    }
    return std::nullopt;
}

}  // namespace chatterd
