#include "ngx/upload_expiry.h"

#include "core/tus_headers.h"
#include "ngx/media_root.h"
#include "ngx/metrics.h"
#include "ngx/upload_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace chatterd {
namespace {

constexpr ngx_msec_t kMinInterval = 1000;
constexpr ngx_msec_t kMaxInterval = 10 * 60 * 1000;
constexpr std::size_t kMaxRemovals = 1000;

struct Expiry {
    UploadExpirySpec spec;
    ngx_msec_t interval;
    ngx_event_t timer{};
};

std::vector<std::unique_ptr<Expiry>> expiries;  // worker 0's

// A leftover of a creation cut short ("<id>.tmp", or "<id>.info" without its data file) goes
// once as old as an abandoned upload.
void remove_leftover(int dir_fd, const char* name, ngx_msec_t expiry) {
    struct stat st;
    if (fstatat(dir_fd, name, &st, 0) != 0) return;
    if (st.st_mtime + static_cast<time_t>(expiry / 1000) <= time(nullptr))
        unlinkat(dir_fd, name, 0);
}

void sweep(const Expiry& expiry, ngx_log_t* log) {
    int root_fd = media_root_fd(to_view(expiry.spec.media_root), log);
    if (root_fd < 0) return;
    int dir_fd =
        openat(root_fd, std::string(kUploadsDirectory).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return;  // no upload was ever created here
    DIR* dir = fdopendir(dir_fd);
    if (dir == nullptr) {
        close(dir_fd);
        return;
    }
    std::vector<std::string> ids, leftovers;
    while (dirent* entry = readdir(dir)) {
        std::string_view name = entry->d_name;
        std::string_view stem = name.substr(0, name.find('.'));
        if (!is_upload_id(stem)) continue;
        if (name == stem) {
            ids.emplace_back(name);
        } else if (name.substr(stem.size()) == ".tmp" || name.substr(stem.size()) == ".info") {
            leftovers.emplace_back(name);
        }
    }
    std::size_t removed = 0;
    for (const std::string& id : ids) {
        if (removed == kMaxRemovals) break;
        if (!remove_expired_upload(dirfd(dir), id, expiry.spec.expiry, log)) continue;
        removed++;
        count_uploads(UploadCount::expired);
    }
    for (const std::string& name : leftovers) {
        std::string data = name.substr(0, name.find('.'));
        struct stat st;
        if (fstatat(dirfd(dir), data.c_str(), &st, 0) != 0)
            remove_leftover(dirfd(dir), name.c_str(), expiry.spec.expiry);
    }
    closedir(dir);
}

void on_timer(ngx_event_t* ev) noexcept {
    auto* expiry = static_cast<Expiry*>(ev->data);
    try {
        sweep(*expiry, ev->log);
    } catch (const std::exception& e) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0, "chatterd: upload expiry: %s", e.what());
    }
    if (!ngx_exiting && !ngx_quit && !ngx_terminate) ngx_add_timer(ev, expiry->interval);
}

}  // namespace

ngx_int_t upload_expiry_start(ngx_cycle_t* cycle) noexcept try {
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
    if (ngx_worker != 0) return NGX_OK;
    auto* mc = static_cast<MainConf*>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chatterd_module));
    if (mc == nullptr) return NGX_OK;
    auto* specs = static_cast<UploadExpirySpec*>(mc->upload_expiries.elts);
    for (ngx_uint_t i = 0; i < mc->upload_expiries.nelts; i++) {
        auto expiry = std::make_unique<Expiry>();
        expiry->spec = specs[i];
        // Often enough that an upload goes soon after it expires, seldom enough to cost nothing.
        expiry->interval = std::clamp(specs[i].expiry / 4, kMinInterval, kMaxInterval);
        expiry->timer.handler = on_timer;
        expiry->timer.data = expiry.get();
        expiry->timer.log = cycle->log;
        expiry->timer.cancelable = 1;
        ngx_add_timer(&expiry->timer, 0);
        expiries.push_back(std::move(expiry));
    }
    return NGX_OK;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "chatterd: upload expiry: %s", e.what());
    return NGX_ERROR;
}

void upload_expiry_stop() noexcept {
    for (auto& expiry : expiries) {
        if (expiry->timer.timer_set) ngx_del_timer(&expiry->timer);
    }
    expiries.clear();
}

}  // namespace chatterd
