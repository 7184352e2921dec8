// A media file being received: written into the media root under no name nginx could serve,
// published under its final name once complete, and removed on every path that does not end
// with the row that references it.
#pragma once

#include "ngx/ngx.h"

#include <string>
#include <string_view>

namespace chatterd {

// Starts the writeback of fd's bytes from written_back up to size once they make a chunk;
// returns the new written_back (media_file.cpp says why).
off_t start_writeback(int fd, off_t written_back, off_t size);

class MediaFile {
public:
    explicit MediaFile(ngx_log_t* log) : log_(log) {}
    ~MediaFile();  // closes; removes the file unless kept or handed over
    MediaFile(const MediaFile&) = delete;
    MediaFile& operator=(const MediaFile&) = delete;

    // Creates the unnamed file inside media_root (O_TMPFILE; where the file system lacks it,
    // a dot-prefixed temporary name, which the /media/ location must not serve), through the
    // worker's one descriptor of that directory (media_root.h).
    bool create(std::string_view media_root);
    bool write(std::string_view bytes);
    // Instead of create and write: the complete file is an existing one inside media_root,
    // open as fd (owned from here, closed by publish or at the end). publish gives it its
    // final name as one more link to the same bytes, without copying them.
    bool adopt(std::string_view media_root, int fd);
    // Gives the complete file its final name (never replacing an existing file). durable: its
    // data is on disk before it has a name, and its name before this returns (the row that
    // names it is sent afterwards), so that a power loss never leaves a committed row naming
    // a missing or truncated file.
    bool publish(std::string_view final_name, bool durable);
    // The row that references the file is stored: keep it.
    void commit() { fate_ = Fate::kept; }
    // Whether the row was stored is unknown: the file is no longer the request's, and whoever
    // settles the row's outcome keeps or removes it (and counts it). Returns its name.
    const std::string& hand_over() {
        fate_ = Fate::handed_over;
        return final_name_;
    }
    int directory() const { return dir_fd_; }
    // No row will reference the file: remove its name now, not only when the request is freed
    // (after an error nginx may keep the connection lingering, and /media/ would serve it).
    void discard();

    const std::string& name() const { return final_name_; }
    off_t size() const { return size_; }

private:
    bool open_unnamed();
    void start_writeback();
    bool publish_anonymous();
    bool publish_temporary();
    void log_errno(const char* what, std::string_view name) const;

    ngx_log_t* log_;
    int dir_fd_ = -1;  // the worker's, not closed here
    int fd_ = -1;
    std::string temp_name_;   // only when O_TMPFILE is not available
    std::string final_name_;  // set once published

    off_t size_ = 0;
    off_t written_back_ = 0;                         // bytes whose writeback was asked for
    enum class Fate { pending, kept, handed_over };  // pending: the request removes it
    Fate fate_ = Fate::pending;
};

}  // namespace chatterd
