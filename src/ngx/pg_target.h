// Which database a pool is about, as the operator reads it in the error log and on the status
// page: its own file, so that the status page (metrics) need not include the pool.
#pragma once

#include "ngx/ngx.h"

#include <string>

namespace chatterd {

// The conninfo's host, hostaddr, port, dbname and user (never the password).
std::string pg_target(const ngx_str_t& conninfo);

}  // namespace chatterd
