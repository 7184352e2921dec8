#include "ngx/media_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace chatterd {
namespace {

// A worker has one entry per chatterd_media_root value it has written to: a handful at most.
std::vector<std::pair<std::string, int>> open_roots;
std::vector<int> retired;  // descriptors of removed directories, still used by uploads in progress

}  // namespace

int media_root_fd(std::string_view root, ngx_log_t* log) {
    for (const auto& [path, fd] : open_roots) {
        if (path == root) return fd;
    }
    std::string path(root);
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "chatterd: opening chatterd_media_root \"%s\" failed", path.c_str());
        return -1;
    }
    open_roots.emplace_back(std::move(path), fd);
    return fd;
}

bool media_root_replaced(std::string_view root, int fd) {
    std::string path(root);
    struct stat held, current;
    if (fstat(fd, &held) != 0) return false;
    if (stat(path.c_str(), &current) == 0 && current.st_dev == held.st_dev
        && current.st_ino == held.st_ino)
        return false;
    for (auto it = open_roots.begin(); it != open_roots.end(); ++it) {
        if (it->first == root && it->second == fd) {
            retired.push_back(fd);
            open_roots.erase(it);
            return true;
        }
    }
    return false;
}

void close_media_roots() {
    for (const auto& entry : open_roots) close(entry.second);
    for (int fd : retired) close(fd);
    open_roots.clear();
    retired.clear();
}

}  // namespace chatterd
