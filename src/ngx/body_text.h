// A small request body (postchatt's JSON) as one contiguous string.
#pragma once

#include "ngx/ngx.h"

#include <string>

namespace chatterd {

// Appends the whole request body, from memory buffers or nginx's temporary file, to text.
// Returns false (and logs) when the temporary file cannot be read.
bool read_body_text(ngx_http_request_t* r, std::string& text);

}  // namespace chatterd
