#include "ngx/upload_store.h"

#include "core/media_name.h"
#include "ngx/media_file.h"
#include "ngx/media_root.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>

namespace chatterd {
namespace {

// The data file becomes a media file when a post takes it over: readable by nginx's static
// module, which may run as another user. The directory keeps every upload private meanwhile.
constexpr mode_t kDataMode = 0644;
constexpr mode_t kDirectoryMode = 0700;

bool lock(int fd) {
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EINTR) return false;
    }
    return true;
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string temp_info_path(std::string_view id) {
    return std::string(kUploadsDirectory) + "/" + std::string(id) + ".tmp";
}

time_t expiry_seconds(ngx_msec_t expiry) {
    return static_cast<time_t>(expiry / 1000);
}

bool write_all(int fd, std::string_view bytes, off_t at) {
    while (!bytes.empty()) {
        ssize_t n = pwrite(fd, bytes.data(), bytes.size(), at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
        at += n;
    }
    return true;
}

// The info file, or std::nullopt when it is missing, unreadable or not one of ours.
std::optional<UploadInfo> read_info(int root_fd, std::string_view id) {
    int fd = openat(root_fd, upload_info_path(id).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text(kMaxUploadInfoSize + 1, '\0');
    ssize_t n = pread(fd, text.data(), text.size(), 0);
    ::close(fd);
    if (n < 0) return std::nullopt;
    text.resize(static_cast<std::size_t>(n));
    return parse_upload_info(text);
}

// Both names, info first. ENOENT (another node was first) is no error.
void unlink_upload(int root_or_dir_fd, const std::string& data, const std::string& info) {
    unlinkat(root_or_dir_fd, info.c_str(), 0);
    unlinkat(root_or_dir_fd, data.c_str(), 0);
}

bool sync_directory(int root_fd) {
    int fd =
        openat(root_fd, std::string(kUploadsDirectory).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool synced = fsync(fd) == 0;
    ::close(fd);
    return synced;
}

}  // namespace

std::string upload_data_path(std::string_view id) {
    return std::string(kUploadsDirectory) + "/" + std::string(id);
}

std::string upload_info_path(std::string_view id) {
    return upload_data_path(id) + ".info";
}

void UploadFile::log_errno(const char* what) const {
    ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: uploads: %s \"%s\" failed", what,
                  upload_data_path(id_).c_str());
}

bool UploadFile::create(std::string_view media_root, UploadInfo info, bool durable) {
    root_fd_ = media_root_fd(media_root, log_);
    if (root_fd_ < 0) return false;
    std::string directory(kUploadsDirectory);
    if (mkdirat(root_fd_, directory.c_str(), kDirectoryMode) != 0 && errno != EEXIST) {
        ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: uploads: creating \"%*s/%s\" failed",
                      media_root.size(), media_root.data(), directory.c_str());
        return false;
    }
    id_ = random_hex();
    info_ = std::move(info);
    fd_ = openat(root_fd_, upload_data_path(id_).c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
                 kDataMode);
    if (fd_ < 0 || fchmod(fd_, kDataMode) != 0 || !lock(fd_)) {
        log_errno("creating upload");
        return false;
    }
    std::string temp = temp_info_path(id_);
    int info_fd = openat(root_fd_, temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    bool written = info_fd >= 0 && write_all(info_fd, format_upload_info(info_), 0)
                   && (!durable || fdatasync(info_fd) == 0);
    if (info_fd >= 0) ::close(info_fd);
    if (!written || renameat(root_fd_, temp.c_str(), root_fd_, upload_info_path(id_).c_str()) != 0
        || (durable && !sync_directory(root_fd_))) {
        log_errno("writing the info of upload");
        unlinkat(root_fd_, temp.c_str(), 0);
        remove();
        return false;
    }
    time(&mtime_);
    return true;
}

UploadOpen UploadFile::open(std::string_view media_root, std::string_view id, ngx_msec_t expiry,
                            bool locked) {
    id_ = id;
    root_fd_ = media_root_fd(media_root, log_);
    if (root_fd_ < 0) return UploadOpen::failed;
    std::string path = upload_data_path(id);
    fd_ = openat(root_fd_, path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return UploadOpen::not_found;
        log_errno("opening upload");
        return UploadOpen::failed;
    }
    if (locked && !lock(fd_)) {
        if (errno == EWOULDBLOCK) return UploadOpen::locked;
        log_errno("locking upload");
        return UploadOpen::failed;
    }
    // Once locked, the name must still be this file: a post may have taken it over, or a
    // DELETE removed it, while this request waited.
    struct stat held, named;
    if (fstat(fd_, &held) != 0 || fstatat(root_fd_, path.c_str(), &named, 0) != 0
        || !same_file(held, named))
        return UploadOpen::not_found;
    std::optional<UploadInfo> info = read_info(root_fd_, id);
    if (!info) return UploadOpen::not_found;
    info_ = std::move(*info);
    offset_ = held.st_size;
    written_back_ = offset_;
    mtime_ = held.st_mtime;
    return mtime_ + expiry_seconds(expiry) <= time(nullptr) ? UploadOpen::expired
                                                            : UploadOpen::open;
}

time_t UploadFile::expires(ngx_msec_t expiry) const {
    return mtime_ + expiry_seconds(expiry);
}

bool UploadFile::append(std::string_view bytes) {
    if (!write_all(fd_, bytes, offset_)) {
        log_errno("writing upload");
        return false;
    }
    offset_ += static_cast<off_t>(bytes.size());
    time(&mtime_);
    // As media files': the fdatasync before a PATCH's answer then waits for little more than
    // its last chunk.
    written_back_ = start_writeback(fd_, written_back_, offset_);
    return true;
}

bool UploadFile::read_head(char* into, std::size_t n) const {
    return pread(fd_, into, n, 0) == static_cast<ssize_t>(n);
}

bool UploadFile::truncate(off_t offset) {
    if (ftruncate(fd_, offset) != 0) {
        log_errno("truncating upload");
        return false;
    }
    offset_ = offset;
    written_back_ = std::min(written_back_, offset);
    return true;
}

// Synchronous on the event loop, as MediaFile::publish's: at most one PATCH's bytes wait.
bool UploadFile::sync() {
    if (fdatasync(fd_) == 0) return true;
    log_errno("fdatasync of upload");
    return false;
}

void UploadFile::remove() {
    if (root_fd_ >= 0 && !id_.empty())
        unlink_upload(root_fd_, upload_data_path(id_), upload_info_path(id_));
}

void UploadFile::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool remove_expired_upload(int dir_fd, std::string_view id, ngx_msec_t expiry, ngx_log_t* log) {
    std::string data(id), info = data + ".info";
    int fd = openat(dir_fd, data.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat held, named;
    bool removed = false;
    // Judged again once locked: a PATCH may have written since the directory was read.
    if (lock(fd) && fstat(fd, &held) == 0 && fstatat(dir_fd, data.c_str(), &named, 0) == 0
        && same_file(held, named) && held.st_mtime + expiry_seconds(expiry) <= time(nullptr)) {
        unlink_upload(dir_fd, data, info);
        removed = true;
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "chatterd: uploads: upload %s expired with %O bytes received", data.c_str(),
                      held.st_size);
    }
    ::close(fd);
    return removed;
}

}  // namespace chatterd
