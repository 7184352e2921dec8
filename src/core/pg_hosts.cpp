#include "core/pg_hosts.h"

#include <arpa/inet.h>

#include <cstdlib>

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

namespace {
const std::string* find_option(const ConninfoOptions& options, std::string_view keyword) {
    for (const ConninfoOption& option : options) {
        if (option.keyword == keyword) return &option.value;
    }
    return nullptr;
}

std::vector<std::string> list_of(const ConninfoOptions& options, std::string_view keyword) {
    const std::string* value = find_option(options, keyword);
    return value != nullptr ? split_commas(*value) : std::vector<std::string>{};
}
}  // namespace

std::vector<ConninfoOptions> conninfo_per_host(const ConninfoOptions& options) {
    std::vector<std::string> hosts = list_of(options, "host");
    std::vector<std::string> addresses = list_of(options, "hostaddr");
    std::vector<std::string> ports = list_of(options, "port");
    std::size_t count = hosts.size() > addresses.size() ? hosts.size() : addresses.size();
    bool lists_agree = (hosts.empty() || addresses.empty() || hosts.size() == addresses.size())
                       && (ports.size() <= 1 || ports.size() == count);
    if (count <= 1 || !lists_agree) return {options};
    std::vector<ConninfoOptions> per_host(count);
    for (std::size_t i = 0; i < count; i++) {
        for (const ConninfoOption& option : options) {
            const std::vector<std::string>* list = option.keyword == "host"       ? &hosts
                                                   : option.keyword == "hostaddr" ? &addresses
                                                   : option.keyword == "port"     ? &ports
                                                                                  : nullptr;
            if (list == nullptr) {
                per_host[i].push_back(option);
            } else {
                per_host[i].push_back({option.keyword, (*list)[list->size() == 1 ? 0 : i]});
            }
        }
    }
    return per_host;
}

unsigned long connect_timeout_ms(const ConninfoOptions& options) {
    const std::string* value = find_option(options, "connect_timeout");
    if (value == nullptr) return 0;
    long seconds = std::strtol(value->c_str(), nullptr, 10);
    if (seconds <= 0) return 0;
    return static_cast<unsigned long>(seconds < 2 ? 2 : seconds) * 1000;
}

}  // namespace chatterd
