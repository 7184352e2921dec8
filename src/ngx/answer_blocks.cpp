#include "ngx/answer_blocks.h"

namespace chatterd {

namespace {

// Marks the buffers whose memory is an answer block (ngx_buf_t::tag: who owns the buffer).
char answer_block_tag;

// The worker's kept blocks. Workers are single-threaded processes: no locking.
u_char* kept_blocks[kMaxKeptAnswerBlocks];
std::size_t kept_count = 0;

}  // namespace

ngx_buf_t* take_answer_block(ngx_pool_t* pool) noexcept {
    auto* b = static_cast<ngx_buf_t*>(ngx_pcalloc(pool, sizeof(ngx_buf_t)));
    if (b == nullptr) return nullptr;
    u_char* block = kept_count > 0 ? kept_blocks[--kept_count]
                                   : static_cast<u_char*>(ngx_alloc(kAnswerBlockSize, pool->log));
    if (block == nullptr) return nullptr;
    b->start = b->pos = b->last = block;
    b->end = block + kAnswerBlockSize;
    b->temporary = 1;
    b->tag = &answer_block_tag;
    return b;
}

void give_back_answer_block(ngx_buf_t* b) noexcept {
    if (b->tag != &answer_block_tag || b->start == nullptr) return;
    if (kept_count < kMaxKeptAnswerBlocks) {
        kept_blocks[kept_count++] = b->start;
    } else {
        ngx_free(b->start);
    }
    b->start = b->pos = b->last = b->end = nullptr;
}

void release_answer_blocks() noexcept {
    while (kept_count > 0) ngx_free(kept_blocks[--kept_count]);
}

}  // namespace chatterd
