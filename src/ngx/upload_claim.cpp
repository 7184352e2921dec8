#include "ngx/upload_claim.h"

#include "core/tus_headers.h"
#include "core/upload_info.h"
#include "ngx/media_root.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

namespace chatterd {
namespace {

constexpr std::size_t kReadChunk = 256 * 1024;

// pread of up to size bytes at `at`; -1 on error.
ssize_t read_at(int fd, char* buffer, std::size_t size, off_t at) {
    for (;;) {
        ssize_t n = pread(fd, buffer, size, at);
        if (n >= 0 || errno != EINTR) return n;
    }
}

// The upload id of the URL the tus location answered in Location, absolute or a path: its last
// path segment (a query or fragment a client kept is not part of it).
std::optional<std::string_view> upload_id_of_url(std::string_view url) {
    return upload_id_of_path(url.substr(0, url.find_first_of("?#")));
}

}  // namespace

UploadClaim::~UploadClaim() {
    if (fd_ >= 0) close(fd_);  // releases the lock
}

void UploadClaim::log_errno(const char* what) const {
    ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: postimages: %s of upload \"%s\" failed",
                  what, data_name_.c_str());
}

UploadClaim::Result UploadClaim::refuse(const char* reason) {
    refusal_ = reason;
    ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: form part \"%supload\": %s (%s)",
                  part_name_, reason, data_name_.empty() ? "no upload id" : data_name_.c_str());
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return Result::refused;
}

UploadClaim::Result UploadClaim::claim(std::string_view media_root, std::string_view url,
                                       MediaField field, const char* part_name) {
    part_name_ = part_name;
    std::optional<std::string_view> id = upload_id_of_url(url);
    if (!id) return refuse("Invalid upload URL");
    data_name_ = ".uploads/" + std::string(*id);
    media_root_ = media_root;
    root_fd_ = media_root_fd(media_root, log_);
    if (root_fd_ < 0) return Result::failed;

    fd_ = openat(root_fd_, data_name_.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd_ < 0) {
        if (errno == ENOENT) return refuse("Unknown upload");
        log_errno("opening");
        return Result::failed;
    }
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) return refuse("Upload in progress");
        log_errno("locking");
        return Result::failed;
    }
    // Between the open and the lock, the upload may have been posted (or deleted) by another
    // request: the name must still be this file.
    struct stat held, named;
    if (fstat(fd_, &held) != 0) {
        log_errno("fstat");
        return Result::failed;
    }
    if (fstatat(root_fd_, data_name_.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0
        || named.st_ino != held.st_ino || named.st_dev != held.st_dev || !S_ISREG(held.st_mode))
        return refuse("Unknown upload");
    size_ = held.st_size;

    std::uint64_t length = 0;
    if (!read_length(length)) return refuse("Unknown upload");
    if (static_cast<std::uint64_t>(size_) != length) return refuse("Upload not finished");

    char head[kSniffBytes];
    ssize_t n = read_at(fd_, head, sizeof head, 0);
    if (n < 0) {
        log_errno("reading");
        return Result::failed;
    }
    std::optional<MediaType> type = sniff_media_type(field, {head, static_cast<std::size_t>(n)});
    if (!type) {
        return refuse(field == MediaField::image ? "Upload is not a supported image"
                                                 : "Upload is not a supported video");
    }
    type_ = *type;
    return Result::claimed;
}

