// The directories media files are written to, each opened once per worker process: a
// descriptor per upload in progress would double what every slow upload holds (its socket,
// its file, and the directory again), and a few hundred of them would reach the worker's
// descriptor limit.
#pragma once

#include "ngx/ngx.h"

#include <string_view>

namespace chatterd {

// The worker's descriptor of the directory root, opened on its first use; -1 (logged) when
// it cannot be opened, and then tried again at the next use.
int media_root_fd(std::string_view root, ngx_log_t* log);

// Whether fd is no longer the directory at root (removed, or replaced by another one): then
// the next media_root_fd opens root again. fd stays valid until the worker exits, for the
// uploads still using it.
bool media_root_replaced(std::string_view root, int fd);

// At worker exit.
void close_media_roots();

}  // namespace chatterd
