#include "ngx/media_file.h"

#include "core/media_name.h"
#include "ngx/media_root.h"
#include "ngx/metrics.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

namespace chatterd {
namespace {

constexpr mode_t kMediaMode =
    0644;  // served by nginx's static module, which may run as another user

bool temp_files_unsupported(int error) {
    // Kernels or file systems without O_TMPFILE answer one of these.
    return error == EOPNOTSUPP || error == EISDIR || error == EINVAL;
}

}  // namespace

MediaFile::~MediaFile() {
    // A published file's fate is settled here, unless discard() removed it already.
    if (!final_name_.empty() && fate_ != Fate::handed_over) {
        count_media_files(fate_ == Fate::kept ? MediaFate::kept : MediaFate::removed_by_request);
    }
    if (fd_ >= 0) close(fd_);
    if (dir_fd_ >= 0) {
        if (!temp_name_.empty()) unlinkat(dir_fd_, temp_name_.c_str(), 0);
        if (!final_name_.empty() && fate_ == Fate::pending) {
            unlinkat(dir_fd_, final_name_.c_str(), 0);
        }
    }
}

void MediaFile::discard() {
    if (fate_ != Fate::pending || final_name_.empty() || dir_fd_ < 0) return;
    unlinkat(dir_fd_, final_name_.c_str(), 0);
    count_media_files(MediaFate::removed_by_request);
    final_name_.clear();
}

void MediaFile::log_errno(const char* what, std::string_view name) const {
    ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: %s \"%*s\" failed", what, name.size(),
                  name.data());
}

bool MediaFile::create(std::string_view media_root) {
    for (bool again = false;; again = true) {
        dir_fd_ = media_root_fd(media_root, log_);
        if (dir_fd_ < 0) return false;
        if (open_unnamed()) break;
        int error = errno;
        // Once: the directory may have been removed (and made again) since the worker opened it.
        if (again || !media_root_replaced(media_root, dir_fd_)) {
            errno = error;
            log_errno("creating a media file in", media_root);
            return false;
        }
    }
    // The umask must not make the published file unreadable to the static module.
    if (fchmod(fd_, kMediaMode) != 0) {
        log_errno("setting the mode of a media file in", media_root);
        return false;
    }
    return true;
}

bool MediaFile::adopt(std::string_view media_root, int fd) {
    fd_ = fd;
    dir_fd_ = media_root_fd(media_root, log_);
    if (dir_fd_ < 0) return false;
    struct stat st;
    if (fstat(fd_, &st) != 0 || fchmod(fd_, kMediaMode) != 0) {
        log_errno("taking over a file in", media_root);
        return false;
    }
    size_ = st.st_size;
    written_back_ = size_;
    return true;
}

bool MediaFile::open_unnamed() {
    fd_ = openat(dir_fd_, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, kMediaMode);
    if (fd_ < 0 && temp_files_unsupported(errno)) {
        temp_name_ = "." + random_media_name("", "upload");
        fd_ = openat(dir_fd_, temp_name_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
                     kMediaMode);
        if (fd_ < 0) temp_name_.clear();
    }
    return fd_ >= 0;
}

bool MediaFile::write(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd_, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_errno("writing media file", temp_name_.empty() ? "(unnamed)" : temp_name_);
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
        size_ += n;
    }
    start_writeback();
    return true;
}

// Left alone, the kernel lets gigabytes of uploaded media pile up dirty in the page cache and
// then writes them out in bursts; the WAL flush of each upload's commit waits behind the
// burst (bench/PROFILE.md). Asking for the writeback of every kWritebackChunk as soon as it is
// written keeps the disk's queue short, as PostgreSQL's own backend_flush_after does.
// SYNC_FILE_RANGE_WRITE only starts the writeback, without waiting for it; its failure (a file
// system that cannot) changes nothing. Linux only; elsewhere the kernel decides.
off_t start_writeback(int fd, off_t written_back, off_t size) {
    constexpr off_t kWritebackChunk = 512 * 1024;
    if (size - written_back < kWritebackChunk) return written_back;
#if (NGX_LINUX)
    sync_file_range(fd, written_back, size - written_back, SYNC_FILE_RANGE_WRITE);
#endif
    return size;
}

void MediaFile::start_writeback() {
    written_back_ = chatterd::start_writeback(fd_, written_back_, size_);
}

// Synchronous on the event loop: start_writeback has already sent all but the last chunk on
// its way to the disk, so fdatasync waits for at most that chunk and the device's cache flush;
// the directory's fsync writes one entry (make bench: the "chatterd_media_fsync off" rows).
bool MediaFile::publish(std::string_view final_name, bool durable) {
    if (durable && fdatasync(fd_) != 0) {
        log_errno("fdatasync of media file", final_name);
        return false;
    }
    final_name_ = final_name;
    bool published = temp_name_.empty() ? publish_anonymous() : publish_temporary();
    if (!published) {
        log_errno("publishing media file", final_name_);
        final_name_.clear();
        return false;
    }
    close(fd_);
    fd_ = -1;
    // On failure the name stays set: the caller's discard() removes the file.
    if (durable && fsync(dir_fd_) != 0) {
        log_errno("fsync of the media root after publishing", final_name_);
        return false;
    }
    return true;
}

// An O_TMPFILE file gets a name through its /proc/self/fd link; linkat never replaces a file.
bool MediaFile::publish_anonymous() {
    std::string fd_path = "/proc/self/fd/" + std::to_string(fd_);
    return linkat(AT_FDCWD, fd_path.c_str(), dir_fd_, final_name_.c_str(), AT_SYMLINK_FOLLOW) == 0;
}

bool MediaFile::publish_temporary() {
    if (linkat(dir_fd_, temp_name_.c_str(), dir_fd_, final_name_.c_str(), 0) != 0) return false;
    unlinkat(dir_fd_, temp_name_.c_str(), 0);
    temp_name_.clear();
    return true;
}

}  // namespace chatterd
