#include "ngx/body_text.h"

namespace chatterd {

bool read_body_text(ngx_http_request_t* r, std::string& text) {
    if (r->request_body == nullptr) return true;
    for (ngx_chain_t* cl = r->request_body->bufs; cl != nullptr; cl = cl->next) {
        ngx_buf_t* b = cl->buf;
        if (ngx_buf_in_memory(b)) {
            text.append(reinterpret_cast<const char*>(b->pos), b->last - b->pos);
            continue;
        }
        if (!b->in_file) continue;
        std::size_t start = text.size();
        text.resize(start + static_cast<std::size_t>(b->file_last - b->file_pos));
        ssize_t n = ngx_read_file(b->file, reinterpret_cast<u_char*>(&text[start]),
                                  text.size() - start, b->file_pos);
        if (n != static_cast<ssize_t>(text.size() - start)) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "chatterd: cannot read the request body back from its temporary file");
            return false;
        }
    }
    return true;
}

}  // namespace chatterd
