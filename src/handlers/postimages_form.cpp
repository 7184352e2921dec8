#include "handlers/postimages_form.h"

#include "core/utf8.h"
#include "handlers/insert_chatt.h"
#include "ngx/metrics.h"

namespace chatterd {
namespace {

// 255 characters are at most 1020 UTF-8 bytes: a text part past that can never be stored, so
// it is refused while it arrives, before it costs memory.
constexpr std::size_t kMaxTextFieldBytes = kMaxChattChars * 4;

}  // namespace

void ReceivedForm::discard_media() {
    for (std::optional<ReceivedMedia>* media : {&image, &video}) {
        if (*media) (*media)->file.discard();
    }
}

FormReceiver::FormReceiver(ngx_http_request_t* r, std::string_view boundary)
    : BodyStream(r, "postimages"),
      conf_(*loc_conf(r)),
      log_(r->connection->log),
      parser_(boundary, *this) {}

std::optional<Failure> FormReceiver::on_bytes(std::string_view bytes) {
    count_upload_bytes(Endpoint::postimages, bytes.size());
    MultipartStatus status = parser_.feed(bytes);
    if (status == MultipartStatus::stopped) return failure_;
    if (status == MultipartStatus::ok) return std::nullopt;
    ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: %s", describe(status));
    return Failure::unprocessable;
}

std::optional<Failure> FormReceiver::on_end() {
    MultipartStatus status = parser_.finish();
    if (status != MultipartStatus::ok) {
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: %s", describe(status));
        return Failure::unprocessable;
    }
    if (!form_.username || !form_.message) {
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: form has no \"%s\" part",
                      form_.username ? "message" : "username");
        return Failure::unprocessable;
    }
    for (auto [value, name] :
         {std::pair{&*form_.username, "username"}, std::pair{&*form_.message, "message"}}) {
        if (std::optional<Failure> failure = check_text(*value, name)) return failure;
    }
    if ((form_.image && form_.imageupload) || (form_.video && form_.videoupload)) {
        const char* field = form_.image && form_.imageupload ? "image" : "video";
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: form has both \"%s\" and \"%supload\"", field, field);
        return Failure::unprocessable;
    }
    on_form(form_);
    return std::nullopt;
}

// As strict as postchatt: what PostgreSQL would refuse is refused here, before any file is
// named, and never joins (and fails) an INSERT of several posts.
std::optional<Failure> FormReceiver::check_text(const std::string& value, const char* name) const {
    // libpq takes text parameters as C strings: a NUL would silently cut the value.
    if (value.find('\0') != std::string::npos) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: form part \"%s\" contains a NUL byte", name);
        return Failure::unprocessable;
    }
    if (std::optional<std::size_t> at = first_invalid_utf8(value)) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: form part \"%s\" is not UTF-8 (byte %uz)", name, *at);
        return Failure::unprocessable;
    }
    if (utf8_length(value) > kMaxChattChars) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: form part \"%s\" is longer than %uz characters", name,
                      kMaxChattChars);
        return Failure::message_too_long;
    }
    return std::nullopt;
}

bool FormReceiver::reject(Failure failure) {
    failure_ = failure;
    return false;
}

// ---- parts ---------------------------------------------------------------------------------

bool FormReceiver::on_part_begin(const PartHeaders& part) {
    role_ = Role::ignored;
    if (part.name == "username") return begin_text(form_.username, "username");
    if (part.name == "message") return begin_text(form_.message, "message");
    if (part.name == "image") return begin_media(form_.image, MediaField::image, part);
    if (part.name == "video") return begin_media(form_.video, MediaField::video, part);
    if (part.name == "imageupload") return begin_text(form_.imageupload, "imageupload");
    if (part.name == "videoupload") return begin_text(form_.videoupload, "videoupload");
    return true;  // unknown parts are ignored
}