// The Upload-Length written at the upload's creation; false when there is none (an upload
// whose creation has not finished, or not an upload at all).
bool UploadClaim::read_length(std::uint64_t& length) {
    std::string info_name = data_name_ + ".info";
    int fd = openat(root_fd_, info_name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    char text[kMaxUploadInfoSize];
    ssize_t n = read_at(fd, text, sizeof text, 0);
    close(fd);
    if (n <= 0) return false;
    std::optional<UploadInfo> info = parse_upload_info({text, static_cast<std::size_t>(n)});
    if (!info) return false;
    length = static_cast<std::uint64_t>(info->length);
    return true;
}

bool UploadClaim::take_into(MediaFile& file, MediaScrubber::Policy policy) {
    ScrubEffect effect =
        policy == MediaScrubber::Policy::keep ? ScrubEffect::none : scrub_effect(type_.extension);
    if (effect == ScrubEffect::shrinks) return scrub_copy(file);
    if (effect == ScrubEffect::same_size && !scrub_in_place()) return false;
    int own = fcntl(fd_, F_DUPFD_CLOEXEC, 0);  // fd_ keeps the lock until the post is settled
    if (own < 0) {
        log_errno("dup");
        return false;
    }
    return file.adopt(media_root_, own);
}

// Reads the whole upload into scrubber, chunk by chunk; chunk and chunk_at hold the bytes
// being fed and their offset.
bool UploadClaim::feed_all(MediaScrubber& scrubber, std::string_view& chunk, off_t& chunk_at) {
    std::string buffer(kReadChunk, '\0');
    for (chunk_at = 0; chunk_at < size_;) {
        ssize_t n = read_at(fd_, buffer.data(), buffer.size(), chunk_at);
        if (n <= 0) {
            if (n < 0)
                log_errno("reading");
            else
                ngx_log_error(NGX_LOG_ERR, log_, 0, "chatterd: postimages: upload \"%s\" shrank",
                              data_name_.c_str());
            return false;
        }
        chunk = std::string_view(buffer.data(), static_cast<std::size_t>(n));
        if (!scrubber.feed(chunk)) return false;
        chunk_at += n;
    }
    return scrubber.finish();
}

// Stripping that keeps every offset: only the bytes it changed are written back, over the
// upload's own (a post that then fails leaves the upload stripped, and as valid as before).
bool UploadClaim::scrub_in_place() {
    std::string_view chunk;
    off_t chunk_at = 0;
    off_t out = 0;
    MediaScrubber scrubber(
        [&](std::string_view bytes) {
            // Bytes passed through are slices of the chunk at their own offset: nothing to do.
            bool same = out >= chunk_at
                        && static_cast<std::size_t>(out - chunk_at) + bytes.size() <= chunk.size()
                        && bytes.data() == chunk.data() + (out - chunk_at);
            if (!same && !overwrite_if_changed(out, bytes)) return false;
            out += static_cast<off_t>(bytes.size());
            return true;
        },
        MediaScrubber::Policy::strip);
    if (!feed_all(scrubber, chunk, chunk_at)) return false;
    if (out != size_) {  // never for these formats: refuse rather than publish a moved file
        ngx_log_error(NGX_LOG_ERR, log_, 0,
                      "chatterd: postimages: stripping upload \"%s\" in place changed its size",
                      data_name_.c_str());
        return false;
    }
    return true;
}

bool UploadClaim::overwrite_if_changed(off_t at, std::string_view bytes) {
    std::string current(bytes.size(), '\0');
    ssize_t n = read_at(fd_, current.data(), current.size(), at);
    if (n == static_cast<ssize_t>(bytes.size()) && current == bytes) return true;
    for (std::size_t done = 0; done < bytes.size();) {
        ssize_t w =
            pwrite(fd_, bytes.data() + done, bytes.size() - done, at + static_cast<off_t>(done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            log_errno("stripping metadata in place");
            return false;
        }
        done += static_cast<std::size_t>(w);
    }
    return true;
}

// Stripping that removes bytes: into a new file, as a media part is written.
bool UploadClaim::scrub_copy(MediaFile& file) {
    if (!file.create(media_root_)) return false;
    std::string_view chunk;
    off_t chunk_at = 0;
    MediaScrubber scrubber([&file](std::string_view bytes) { return file.write(bytes); },
                           MediaScrubber::Policy::strip);
    return feed_all(scrubber, chunk, chunk_at);
}

void UploadClaim::remove() {
    if (fd_ < 0) return;
    // The data first: without it the upload is unknown, whatever its .info says.
    if (unlinkat(root_fd_, data_name_.c_str(), 0) != 0) log_errno("removing");
    std::string info_name = data_name_ + ".info";
    if (unlinkat(root_fd_, info_name.c_str(), 0) != 0 && errno != ENOENT)
        log_errno("removing the .info");
    close(fd_);
    fd_ = -1;
}

}  // namespace chatterd
