#include "core/pg_hosts.h"

#include <gtest/gtest.h>

namespace chatterd {
namespace {

TEST(PgHosts, AddressesSocketsAndLocalhostNeedNoLookup) {
    EXPECT_EQ(first_host_needing_lookup("", ""), std::nullopt);
    EXPECT_EQ(first_host_needing_lookup("/var/run/postgresql", ""), std::nullopt);
    EXPECT_EQ(first_host_needing_lookup("@abstract", ""), std::nullopt);
    EXPECT_EQ(first_host_needing_lookup("127.0.0.1,::1,fe80::1", ""), std::nullopt);
    EXPECT_EQ(first_host_needing_lookup("localhost", ""), std::nullopt);
}

TEST(PgHosts, ANameWithoutItsAddressNeedsALookup) {
    EXPECT_EQ(first_host_needing_lookup("db.example.org", ""), "db.example.org");
    EXPECT_EQ(first_host_needing_lookup("10.0.0.1,db2", ""), "db2");
    EXPECT_EQ(first_host_needing_lookup("10.0.0.1,db2,db3", "10.0.0.1,,10.0.0.3"), "db2");
    // Not quite addresses.
    EXPECT_EQ(first_host_needing_lookup("10.0.0", ""), "10.0.0");
    EXPECT_EQ(first_host_needing_lookup("localhost.localdomain", ""), "localhost.localdomain");
}

TEST(PgHosts, AnAddressAtTheSamePositionIsUsedInstead) {
    EXPECT_EQ(first_host_needing_lookup("db1,db2", "10.0.0.1,10.0.0.2"), std::nullopt);
    EXPECT_EQ(first_host_needing_lookup("db1", "10.0.0.1"), std::nullopt);
    // No host at all, addresses only.
    EXPECT_EQ(first_host_needing_lookup("", "10.0.0.1,10.0.0.2"), std::nullopt);
}

// The options of each host, as keyword=value words.
std::vector<std::string> words(const ConninfoOptions& options) {
    std::vector<std::string> out;
    for (const ConninfoOption& option : options) out.push_back(option.keyword + "=" + option.value);
    return out;
}

using Words = std::vector<std::string>;

TEST(PgHosts, EachHostGetsItsOwnEntriesAndEveryOtherOption) {
    ConninfoOptions options = {{"host", "10.0.0.1,10.0.0.2"},
                               {"port", "5432,5433"},
                               {"dbname", "chatterdb"},
                               {"target_session_attrs", "read-write"},
                               {"connect_timeout", "2"}};
    std::vector<ConninfoOptions> hosts = conninfo_per_host(options);
    ASSERT_EQ(hosts.size(), 2u);
    EXPECT_EQ(words(hosts[0]), (Words{"host=10.0.0.1", "port=5432", "dbname=chatterdb",
                                      "target_session_attrs=read-write", "connect_timeout=2"}));
    EXPECT_EQ(words(hosts[1]), (Words{"host=10.0.0.2", "port=5433", "dbname=chatterdb",
                                      "target_session_attrs=read-write", "connect_timeout=2"}));
}

TEST(PgHosts, OnePortServesEveryHostAndAddressesFollowTheirHosts) {
    ConninfoOptions options = {
        {"host", "db1,db2,/run/pg"}, {"hostaddr", "10.0.0.1,10.0.0.2,"}, {"port", "6432"}};
    std::vector<ConninfoOptions> hosts = conninfo_per_host(options);
    ASSERT_EQ(hosts.size(), 3u);
    EXPECT_EQ(words(hosts[1]), (Words{"host=db2", "hostaddr=10.0.0.2", "port=6432"}));
    EXPECT_EQ(words(hosts[2]), (Words{"host=/run/pg", "hostaddr=", "port=6432"}));
    // Addresses alone.
    hosts = conninfo_per_host({{"hostaddr", "10.0.0.1,10.0.0.2"}});
    ASSERT_EQ(hosts.size(), 2u);
    EXPECT_EQ(words(hosts[1]), (Words{"hostaddr=10.0.0.2"}));
}

TEST(PgHosts, OneHostOrListsLibpqRefusesComeBackWhole) {
    ConninfoOptions one = {{"host", "/run/pg"}, {"port", "5432"}, {"user", "u"}};
    ASSERT_EQ(conninfo_per_host(one).size(), 1u);
    EXPECT_EQ(words(conninfo_per_host(one)[0]), words(one));
    ConninfoOptions ports = {{"host", "a,b,c"}, {"port", "1,2"}};
    ASSERT_EQ(conninfo_per_host(ports).size(), 1u);
    EXPECT_EQ(words(conninfo_per_host(ports)[0]), words(ports));
    ConninfoOptions addresses = {{"host", "a,b"}, {"hostaddr", "10.0.0.1"}};
    EXPECT_EQ(conninfo_per_host(addresses).size(), 1u);
    EXPECT_EQ(conninfo_per_host({}).size(), 1u);
}

TEST(PgHosts, ConnectTimeoutAsLibpqReadsIt) {
    EXPECT_EQ(connect_timeout_ms({}), 0u);
    EXPECT_EQ(connect_timeout_ms({{"connect_timeout", "0"}}), 0u);
    EXPECT_EQ(connect_timeout_ms({{"connect_timeout", "-3"}}), 0u);
    EXPECT_EQ(connect_timeout_ms({{"connect_timeout", "1"}}), 2000u);
    EXPECT_EQ(connect_timeout_ms({{"connect_timeout", "7"}}), 7000u);
}

}  // namespace
}  // namespace chatterd
