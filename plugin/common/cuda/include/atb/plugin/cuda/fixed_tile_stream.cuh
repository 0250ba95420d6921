// A warp's stream of 16-row K/V tiles when the row sizes are known at compile time (the
// tensor-core decode kernel's formats).  A tile's K rows and its V rows are each one contiguous run
// of bytes in its page, so one lane (elected inside the copy's asm) copies them with two bulk copies
// (the Hopper tensor memory accelerator), which signal a per-stage mbarrier when their bytes have
// landed.  The whole warp computes each copy's operands, as warp-uniform values (the page number
// goes through a warp reduction), so that they live in uniform registers: a copy issued from
// per-lane registers takes a loop that elects a lane and moves its operands over (~85 instructions
// a tile with the page read).
// The block-table entry of the next tile is read while the current one is issued, and the page of
// each tile is stepped to without a division.  A page outside the pool poisons the block when its
// tile is issued (its stage's barrier is then completed without bytes), so that the loop body reads
// no block-table entry.  Where the write kernel of the forward still runs (overlaps_write), a tile
// holding one of the sequence's new positions is issued only once that kernel has completed.
// With a PITCH, each row lands PITCH bytes after the one before (one bulk copy per row): rows whose
// length is a multiple of 128 bytes, read 8 rows at a time by ldmatrix, would otherwise all start
// in the same banks.
#pragma once

#include <cstdint>

#include "attention_common.cuh"
#include "tile_pipeline.cuh"

namespace atb::plugin::cuda {

template <uint32_t K_ROW, uint32_t V_ROW, int STAGES, uint32_t PITCH = 0>
class FixedTileStream {
 public:
  static_assert(STAGES >= 2 && STAGES <= kMaxStages, "stages in flight: 2 .. kMaxStages");
  static_assert(PITCH == 0 ||
                    (PITCH >= K_ROW && PITCH >= V_ROW && PITCH % 16 == 0 && K_ROW % 16 == 0 && V_ROW % 16 == 0),
                "pitched rows: 16-byte multiples, the pitch no shorter than a row");
  static constexpr uint32_t kKeyPitch = PITCH == 0 ? K_ROW : PITCH;  // bytes from one row to the next in a stage
  static constexpr uint32_t kValuePitch = PITCH == 0 ? V_ROW : PITCH;
  static constexpr uint32_t kKeyBytes = kTileRows * kKeyPitch;  // a stage's K rows, then its V rows
  static constexpr uint32_t kStageBytes = (kTileRows * (kKeyPitch + kValuePitch) + kStageSlack + 15) / 16 * 16;

  // The warp's tiles are warp_tiles(p, w, splits, warp), as WarpTileStream's.
  // `block_barriers`: kTileWarps x STAGES mbarriers in shared memory.
  __device__ FixedTileStream(const AttentionParams& p, const BlockWork& w, int splits, uint8_t* block_tiles,
                             uint64_t* block_barriers)
      : block_table_(p.block_tables + int64_t(w.seq) * p.block_table_stride),
        pool_(p),
        block_size_(p.block_size),
        head_first_row_(w.kv_head * p.block_size) {
    const int warp = int(__reduce_or_sync(~0u, threadIdx.x / 32));  // provably warp-uniform
    const WarpTiles mine = warp_tiles(p, w, splits, warp);
    first_ = mine.first;
    count_ = mine.count;
    stage_tiles_ = block_tiles + size_t(warp) * STAGES * kStageBytes;
    tiles_ = static_cast<uint32_t>(__cvta_generic_to_shared(stage_tiles_));
    barriers_ = static_cast<uint32_t>(__cvta_generic_to_shared(block_barriers + warp * STAGES));
    const int first_row = first_ * kTileRows;
    slot_ = first_row / block_size_;
    row_in_page_ = first_row % block_size_;
    constexpr int kStepRows = kTileRows * kTileWarps;  // a warp's next tile is kTileWarps tiles on
    step_slots_ = kStepRows / block_size_;
    step_rows_ = kStepRows % block_size_;
    // The first of the warp's tiles that holds a position from w.first_new on (a poisoned block,
    // whose first_new may be anything, has no tiles).
    const int ahead = w.first_new / kTileRows - first_;
    first_waiting_ = ahead <= 0 ? 0 : (ahead + kTileWarps - 1) / kTileWarps;
  }

  // Starts the copies of the warp's first STAGES - 1 tiles (as early as the kernel can: they land
  // while it sets up its tables and queries); sets `poisoned` as for_each_tile does.
  __device__ void start(int lane, bool& poisoned) {
    if (lane == 0) {
#pragma unroll
      for (int s = 0; s < STAGES; ++s) init_barrier<1>(barrier(s));
      fence_barrier_inits();  // visible to the copy engine
    }
    __syncwarp();
    if (count_ > 0) next_page_ = block_table_[slot_];
#pragma unroll
    for (int k = 0; k < STAGES - 1; ++k) issue(k, poisoned);
  }

