// What the tiled attention kernels share: 16-row tiles of a page's K and V rows streamed into
// shared memory by 16-byte asynchronous copies, several tiles in flight per warp, and reading
// packed codes out of shared memory at any byte alignment.
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>

#include <cstdint>

#include "attention_common.cuh"

namespace atb::plugin::cuda {

constexpr int kTileWarps = 4;
constexpr int kTileThreads = 32 * kTileWarps;
constexpr int kTileRows = 16;
constexpr int kMaxStages = 4;
constexpr uint32_t kStageSlack = 16;        // bytes the word loader may read past a tile
constexpr size_t kStageBudget = 96 * 1024;  // keeps two blocks on a multiprocessor
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ inline void copy16_async(void* shared_destination, const void* global_source) {
  const unsigned destination = static_cast<unsigned>(__cvta_generic_to_shared(shared_destination));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(destination), "l"(global_source));
}

// The L2 policy of bytes that a step reads once (a decode step's K/V rows): their lines are evicted
// first, so that what the step reads again (split states for the merge, block tables) stays in L2.
__device__ inline uint64_t read_once_policy() {
  uint64_t policy;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// copy16_async under an L2 policy.
__device__ inline void copy16_async(void* shared_destination, const void* global_source, uint64_t policy) {
  const unsigned destination = static_cast<unsigned>(__cvta_generic_to_shared(shared_destination));
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(destination), "l"(global_source),
               "l"(policy));
}

__device__ inline void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }

// mbarriers in shared memory (addresses from __cvta_generic_to_shared): set up for ARRIVALS
// arrivals a phase (one thread; fence_barrier_inits() and a barrier before anyone uses them), one
// arrival without bytes by an elected lane of a converged warp, and a wait until the phase of
// `parity` has completed.
template <int ARRIVALS>
__device__ inline void init_barrier(uint32_t barrier) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(barrier), "n"(ARRIVALS));
}
__device__ inline void fence_barrier_inits() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
__device__ inline void arrive_once(uint32_t barrier) {
  asm volatile(
      "{ .reg .pred one; elect.sync _|one, 0xffffffff; @one mbarrier.arrive.shared::cta.b64 _, [%0]; }" ::"r"(barrier)
      : "memory");
}
__device__ inline void wait_barrier(uint32_t barrier, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{ .reg .pred ready; mbarrier.try_wait.parity.shared::cta.b64 ready, [%1], %2; selp.u32 %0, 1, 0, ready; }"
        : "=r"(done)
        : "r"(barrier), "r"(parity)
        : "memory");
  } while (!done);
}

// Waits until at most `pending` (0..3) of this thread's copy groups are still in flight.
__device__ inline void wait_copies(int pending) {
  switch (pending) {
    case 0:
      asm volatile("cp.async.wait_group 0;\n" ::);
      break;
    case 1:
      asm volatile("cp.async.wait_group 1;\n" ::);
      break;
    case 2:
      asm volatile("cp.async.wait_group 2;\n" ::);
      break;
    default:
      asm volatile("cp.async.wait_group 3;\n" ::);
      break;
  }
}

// NB bytes from shared memory at any byte address, as little-endian words (reads up to 4 bytes past).
template <int NB>
__device__ inline void load_words(const uint8_t* at, uint32_t (&words)[(NB + 3) / 4]) {
  constexpr int W = (NB + 3) / 4;
  // Offsetting the pointer itself (not a cast integer) keeps it known as shared memory: LDS, not LD.
  const unsigned misalignment = unsigned(reinterpret_cast<uintptr_t>(at) & 3);
  const uint32_t* aligned = reinterpret_cast<const uint32_t*>(at - misalignment);
  const unsigned shift = misalignment * 8;
  uint32_t raw[W + 1];
#pragma unroll
  for (int j = 0; j <= W; ++j) raw[j] = aligned[j];
#pragma unroll
  for (int j = 0; j < W; ++j) words[j] = __funnelshift_r(raw[j], raw[j + 1], shift);
}

// Code i (BITS wide, LSB first) of packed words; i is a compile-time constant after unrolling.
template <int BITS, int W>
__device__ inline uint32_t code_in(const uint32_t (&words)[W], int i) {
  const int bit = i * BITS, word = bit / 32, offset = bit % 32;
  const uint32_t mask = (1u << BITS) - 1u;
  if (offset + BITS <= 32) return (words[word] >> offset) & mask;
  return __funnelshift_r(words[word], words[word + 1], offset) & mask;
}

