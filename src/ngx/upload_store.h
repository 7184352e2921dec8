// Resumable uploads on disk, so that any worker and any node sharing the media root serves
// any upload: <media root>/.uploads/ (mode 0700) holds for each upload
//   <id>       the bytes received so far: its size is the upload's offset, its mtime the last
//              activity, from which it expires;
//   <id>.info  what its creation said (core/upload_info.h), written once (<id>.tmp, renamed).
// Whoever changes an upload (a PATCH, a DELETE, the expiry, a post taking it over) holds
// flock(LOCK_EX) on its data file meanwhile, and finds it again under its name once locked:
// an upload taken over or removed while it waited for the lock is gone.
// The media sweep never looks into .uploads (only top-level media names are its).
#pragma once

#include "core/upload_info.h"
#include "ngx/ngx.h"

#include <ctime>
#include <string>
#include <string_view>

namespace chatterd {

// The directory under the media root, and the path of an upload's files relative to the root.
constexpr std::string_view kUploadsDirectory = ".uploads";
std::string upload_data_path(std::string_view id);
std::string upload_info_path(std::string_view id);

enum class UploadOpen { open, not_found, expired, locked, failed };

// One upload, as a request holds it.
class UploadFile {
public:
    explicit UploadFile(ngx_log_t* log) : log_(log) {}
    ~UploadFile() { close(); }
    UploadFile(const UploadFile&) = delete;
    UploadFile& operator=(const UploadFile&) = delete;

    // A new upload under a new random id, empty and locked. durable: its info and name are on
    // disk before this returns (the client is told its URL afterwards).
    bool create(std::string_view media_root, UploadInfo info, bool durable);
    // An existing upload; locked: its data file is locked (never waiting: `locked` when another
    // request or node holds it). expired: its last activity is older than expiry.
    UploadOpen open(std::string_view media_root, std::string_view id, ngx_msec_t expiry,
                    bool locked);

    const std::string& id() const { return id_; }
    const UploadInfo& info() const { return info_; }
    off_t offset() const { return offset_; }
    // When the upload expires if nothing more arrives (now, after a write).
    time_t expires(ngx_msec_t expiry) const;

    // The next bytes, at the offset.
    bool append(std::string_view bytes);
    // Bytes from position 0 already received (n at most the offset).
    bool read_head(char* into, std::size_t n) const;
    // Back to a smaller offset (a PATCH whose bytes cannot be kept).
    bool truncate(off_t offset);
    bool sync();
    // Both names, info first (from then on nobody finds the upload); the lock goes on close.
    void remove();
    void close();

private:
    void log_errno(const char* what) const;

    ngx_log_t* log_;
    int root_fd_ = -1;  // the worker's, never closed here
    int fd_ = -1;
    std::string id_;
    UploadInfo info_;
    off_t offset_ = 0;
    off_t written_back_ = 0;  // bytes whose writeback was asked for (start_writeback)
    time_t mtime_ = 0;
};

// Removes the upload id of the uploads directory dir_fd when its last activity is older than
// expiry, and nobody holds its lock. Returns whether it removed it. Another node removing it
// at the same time is no error.
bool remove_expired_upload(int dir_fd, std::string_view id, ngx_msec_t expiry, ngx_log_t* log);

}  // namespace chatterd
