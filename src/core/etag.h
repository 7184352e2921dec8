// A strong entity tag of a listing, derived from its bytes only: two nodes (or two workers)
// that hold the same rows give the same tag, so a client revalidates behind a load balancer.
#pragma once

#include <string>
#include <string_view>

namespace chatterd {

// "<22 base64url characters>": the first 128 bits of the SHA-256 of the bytes, quoted.
class EtagHasher {
public:
    EtagHasher();
    ~EtagHasher();
    EtagHasher(const EtagHasher&) = delete;
    EtagHasher& operator=(const EtagHasher&) = delete;

    void update(std::string_view bytes);
    // The tag, quotes included; throws std::bad_alloc when OpenSSL had no memory.
    std::string finish();

    static constexpr std::size_t kLength = 24;  // quotes included

private:
    struct Context;
    Context* context_;
};

}  // namespace chatterd