  // After start(): runs `body(tile, key_rows, value_rows)` on each of the warp's tiles in order with
  // the copies of the next STAGES - 1 tiles in flight (the body may rewrite its stage, then issuing
  // fence.proxy.async before it returns); sets `poisoned` when a tile's page is outside the pool (its
  // rows are then stale, and the block's outputs NaN).
  template <class Body>
  __device__ void for_each_tile(bool& poisoned, Body&& body) {
    for (int k = 0; k < count_; ++k) {
      issue(k + STAGES - 1, poisoned);  // into the stage the previous iteration released
      wait(k);
      uint8_t* stage = stage_tiles_ + (k % STAGES) * kStageBytes;
      body(first_ + k * kTileWarps, stage, stage + kKeyBytes);
      __syncwarp();  // every lane is done with the stage before it is refilled
    }
  }

 private:
  static constexpr uint32_t kKeyCopyBytes = kTileRows * K_ROW, kValueCopyBytes = kTileRows * V_ROW;
  static_assert(kKeyCopyBytes % 16 == 0 && kValueCopyBytes % 16 == 0 && kStageBytes % 16 == 0,
                "bulk copies move 16-byte multiples");

  __device__ uint32_t barrier(int stage) const { return barriers_ + 8u * uint32_t(stage); }

  // The whole warp (converged): one lane starts the bulk copies of the warp's tile k into its stage (none past the
  // last tile; for a page outside the pool none either, and the stage's barrier completes at once).
  // Tiles are issued in order: the page cursor advances by one warp step each.
  __device__ void issue(int k, bool& poisoned) {
    if (k >= count_) return;
    if (k == first_waiting_) wait_for_previous_kernel();                        // tiles are issued in order, each once
    const int64_t page = int32_t(__reduce_or_sync(~0u, uint32_t(next_page_)));  // every lane read the same entry
    const int row = head_first_row_ + row_in_page_;
    slot_ += step_slots_;
    row_in_page_ += step_rows_;
    if (row_in_page_ >= block_size_) row_in_page_ -= block_size_, ++slot_;
    if (k + 1 < count_) next_page_ = block_table_[slot_];
    const uint32_t bar = barrier(k % STAGES);
    if (!pool_.holds(page)) {
      poisoned = true;
      arrive_once(bar);
      return;
    }
    const uint32_t destination = tiles_ + (k % STAGES) * kStageBytes;
    const uint8_t* key_source = pool_.key_rows(page, row, K_ROW);
    const uint8_t* value_source = pool_.value_rows(page, row, V_ROW);
    if constexpr (PITCH == 0)
      copy_tile(bar, destination, key_source, value_source);
    else
      copy_rows(bar, destination, key_source, value_source);
  }

  // One lane, elected inside the asm: behind `if (lane == 0)` the compiler cannot tell that one lane
  // executes the copies and wraps each in a loop over the active lanes (~10 instructions and a
  // dependency stall per tile).  The rows are read once a step (read_once_policy).
  __device__ void copy_tile(uint32_t bar, uint32_t destination, const uint8_t* key_source,
                            const uint8_t* value_source) const {
    asm volatile(
        "{ .reg .pred one;\n"
        "elect.sync _|one, 0xffffffff;\n"
        "@one mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n"
        "@one cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%2], [%3], %4, [%0], "
        "%8;\n"
        "@one cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%5], [%6], %7, [%0], "
        "%8; }" ::"r"(bar),
        "r"(kKeyCopyBytes + kValueCopyBytes), "r"(destination), "l"(key_source), "r"(kKeyCopyBytes),
        "r"(destination + kKeyBytes), "l"(value_source), "r"(kValueCopyBytes), "l"(read_once_policy())
        : "memory");
  }

  // The same, a bulk copy per row (its K row and its V row) to the pitched places.
  __device__ void copy_rows(uint32_t bar, uint32_t destination, const uint8_t* key_source,
                            const uint8_t* value_source) const {
    asm volatile(
        "{ .reg .pred one; elect.sync _|one, 0xffffffff; @one mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1; "
        "}" ::"r"(bar),
        "r"(kKeyCopyBytes + kValueCopyBytes)
        : "memory");
    const uint64_t policy = read_once_policy();
#pragma unroll
    for (int r = 0; r < kTileRows; ++r)
      asm volatile(
          "{ .reg .pred one;\n"
          "elect.sync _|one, 0xffffffff;\n"
          "@one cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%1], [%2], %3, [%0], "
          "%7;\n"
          "@one cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%4], [%5], %6, [%0], "
          "%7; }" ::"r"(bar),
          "r"(destination + r * kKeyPitch), "l"(key_source + r * K_ROW), "r"(K_ROW),
          "r"(destination + kKeyBytes + r * kValuePitch), "l"(value_source + r * V_ROW), "r"(V_ROW), "l"(policy)
          : "memory");
  }

  // Every lane: until tile k's stage has landed (its barrier's (k / STAGES)-th phase completed).
  __device__ void wait(int k) const { wait_barrier(barrier(k % STAGES), uint32_t(k / STAGES) & 1u); }

  const int32_t* block_table_;
  PagePool pool_;
  int block_size_, head_first_row_;
  int first_waiting_ = 0;  // the warp's first tile (index k) that may hold rows still being written
  uint8_t* stage_tiles_ = nullptr;
  uint32_t tiles_ = 0;     // shared-memory address of the warp's stages
  uint32_t barriers_ = 0;  // shared-memory address of the warp's STAGES barriers
  int32_t next_page_ = 0;  // the block-table entry of the next tile to issue, read a tile ahead
  int first_ = 0, count_ = 0;
  int slot_ = 0, row_in_page_ = 0, step_slots_ = 0, step_rows_ = 0;
};

}  // namespace atb::plugin::cuda
