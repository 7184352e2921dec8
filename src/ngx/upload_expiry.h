// The expiry of abandoned resumable uploads: worker 0 looks through each media root's
// .uploads directory (ngx/upload_store.h) when it starts and then every fraction of
// chatterd_upload_expiry, and removes the uploads whose last activity is older than that (the
// ones a request holds locked stay until the next round), counting them. Other nodes sharing the
// media root do the same; whichever comes first removes an upload, the others find it gone.
// The round reads the directory and unlinks on the event loop: it stops after kMaxRemovals and
// goes on at the next one.
#pragma once

#include "ngx/conf.h"

namespace chatterd {

ngx_int_t upload_expiry_start(ngx_cycle_t* cycle) noexcept;
void upload_expiry_stop() noexcept;

}  // namespace chatterd
