#include "core/etag.h"

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
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 128 bits: 21 groups of 6, then the last 2 bits.
    std::string tag = "\"";
    unsigned int bits = 0, pending = 0;
    for (int i = 0; i < 16; i++) {
        bits = (bits << 8) | digest[i];
        pending += 8;
        while (pending >= 6) {
            pending -= 6;
            tag += alphabet[(bits >> pending) & 0x3f];
        }
    }
    tag += alphabet[(bits << (6 - pending)) & 0x3f];
    tag += '"';
    return tag;
}

}  // namespace chatterd
