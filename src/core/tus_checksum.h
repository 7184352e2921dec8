// tus's checksum extension: "Upload-Checksum: <algorithm> <base64 digest>" names the digest of
// one PATCH's bytes, computed here as they arrive and compared once they have all arrived.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chatterd {

// The algorithms Tus-Checksum-Algorithm announces, as the header spells them.
constexpr std::string_view kTusChecksumAlgorithms = "sha1,md5,sha256";

struct UploadChecksum {
    std::string algorithm;  // "sha1", "md5" or "sha256"
    std::string digest;     // the raw bytes the client announced
};

// std::nullopt for a malformed value, an algorithm not announced, or a digest of the wrong
// length for its algorithm (all answered 400).
std::optional<UploadChecksum> parse_upload_checksum(std::string_view value);

// The digest of the bytes fed so far, with an algorithm of kTusChecksumAlgorithms.
class ChecksumHasher {
public:
    explicit ChecksumHasher(const std::string& algorithm);  // throws std::runtime_error
    ~ChecksumHasher();
    ChecksumHasher(const ChecksumHasher&) = delete;
    ChecksumHasher& operator=(const ChecksumHasher&) = delete;

    void feed(std::string_view bytes);
    // Whether the bytes fed have this digest; ends the hashing.
    bool matches(const std::string& digest);

private:
    struct Context;
    std::unique_ptr<Context> context_;
};

}  // namespace chatterd
