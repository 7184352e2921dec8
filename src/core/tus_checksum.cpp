#include "core/tus_checksum.h"

#include "core/tus_headers.h"

#include <stdexcept>

#include <openssl/evp.h>

namespace chatterd {
namespace {

const EVP_MD* digest_of(std::string_view algorithm) {
    if (algorithm == "sha1") return EVP_sha1();
    if (algorithm == "md5") return EVP_md5();
    if (algorithm == "sha256") return EVP_sha256();
    return nullptr;
}

}  // namespace

std::optional<UploadChecksum> parse_upload_checksum(std::string_view value) {
    std::size_t space = value.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    std::string_view algorithm = value.substr(0, space);
    const EVP_MD* md = digest_of(algorithm);
    std::optional<std::string> digest = decode_base64(value.substr(space + 1));
    if (md == nullptr || !digest || digest->size() != static_cast<std::size_t>(EVP_MD_size(md)))
        return std::nullopt;
    return UploadChecksum{std::string(algorithm), std::move(*digest)};
}

struct ChecksumHasher::Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
};

ChecksumHasher::ChecksumHasher(const std::string& algorithm) : context_(new Context) {
    const EVP_MD* md = digest_of(algorithm);
    if (context_->ctx == nullptr || md == nullptr
        || EVP_DigestInit_ex(context_->ctx, md, nullptr) != 1)
        throw std::runtime_error("cannot start a " + algorithm + " digest");
}

ChecksumHasher::~ChecksumHasher() = default;

void ChecksumHasher::feed(std::string_view bytes) {
    if (EVP_DigestUpdate(context_->ctx, bytes.data(), bytes.size()) != 1)
        throw std::runtime_error("digest update failed");
}

bool ChecksumHasher::matches(const std::string& digest) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(context_->ctx, out, &size) != 1)
        throw std::runtime_error("digest final failed");
    return digest == std::string_view(reinterpret_cast<const char*>(out), size);
}

}  // namespace chatterd
