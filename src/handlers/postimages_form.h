// The postimages form (API.md): which parts count, what they may hold, and where media parts
// go while the body arrives: text fields in memory, up to what a row can store; image and
// video straight into unnamed files in the media root, sniffed from their first bytes.
#pragma once

#include "core/media_name.h"
#include "core/media_scrub.h"
#include "core/media_type.h"
#include "core/multipart.h"
#include "ngx/body_stream.h"
#include "ngx/conf.h"
#include "ngx/media_file.h"

#include <array>
#include <optional>
#include <string>

namespace chatterd {

struct ReceivedMedia {
    explicit ReceivedMedia(ngx_log_t* log) : file(log) {}
    MediaFile file;
    MediaType type{};  // known once the first bytes have been sniffed
};

// The form once the whole body has arrived and every media part is on disk (unpublished).
struct ReceivedForm {
    std::optional<std::string> username;
    std::optional<std::string> message;
    std::optional<ReceivedMedia> image;
    std::optional<ReceivedMedia> video;
    // Instead of image or video: the URL of a finished resumable upload (ngx/upload_claim.h).
    std::optional<std::string> imageupload;
    std::optional<std::string> videoupload;

    // No row will name the media: their names go now, not when the request is freed.
    void discard_media();
};

// Receives r's body as the form. Every refusal (malformed, a missing or repeated part, a media
// part sent with its upload field, text
// that is not UTF-8, too long or holds a NUL, a media part over chatterd_media_max_size or
// not an image/video, disk errors) is logged, answered, and leaves no file.
class FormReceiver : public BodyStream, private MultipartSink {
public:
    FormReceiver(ngx_http_request_t* r, std::string_view boundary);
    ReceivedForm& form() { return form_; }

protected:
    // The whole form is valid. The receiver owns the request from here and finalizes it.
    virtual void on_form(ReceivedForm& form) = 0;

private:
    enum class Role { ignored, text, media };

    std::optional<Failure> on_bytes(std::string_view bytes) override;
    std::optional<Failure> on_end() override;
    bool on_part_begin(const PartHeaders& part) override;
    bool on_part_data(std::string_view bytes) override;
    bool on_part_end() override;

    bool begin_text(std::optional<std::string>& field, const char* name);
    bool begin_media(std::optional<ReceivedMedia>& slot, MediaField field, const PartHeaders& part);
    bool take_text(std::string_view bytes);
    bool take_media_bytes(std::string_view bytes);
    bool identify_media();
    std::optional<Failure> check_text(const std::string& value, const char* name) const;
    bool reject(Failure failure);

    const LocConf& conf_;
    ngx_log_t* log_;
    MultipartParser parser_;
    ReceivedForm form_;

    Role role_ = Role::ignored;
    const char* part_name_ = "";  // "username", "message", "image" or "video"
    std::string* text_ = nullptr;
    ReceivedMedia* media_ = nullptr;
    std::optional<MediaScrubber> scrubber_;  // between the part's bytes and its file
    MediaField media_field_ = MediaField::image;
    std::array<char, kSniffBytes> head_{};  // a media part's first bytes, for sniffing
    std::size_t head_size_ = 0;
    bool identified_ = false;

    std::optional<Failure> failure_;  // why a sink callback stopped the parser
};

// chatterd_media_metadata as the scrubber's policy.
MediaScrubber::Policy scrub_policy(const LocConf& conf);

// The boundary of r's multipart/form-data body, or std::nullopt (logged).
std::optional<std::string_view> form_boundary(ngx_http_request_t* r);

}  // namespace chatterd
