// UTF-8 as PostgreSQL checks it in a UTF8 database (RFC 3629: no overlong forms, no UTF-16
// surrogates, nothing past U+10FFFF), for text that must be refused before it reaches an INSERT.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace chatterd {

// The offset of the first byte of text that does not start a well-formed UTF-8 sequence, or
// std::nullopt when all of text is well-formed.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

// The number of characters (code points) of well-formed UTF-8 text, as varchar(n) counts them.
std::size_t utf8_length(std::string_view text);

}  // namespace chatterd
