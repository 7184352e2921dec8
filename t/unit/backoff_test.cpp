#include "core/backoff.h"

#include <gtest/gtest.h>

namespace chatterd {
namespace {

TEST(Backoff, DoublesFromTheFirstDelayUpToTheCeiling) {
    Backoff backoff(100, 1000);
    // The largest draw gives the nominal delay itself.
    EXPECT_EQ(backoff.next(50), 100u);
    std::uint64_t nominal[] = {200, 400, 800, 1000, 1000};
    for (std::uint64_t expected : nominal) {
        std::uint64_t half = expected / 2;
        EXPECT_EQ(backoff.next(static_cast<std::uint32_t>(half)), expected);
    }
}

TEST(Backoff, EveryDelayIsInTheUpperHalfOfItsNominalValue) {
    Backoff backoff(100, 10000);
    std::uint64_t nominal = 100;
    for (int attempt = 0; attempt < 12; attempt++) {
        for (std::uint32_t random : {0u, 1u, 12345u, 0x7fffffffu, UINT32_MAX}) {
            Backoff probe = backoff;
            std::uint64_t delay = probe.next(random);
            EXPECT_GE(delay, nominal - nominal / 2) << "attempt " << attempt;
            EXPECT_LE(delay, nominal) << "attempt " << attempt;
        }
        backoff.next(0);
        nominal = nominal * 2 > 10000 ? 10000 : nominal * 2;
    }
}

TEST(Backoff, DrawsSpreadTheDelays) {
    Backoff a(1000, 1000), b(1000, 1000);
    EXPECT_NE(a.next(0), b.next(499));
}

TEST(Backoff, ResetStartsAgainFromTheFirstDelay) {
    Backoff backoff(100, 5000);
    for (int i = 0; i < 10; i++) backoff.next(0);
    backoff.reset();
    EXPECT_EQ(backoff.next(50), 100u);
}

TEST(Backoff, ACeilingBelowTheFirstDelayIsTheFirstDelay) {
    Backoff backoff(500, 100);
    EXPECT_EQ(backoff.next(250), 500u);
    EXPECT_EQ(backoff.next(250), 500u);
}

}  // namespace
}  // namespace chatterd
