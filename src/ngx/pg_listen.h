// Each worker's LISTEN connection to a database whose listings are cached (ngx/list_cache.h):
// one PgConnection outside the pool, that runs "LISTEN chatts" once connected and then only
// hears notifications (schema.sql's trigger sends one for every statement that changes chatts).
// A notification, and every LISTEN that succeeds (notifications may have been lost while it was
// down), call the change handler. While it is down the worker does not trust its cache; it
// reconnects after a backoff, as the pool does.
#pragma once

#include "ngx/conf.h"

namespace chatterd {

using ListenChangeHandler = void (*)() noexcept;

// Worker life cycle: one LISTEN connection per pool whose listings are cached (lists_cached).
ngx_int_t pg_listens_start(ngx_cycle_t* cycle, ListenChangeHandler changed) noexcept;
void pg_listens_stop() noexcept;

// Whether this worker's LISTEN connection to spec's database is up (LISTEN done, and the
// connection not seen broken since).
bool pg_listening(const PgPoolSpec& spec) noexcept;

}  // namespace chatterd
