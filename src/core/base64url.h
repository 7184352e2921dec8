// base64url (RFC 4648 §5) without padding: the listings' ETags and the pages' cursors.
#pragma once

#include <string>
#include <string_view>

namespace chatterd {

std::string base64url(std::string_view bytes);

// Appends the bytes of text to bytes. Canonical only: false on any other character, a length
// no encoding has, or bits past the last whole byte that are not zero, so that one value has
// one text.
bool from_base64url(std::string_view text, std::string& bytes);

}  // namespace chatterd
