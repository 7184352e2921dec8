// POST /postchatt: {"username": "...", "message": "..."} -> one row, answered {}.
#include "handlers/handlers.h"
#include "handlers/insert_chatt.h"

#include "core/json.h"
#include "ngx/body_stream.h"
#include "ngx/metrics.h"
#include "ngx/reply.h"

namespace chatterd {
namespace {

// Two values of kMaxChattChars characters, each escaped as "\ud83d\ude00" (12 bytes), are
// about 6 KiB of JSON; the rest leaves room for whitespace and keys the apps may add. A
// bigger body cannot be a chatt, and is refused before it is read and copied.
constexpr off_t kMaxBodyBytes = 16 * 1024;

class Postchatt final : public BodyStream {
public:
    explicit Postchatt(ngx_http_request_t* r) : BodyStream(r, "postchatt", kMaxBodyBytes) {}

    ~Postchatt() override { insert_.abandon({}); }

private:
    static ngx_int_t answer_post(ngx_http_request_t* r, const PgOutcome& outcome) {
        body_stream<Postchatt>(r).insert_.settle(r, outcome, {});
        return insert_answer(r, outcome);
    }
    std::optional<Failure> on_bytes(std::string_view bytes) override {
        count_upload_bytes(Endpoint::postchatt, bytes.size());
        body_.append(bytes);
        return std::nullopt;
    }
    std::optional<Failure> on_end() override;

    std::string body_;
    ChattInsert insert_;
};

std::optional<Failure> Postchatt::on_end() {
    ngx_http_request_t* r = request();
    std::string why;
    std::optional<ChattFields> fields = parse_chatt_json(body_, why);
    if (!fields) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "chatterd: postchatt body rejected: %s",
                      why.c_str());
        return Failure::unprocessable;
    }
    ChattRow row{pool_c_string(r, fields->username), pool_c_string(r, fields->message), nullptr,
                 nullptr};
    if (row.username == nullptr || row.message == nullptr) return Failure::internal;
    r->read_event_handler = ngx_http_test_reading;
    insert_.start(r, row, answer_post);
    ngx_http_finalize_request(r, NGX_DONE);
    return std::nullopt;
}

}  // namespace

ngx_int_t postchatt_handler(ngx_http_request_t* r) noexcept try {
    ngx_int_t rc = require_method(r, NGX_HTTP_POST);
    if (rc != NGX_DECLINED) return rc;
    auto* request = make_body_stream<Postchatt>(r, r);
    return request != nullptr ? request->start() : NGX_HTTP_INTERNAL_SERVER_ERROR;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: postchatt: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
