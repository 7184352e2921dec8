// The media sweep: removes the media files that no row names, once they are older than
// chatterd_media_sweep. Such files are left by a post whose outcome stayed unknown (its files
// are kept rather than risk a row that names a missing file) and by a worker that died between
// publishing a file and storing its row. Worker 0 sweeps each media root when it starts and
// then every chatterd_media_sweep; only names chatterd makes are ever removed.
#pragma once

#include "ngx/conf.h"

namespace chatterd {

ngx_int_t media_sweeps_start(ngx_cycle_t* cycle) noexcept;
void media_sweeps_stop(ngx_cycle_t* cycle) noexcept;

}  // namespace chatterd