bool FormReceiver::begin_text(std::optional<std::string>& field, const char* name) {
    if (field) {
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: form part \"%s\" sent twice",
                      name);
        return reject(Failure::unprocessable);
    }
    field.emplace();
    text_ = &*field;
    part_name_ = name;
    role_ = Role::text;
    return true;
}

bool FormReceiver::begin_media(std::optional<ReceivedMedia>& slot, MediaField field,
                               const PartHeaders& part) {
    part_name_ = field == MediaField::image ? "image" : "video";
    if (!part.has_filename) {
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: form part \"%s\" is not a file",
                      part_name_);
        return reject(Failure::unprocessable);
    }
    if (slot) {
        ngx_log_error(NGX_LOG_INFO, log_, 0, "chatterd: postimages: form part \"%s\" sent twice",
                      part_name_);
        return reject(Failure::unprocessable);
    }
    slot.emplace(log_);
    if (!slot->file.create(to_view(conf_.media_root))) return reject(Failure::internal);
    media_ = &*slot;
    scrubber_.emplace([file = &slot->file](std::string_view bytes) { return file->write(bytes); },
                      scrub_policy(conf_));
    media_field_ = field;
    head_size_ = 0;
    identified_ = false;
    role_ = Role::media;
    return true;
}

bool FormReceiver::on_part_data(std::string_view bytes) {
    switch (role_) {
    case Role::ignored: return true;
    case Role::text: return take_text(bytes);
    case Role::media: return take_media_bytes(bytes);
    }
    return true;
}

bool FormReceiver::take_text(std::string_view bytes) {
    if (text_->size() + bytes.size() > kMaxTextFieldBytes) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: form part \"%s\" is longer than %uz bytes", part_name_,
                      kMaxTextFieldBytes);
        return reject(Failure::message_too_long);
    }
    text_->append(bytes);
    return true;
}

bool FormReceiver::take_media_bytes(std::string_view bytes) {
    if (static_cast<off_t>(scrubber_->consumed() + bytes.size()) > conf_.media_max_size) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: media part \"%s\" exceeds chatterd_media_max_size %O",
                      part_name_, conf_.media_max_size);
        return reject(Failure::payload_too_large);
    }
    if (!scrubber_->feed(bytes)) return reject(Failure::internal);
    if (identified_) return true;
    std::size_t n = std::min(bytes.size(), head_.size() - head_size_);
    bytes.copy(head_.data() + head_size_, n);
    head_size_ += n;
    return head_size_ < head_.size() || identify_media();
}

bool FormReceiver::on_part_end() {
    bool ok = role_ != Role::media || identified_ || identify_media();
    if (ok && role_ == Role::media) {
        if (!scrubber_->finish()) return reject(Failure::internal);
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log_, 0,
                       "chatterd: postimages: media part \"%s\": %uL metadata bytes removed, "
                       "%uL blanked",
                       part_name_, scrubber_->removed(), scrubber_->blanked());
    }
    role_ = Role::ignored;
    return ok;
}

bool FormReceiver::identify_media() {
    identified_ = true;
    std::optional<MediaType> type = sniff_media_type(media_field_, {head_.data(), head_size_});
    if (!type) {
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "chatterd: postimages: media part \"%s\" is not a supported %s (%uz bytes)",
                      part_name_, part_name_, static_cast<std::size_t>(scrubber_->consumed()));
        return reject(Failure::unsupported_media);
    }
    media_->type = *type;
    return true;
}

MediaScrubber::Policy scrub_policy(const LocConf& conf) {
    return static_cast<MediaMetadata>(conf.media_metadata) == MediaMetadata::keep
               ? MediaScrubber::Policy::keep
               : MediaScrubber::Policy::strip;
}

std::optional<std::string_view> form_boundary(ngx_http_request_t* r) {
    std::optional<std::string_view> boundary;
    if (r->headers_in.content_type != nullptr)
        boundary = multipart_boundary(to_view(r->headers_in.content_type->value));
    if (!boundary) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chatterd: postimages: body is not multipart/form-data with a boundary");
    }
    return boundary;
}

}  // namespace chatterd