// Where the pool's pages lie: the fields of AttentionParams that the tile copies read.
struct PagePool {
  const uint8_t* pages;
  uint64_t page_stride;
  int64_t num_pages;
  uint64_t v_region_offset;

  __device__ explicit PagePool(const AttentionParams& p)
      : pages(p.pages), page_stride(p.page_stride), num_pages(p.num_pages), v_region_offset(p.v_region_offset) {}
  __device__ bool holds(int64_t page) const { return page >= 0 && page < num_pages; }
  __device__ const uint8_t* key_rows(int64_t page, int64_t row, uint32_t row_bytes) const {
    return pages + page * int64_t(page_stride) + row * row_bytes;
  }
  __device__ const uint8_t* value_rows(int64_t page, int64_t row, uint32_t row_bytes) const {
    return pages + page * int64_t(page_stride) + v_region_offset + row * row_bytes;
  }
};

// Where one sequence's 16-row tiles of one KV head's K and V rows lie in the pool, and copying one
// into shared memory: K rows, then V rows, 16 bytes per copy, by `threads` threads of which the
// caller is `thread`.
class PageTiles {
 public:
  __device__ PageTiles(const AttentionParams& p, int seq, int kv_head)
      : pool_(p),
        block_table_(p.block_tables + int64_t(seq) * p.block_table_stride),
        k_row_bytes_(uint32_t(p.k_row_bytes)),
        v_row_bytes_(uint32_t(p.v_row_bytes)),
        block_size_(p.block_size),
        kv_head_(kv_head) {}

  __device__ int64_t page(int tile) const { return block_table_[tile * kTileRows / block_size_]; }
  // Entry `index` of the sequence's block table: the page of its tokens index * block_size ...
  __device__ int64_t page_at(int index) const { return block_table_[index]; }
  __device__ bool page_ok(int64_t page) const { return pool_.holds(page); }
  __device__ uint32_t key_bytes() const { return kTileRows * k_row_bytes_; }

  // Starts the copies of `tile` (none for a page outside the pool), with `policy...` (none, or one
  // L2 policy); the caller commits them.
  template <class... Policy>
  __device__ void copy(int tile, uint8_t* destination, int thread, int threads, Policy... policy) const {
    const int64_t page_id = page(tile);
    if (!page_ok(page_id)) return;
    copy_rows(page_id, (tile * kTileRows) % block_size_, destination, thread, threads, policy...);
  }

  // As copy(), for the 16 rows from `row_in_page` on of page `page_id`, which must be in the pool:
  // for callers that walk the pages themselves.
  template <class... Policy>
  __device__ void copy_rows(int64_t page_id, int row_in_page, uint8_t* destination, int thread, int threads,
                            Policy... policy) const {
    const int64_t first_row = int64_t(kv_head_) * block_size_ + row_in_page;
    const uint8_t* k_source = pool_.key_rows(page_id, first_row, k_row_bytes_);
    const uint8_t* v_source = pool_.value_rows(page_id, first_row, v_row_bytes_);
    const uint32_t k_bytes = key_bytes(), v_bytes = kTileRows * v_row_bytes_, step = 16 * uint32_t(threads);
    for (uint32_t at = 16 * uint32_t(thread); at < k_bytes; at += step)
      copy16_async(destination + at, k_source + at, policy...);
    for (uint32_t at = 16 * uint32_t(thread); at < v_bytes; at += step)
      copy16_async(destination + k_bytes + at, v_source + at, policy...);
  }

  // The whole warp, converged, with warp-uniform arguments: one lane elected inside the asm starts
  // two bulk copies (the tensor memory accelerator) of the 16 K rows and the 16 V rows from
  // `row_in_page` on of page `page_id` (in the pool) into `destination` (a shared-memory address: K
  // rows, then V rows), which complete their bytes on the mbarrier at `barrier` after announcing
  // them there (one arrival).  Rows of a tile are 16-byte multiples, and their pages 16-byte aligned.
  __device__ void bulk_copy_rows(int64_t page_id, int row_in_page, uint32_t destination, uint32_t barrier) const {
    const int64_t first_row = int64_t(kv_head_) * block_size_ + row_in_page;
    const uint8_t* k_source = pool_.key_rows(page_id, first_row, k_row_bytes_);
    const uint8_t* v_source = pool_.value_rows(page_id, first_row, v_row_bytes_);
    const uint32_t k_bytes = key_bytes(), v_bytes = kTileRows * v_row_bytes_;
    asm volatile(
        "{ .reg .pred one;\n"
        "elect.sync _|one, 0xffffffff;\n"
        "@one mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n"
        "@one cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%2], [%3], %4, [%0];\n"
        "@one cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%5], [%6], %7, [%0]; }" ::"r"(barrier),
        "r"(k_bytes + v_bytes), "r"(destination), "l"(k_source), "r"(k_bytes), "r"(destination + k_bytes),
        "l"(v_source), "r"(v_bytes)
        : "memory");
  }

