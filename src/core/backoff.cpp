#include "core/backoff.h"

namespace chatterd {

std::uint64_t Backoff::next(std::uint32_t random) {
    if (nominal_ms_ == 0) {
        nominal_ms_ = first_ms_;
    } else {
        nominal_ms_ = nominal_ms_ > max_ms_ / 2 ? max_ms_ : nominal_ms_ * 2;
    }
    std::uint64_t half = nominal_ms_ / 2;
    return nominal_ms_ - half + random % (half + 1);
}

}  // namespace chatterd
