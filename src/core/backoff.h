// The delays between a pool's attempts to reach a database that refused it: doubling from a
// first delay up to a ceiling, each drawn at random from the upper half of its nominal value,
// so that the workers of many nginx nodes do not knock on a recovering database in step.
#pragma once

#include <cstdint>

namespace chatterd {

class Backoff {
public:
    Backoff(std::uint64_t first_ms, std::uint64_t max_ms)
        : first_ms_(first_ms), max_ms_(max_ms < first_ms ? first_ms : max_ms) {}

    // The delay before the next attempt, in milliseconds; random is a uniform 32-bit draw.
    std::uint64_t next(std::uint32_t random);
    // The database answered: the next failure starts again from the first delay.
    void reset() { nominal_ms_ = 0; }
    std::uint64_t first_ms() const { return first_ms_; }

private:
    std::uint64_t first_ms_;
    std::uint64_t max_ms_;
    std::uint64_t nominal_ms_ = 0;  // 0: no failure since the last success
};

}  // namespace chatterd