 private:
  PagePool pool_;
  const int32_t* block_table_;
  uint32_t k_row_bytes_, v_row_bytes_;
  int block_size_, kv_head_;
};

// The 16-row tiles of the block's split of the context that one warp takes: tiles first,
// first + kTileWarps, ... (count of them), split boundaries aligned to tiles so that no two splits
// read one.
struct WarpTiles {
  int first = 0, count = 0;
};
__device__ inline WarpTiles warp_tiles(const AttentionParams& p, const BlockWork& w, int splits, int warp) {
  const int first_tile = w.low / kTileRows, all_tiles = (w.high + kTileRows - 1) / kTileRows - first_tile;
  const SplitRange range = split_range(all_tiles, splits_used(w, splits), splits, w.split, p.uneven_splits != 0);
  const int split_begin = first_tile + range.begin;
  const int split_end = first_tile + range.end;
  WarpTiles tiles;
  tiles.first = split_begin + warp;
  tiles.count = tiles.first < split_end ? (split_end - tiles.first + kTileWarps - 1) / kTileWarps : 0;
  return tiles;
}

// One warp's tiles (warp_tiles).  Tile k of the warp goes to stage k % stages of the warp's shared
// memory, K rows first, then V rows.
class WarpTileStream {
 public:
  __device__ WarpTileStream(const AttentionParams& p, const BlockWork& w, int splits, uint8_t* block_tiles, int stages,
                            uint32_t stage_bytes)
      : source_(p, w.seq, w.kv_head), stages_(stages), stage_bytes_(stage_bytes) {
    const int warp = threadIdx.x / 32;
    const WarpTiles mine = warp_tiles(p, w, splits, warp);
    first_ = mine.first;
    count_ = mine.count;
    tiles_ = block_tiles + size_t(warp) * stages * stage_bytes;
  }

  __device__ int count() const { return count_; }
  __device__ int tile(int k) const { return first_ + k * kTileWarps; }
  __device__ const uint8_t* key_rows(int k) const { return tiles_ + size_t(k % stages_) * stage_bytes_; }
  __device__ const uint8_t* value_rows(int k) const { return key_rows(k) + source_.key_bytes(); }

  // Runs `body(tile, page_ok, key_rows, value_rows)` on each of the warp's tiles in order, the copies
  // of the next stages - 1 tiles in flight meanwhile; a tile whose page is outside the pool is passed
  // with page_ok false (its rows are stale) and sets `poisoned`.
  template <class Body>
  __device__ void for_each_tile(int lane, bool& poisoned, Body&& body) const {
    for (int k = 0; k < stages_ - 1; ++k) issue(k, lane);
    for (int k = 0; k < count_; ++k) {
      issue(k + stages_ - 1, lane);
      wait_copies(stages_ - 1);
      __syncwarp();
      const int tile_index = tile(k);
      const bool page_is_ok = source_.page_ok(source_.page(tile_index));
      poisoned |= !page_is_ok;
      body(tile_index, page_is_ok, key_rows(k), value_rows(k));
      __syncwarp();  // the stage is refilled by the next iteration's copies
    }
    wait_copies(0);
  }

 private:
  // Starts the copies of the warp's tile k (none past the last tile) and commits them as one group,
  // so that every iteration commits exactly one.
  __device__ void issue(int k, int lane) const {
    if (k < count_) source_.copy(tile(k), tiles_ + size_t(k % stages_) * stage_bytes_, lane, 32, read_once_policy());
    commit_copies();
  }

  PageTiles source_;
  int stages_;
  uint32_t stage_bytes_;
  uint8_t* tiles_ = nullptr;
  int first_ = 0, count_ = 0;
};

}  // namespace atb::plugin::cuda
