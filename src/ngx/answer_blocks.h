// Memory for answers built row by row (getchatts, getimages), kept by the worker between
// requests. A 10,000-row answer is 30 blocks of 64 KiB: taken from the heap and handed back
// for every request, they cost fresh pages (page faults, brk) each time, about a tenth of the
// worker's time for such answers. Kept blocks are bounded (kMaxKeptAnswerBlocks per worker).
#pragma once

#include "ngx/ngx.h"

namespace chatterd {

constexpr std::size_t kAnswerBlockSize = 64 * 1024;
constexpr std::size_t kMaxKeptAnswerBlocks = 64;  // 4 MiB per worker at most, once used

// A block of kAnswerBlockSize bytes; null when out of memory.
u_char* take_answer_block(ngx_log_t* log) noexcept;

// Returns a block from take_answer_block to the worker's cache (or to the heap when the cache
// is full), once nothing refers to it any more.
void give_back_answer_block(u_char* block) noexcept;

// Frees the cached blocks (worker exit).
void release_answer_blocks() noexcept;

}  // namespace chatterd
