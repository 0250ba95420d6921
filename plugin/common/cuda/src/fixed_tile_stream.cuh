// A warp's stream of 16-row K/V tiles when the row sizes are known at compile time (the
// tensor-core decode kernel's formats): the copies unroll into a fixed number of 16-byte
// asynchronous copies per lane, the page of each tile is stepped to without a division, and a page
// outside the pool poisons the block when its copies are issued, so that the loop body reads no
// block-table entry.
#pragma once

#include <cstdint>

#include "attention_common.cuh"
#include "tile_pipeline.cuh"

namespace atb::plugin::cuda {

template <uint32_t K_ROW, uint32_t V_ROW, int STAGES>
class FixedTileStream {
 public:
  static_assert(STAGES >= 2 && STAGES <= kMaxStages, "stages in flight: 2 .. kMaxStages");
  static constexpr uint32_t kKeyBytes = kTileRows * K_ROW;
  static constexpr uint32_t kStageBytes = (kTileRows * (K_ROW + V_ROW) + kStageSlack + 15) / 16 * 16;

  // Same split of the context over blocks and warps as WarpTileStream.
  __device__ FixedTileStream(const AttentionParams& p, const BlockWork& w, int splits, uint8_t* block_tiles)
      : block_table_(p.block_tables + int64_t(w.seq) * p.block_table_stride), pages_(p.pages),
        page_stride_(p.page_stride), num_pages_(p.num_pages), v_region_offset_(p.v_region_offset),
        block_size_(p.block_size), head_first_row_(w.kv_head * p.block_size) {
    const int warp = threadIdx.x / 32;
    const int first_tile = w.low / kTileRows, all_tiles = (w.high + kTileRows - 1) / kTileRows - first_tile;
    const int per_split = (all_tiles + splits - 1) / splits;
    const int split_begin = first_tile + w.split * per_split;
    const int split_end = min(first_tile + all_tiles, split_begin + per_split);
    first_ = split_begin + warp;
    count_ = first_ < split_end ? (split_end - first_ + kTileWarps - 1) / kTileWarps : 0;
    tiles_ = block_tiles + size_t(warp) * STAGES * kStageBytes;
    const int first_row = first_ * kTileRows;
    slot_ = first_row / block_size_;
    row_in_page_ = first_row % block_size_;
    constexpr int kStepRows = kTileRows * kTileWarps;  // a warp's next tile is kTileWarps tiles on
    step_slots_ = kStepRows / block_size_;
    step_rows_ = kStepRows % block_size_;
  }

  // Runs `body(tile, key_rows, value_rows)` on each of the warp's tiles in order with the copies of
  // the next STAGES - 1 tiles in flight; sets `poisoned` when a tile's page is outside the pool (its
  // rows are then stale, and the block's outputs NaN).
  template <class Body>
  __device__ void for_each_tile(int lane, bool& poisoned, Body&& body) {
#pragma unroll
    for (int k = 0; k < STAGES - 1; ++k) issue(k, lane, poisoned);
    for (int k = 0; k < count_; ++k) {
      issue(k + STAGES - 1, lane, poisoned);
      wait_copies(STAGES - 1);
      __syncwarp();
      const uint8_t* stage = tiles_ + (k % STAGES) * kStageBytes;
      body(first_ + k * kTileWarps, stage, stage + kKeyBytes);
      __syncwarp();  // the stage is refilled by the next iteration's copies
    }
    wait_copies(0);
  }

 private:
  // Starts the copies of the warp's tile k (none past the last tile, none for a page outside the
  // pool) and commits them as one group, so that every iteration commits exactly one.  Tiles are
  // issued in order: the page cursor advances by one warp step each.
  __device__ void issue(int k, int lane, bool& poisoned) {
    if (k < count_) {
      const int64_t page = block_table_[slot_];
      if (page >= 0 && page < num_pages_) {
        const uint8_t* page_start = pages_ + page * int64_t(page_stride_);
        const int64_t row = head_first_row_ + row_in_page_;
        copy_rows<K_ROW>(tiles_ + (k % STAGES) * kStageBytes, page_start + row * K_ROW, lane);
        copy_rows<V_ROW>(tiles_ + (k % STAGES) * kStageBytes + kKeyBytes, page_start + v_region_offset_ + row * V_ROW, lane);
      } else {
        poisoned = true;
      }
      slot_ += step_slots_;
      row_in_page_ += step_rows_;
      if (row_in_page_ >= block_size_) row_in_page_ -= block_size_, ++slot_;
    }
    commit_copies();
  }

  // 16 rows of ROW bytes: ROW 16-byte chunks.
  template <uint32_t ROW>
  __device__ static void copy_rows(uint8_t* destination, const uint8_t* source, int lane) {
#pragma unroll
    for (uint32_t i = 0; i < (ROW + 31) / 32; ++i) {
      const uint32_t chunk = uint32_t(lane) + 32 * i;
      if (ROW % 32 == 0 || chunk < ROW) copy16_async(destination + 16 * chunk, source + 16 * chunk);
    }
  }

  const int32_t* block_table_;
  const uint8_t* pages_;
  uint64_t page_stride_;
  int64_t num_pages_;
  uint64_t v_region_offset_;
  int block_size_, head_first_row_;
  uint8_t* tiles_ = nullptr;
  int first_ = 0, count_ = 0;
  int slot_ = 0, row_in_page_ = 0, step_slots_ = 0, step_rows_ = 0;
};

}  // namespace atb::plugin::cuda
