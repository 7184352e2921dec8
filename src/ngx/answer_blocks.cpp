#include "ngx/answer_blocks.h"

namespace chatterd {

namespace {

// The worker's kept blocks. Workers are single-threaded processes: no locking.
u_char* kept_blocks[kMaxKeptAnswerBlocks];
std::size_t kept_count = 0;

}  // namespace

u_char* take_answer_block(ngx_log_t* log) noexcept {
    if (kept_count > 0) return kept_blocks[--kept_count];
    return static_cast<u_char*>(ngx_alloc(kAnswerBlockSize, log));
}

void give_back_answer_block(u_char* block) noexcept {
    if (kept_count < kMaxKeptAnswerBlocks) {
        kept_blocks[kept_count++] = block;
    } else {
        ngx_free(block);
    }
}

void release_answer_blocks() noexcept {
    while (kept_count > 0) ngx_free(kept_blocks[--kept_count]);
}

}  // namespace chatterd
