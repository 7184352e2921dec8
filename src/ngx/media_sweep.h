// The media sweep: moves the media files that no row names to the root's quarantine, and
// empties the quarantine a period later. Such files are left by a post whose outcome stayed
// unknown (its files are kept rather than risk a row that names a missing file) and by a worker
// that died between publishing a file and storing its row. Worker 0 sweeps each media root when
// it starts and then every chatterd_media_sweep; only names chatterd makes are ever touched.
//
// A file is judged (looked up in the rows) only when no row can still come to name it:
//   - it is older than the grace period, counted back from the start of the oldest transaction
//     still open on the database, not from now: a commit that waits (for a synchronous standby)
//     is not visible yet, and a post's INSERT starts within its deadline (chatterd_pg_timeout,
//     shorter than the grace period) of publishing its files;
//   - the database is a primary (not in recovery), every session that may insert into chatts is
//     visible to chatterd's role, and no prepared transaction that may have inserted waits.
// A round that would move more than chatterd_media_sweep_limit files moves none: so many
// unnamed files mean the wrong database, not lost posts.
#pragma once

#include "ngx/conf.h"

namespace chatterd {

ngx_int_t media_sweeps_start(ngx_cycle_t* cycle) noexcept;
void media_sweeps_stop(ngx_cycle_t* cycle) noexcept;

}  // namespace chatterd
