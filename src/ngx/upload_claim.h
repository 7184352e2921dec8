// A finished resumable upload taken over by a post (postimages' imageupload and videoupload):
// found by its URL under <media root>/.uploads, locked as the tus location locks it during a
// PATCH or DELETE, sniffed from its first bytes, then handed to the post as its media file,
// with location and device identity stripped as from a media part. The upload stays locked
// until the post is settled; then it is removed (the row is, or may be, stored: its URL is
// used up) or left for the client to post again (the row is not stored).
#pragma once

#include "core/media_scrub.h"
#include "core/media_type.h"
#include "ngx/media_file.h"
#include "ngx/ngx.h"
#include "ngx/upload_store.h"

#include <string>
#include <string_view>

namespace chatterd {

class UploadClaim {
public:
    explicit UploadClaim(ngx_log_t* log) : log_(log), upload_(log) {}
    ~UploadClaim();  // unlocks; the upload stays unless remove() was called
    UploadClaim(const UploadClaim&) = delete;
    UploadClaim& operator=(const UploadClaim&) = delete;

    enum class Result { claimed, refused, failed };
    // Finds and locks the upload that url names (not expired after expiry), finished and of
    // a type field accepts. refused: logged, and refusal() is the reason for the client (a
    // 422); failed: a disk error, logged.
    Result claim(std::string_view media_root, std::string_view url, ngx_msec_t expiry,
                 MediaField field, const char* part_name);
    const char* refusal() const { return refusal_; }
    const MediaType& type() const { return type_; }

    // Puts the claimed bytes into file, unpublished: the upload's own file when nothing moves
    // (nothing to strip: WebM, Matroska, chatterd_media_metadata keep), the same file stripped
    // in place when stripping keeps every offset (ISO-BMFF, WebP), a stripped copy otherwise
    // (JPEG, PNG, GIF). False: a disk error, logged. Synchronous on the event loop, as a
    // media part's writes are: stripping reads the whole file (at most chatterd_media_max_size,
    // just written, so from the page cache) and writes back only the bytes it changes; a
    // link reads nothing.
    bool take_into(MediaFile& file, MediaScrubber::Policy policy);

    // The post's row is or may be stored: the upload's names go (its URL is then unknown).
    void remove();

private:
    Result refuse(const char* reason);
    bool scrub_in_place();
    bool scrub_copy(MediaFile& file);
    bool feed_all(MediaScrubber& scrubber, std::string_view& chunk, off_t& chunk_at);
    bool overwrite_if_changed(off_t at, std::string_view bytes);
    void log_errno(const char* what) const;

    ngx_log_t* log_;
    std::string media_root_;
    UploadFile upload_;      // holds the lock
    int fd_ = -1;            // the upload's data file, claimed
    std::string data_name_;  // ".uploads/<id>", relative to the media root
    off_t size_ = 0;
    MediaType type_{};
    const char* part_name_ = "";
    const char* refusal_ = "";
};

}  // namespace chatterd
