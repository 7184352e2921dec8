#include "ngx/upload_claim.h"

#include "core/tus_headers.h"
#include "ngx/media_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
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
    if (fd_ >= 0) close(fd_);  // upload_ closes its own, which releases the lock
}

void UploadClaim::log_errno(const char* what) const {
    ngx_log_error(NGX_LOG_ERR, log_, ngx_errno, "chatterd: postimages: %s of upload \"%s\" failed",
                  what, data_name_.c_str());
}

UploadClaim::Result UploadClaim::refuse(const char* reason) {
    refusal_ = reason;
    ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: form part \"%supload\": %s (%s)",
                  part_name_, reason, data_name_.empty() ? "no upload id" : data_name_.c_str());
    upload_.close();
    return Result::refused;
}

UploadClaim::Result UploadClaim::claim(std::string_view media_root, std::string_view url,
                                       ngx_msec_t expiry, MediaField field, const char* part_name) {
    part_name_ = part_name;
    std::optional<std::string_view> id = upload_id_of_url(url);
    if (!id) return refuse("Invalid upload URL");
    data_name_ = upload_data_path(*id);
    media_root_ = media_root;
    switch (upload_.open(media_root, *id, expiry, true)) {
    case UploadOpen::open: break;
    case UploadOpen::not_found: return refuse("Unknown upload");
    case UploadOpen::expired: return refuse("Upload expired");
    case UploadOpen::locked: return refuse("Upload in progress");
    case UploadOpen::failed: return Result::failed;
    }
    if (upload_.offset() != upload_.info().length) return refuse("Upload not finished");
    // A descriptor of our own for reading, stripping and linking; the lock stays upload_'s,
    // and while it is held nobody else renames or removes the file.
    fd_ = openat(media_root_fd(media_root, log_), data_name_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
        log_errno("opening");
        return Result::failed;
    }
    size_ = upload_.offset();

    char head[kSniffBytes];
    std::size_t n = std::min<std::size_t>(sizeof head, static_cast<std::size_t>(size_));
    if (!upload_.read_head(head, n)) {
        log_errno("reading");
        return Result::failed;
    }
    std::optional<MediaType> type = sniff_media_type(field, {head, n});
    if (!type) {
        return refuse(field == MediaField::image ? "Upload is not a supported image"
                                                 : "Upload is not a supported video");
    }
    type_ = *type;
    return Result::claimed;
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
    upload_.remove();
    upload_.close();
}

}  // namespace chatterd
