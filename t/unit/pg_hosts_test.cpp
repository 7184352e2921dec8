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

}  // namespace
}  // namespace chatterd
