#include "core/etag.h"

#include "core/base64url.h"

#include <openssl/evp.h>

#include <new>

namespace chatterd {

// OpenSSL's digest context behind an opaque pointer: the header stays free of OpenSSL.
struct EtagHasher::Context {
    EVP_MD_CTX* md = nullptr;
    bool ok = false;
};

EtagHasher::EtagHasher() : context_(new Context) {
    context_->md = EVP_MD_CTX_new();
    context_->ok =
        context_->md != nullptr && EVP_DigestInit_ex(context_->md, EVP_sha256(), nullptr) == 1;
}

EtagHasher::~EtagHasher() {
    EVP_MD_CTX_free(context_->md);
    delete context_;
}

void EtagHasher::update(std::string_view bytes) {
    if (context_->ok && !bytes.empty())
        context_->ok = EVP_DigestUpdate(context_->md, bytes.data(), bytes.size()) == 1;
}

std::string EtagHasher::finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!context_->ok || EVP_DigestFinal_ex(context_->md, digest, &size) != 1 || size < 16)
        throw std::bad_alloc();
    // 128 bits: 22 characters.
    std::string tag = "\"" + base64url({reinterpret_cast<const char*>(digest), 16});
    tag += '"';
    return tag;
}

}  // namespace chatterd
