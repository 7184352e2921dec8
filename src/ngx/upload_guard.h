// Partial uploads are never served: a request that a location without a content handler of
// its own (nginx's static module: the operator's `location /media/`) would map into a
// ".uploads" directory is answered 404 by the module, whatever that location's own rules
// (nginx.conf.example's /media/ also refuses every dot path). Installed only when an uploads
// location exists; costs other requests a search of their URI.
#pragma once

#include "ngx/conf.h"

namespace chatterd {

ngx_int_t upload_guard_configure(ngx_conf_t* cf) noexcept;

}  // namespace chatterd
