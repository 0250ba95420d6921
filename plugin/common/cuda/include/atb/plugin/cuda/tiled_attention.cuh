// The tiled attention kernel: each warp streams 16-row tiles of K and V rows of a page into shared
// memory with 16-byte asynchronous copies, several tiles deep, and decodes each row once in
// registers for every query head of its chunk of the GQA group.  Served where pages are 16-byte
// aligned, the page size is a multiple of 16 tokens and a tile fits the shared-memory budget; the
// simple kernel takes every other layer.
//
// Block: 4 warps; a warp takes every 4th 16-row tile of the block's slice of the context.  In a
// warp, 4 teams of 8 lanes each take one row of the tile at a time (4 steps per tile), a lane
// holding head_size / 8 coordinates (16 lanes of 8 coordinates double the per-row work outside the
// coordinates).  Per tile: scores of its 16 rows for the G heads, one max per
// head for the tile (so the rescaling of the running state happens at most once per tile), then the
// V rows weighted into per-lane accumulators.  Scores run in log2 units (exp2).  Affine rows are
// read as scale * codes + zero with the zero folded per lane (K: zero * sum of the lane's query
// coordinates; V: a separate accumulator), codebook rows as scale * table[code].
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <iterator>
#include <string>

#include "attention_common.cuh"
#include "attention_launch.hpp"
#include "launch_schedule.hpp"
#include "row_format.cuh"
#include "tile_pipeline.cuh"

namespace atb::plugin::cuda {
namespace tiled {

constexpr int kWarps = kTileWarps;
constexpr int kThreads = kTileThreads;
constexpr int kLanes = 8;            // lanes per row: a lane holds head_size / 8 coordinates
constexpr int kTeams = 32 / kLanes;  // rows a warp decodes at once
constexpr int kSteps = kTileRows / kTeams;

template <class Rows, int D, int G, int KFORM, int VFORM>
__global__ void __launch_bounds__(kThreads)
    tiled_attention_kernel(const AttentionParams p, const __grid_constant__ Codecs<Rows> codecs, int stages,
                           uint32_t stage_bytes, int splits) {
  constexpr int C = D / kLanes;
  extern __shared__ __align__(16) float shared[];
  float* queries = shared;                                         // [G][D]
  float* key_table = queries + G * D;                              // [256]
  float* value_table = key_table + 256;                            // [256]
  uint8_t* tiles = reinterpret_cast<uint8_t*>(value_table + 256);  // [warp][stage] tiles; [warp][G][D + 2] states after
  const typename Rows::Codec& kc = codecs.key;
  const typename Rows::Codec& vc = codecs.value;
  const BlockWork w = block_work<G>(p);
  if (w.skip) return;  // the same for every thread of the block

  load_block_inputs<Rows, D, G>(p, codecs, w, queries, key_table, value_table);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, team = lane / kLanes, sub = lane % kLanes;
  float q[G][C], q_sum[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    q_sum[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < C; ++i) q_sum[g] += q[g][i] = queries[g * D + sub * C + i];
  }

  const WarpTileStream stream(p, w, splits, tiles, stages, stage_bytes);
  float m[G], l[G], zero_acc[G], acc[G][C];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = zero_acc[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < C; ++i) acc[g][i] = 0.0f;
  }
  bool poisoned = w.poisoned;

  stream.for_each_tile(lane, poisoned, [&](int tile, bool page_ok, const uint8_t* k_tile, const uint8_t* v_tile) {
    float s[kSteps][G], tile_max[G];
    bool valid[kSteps];
#pragma unroll
    for (int g = 0; g < G; ++g) tile_max[g] = -INFINITY;
#pragma unroll
    for (int step = 0; step < kSteps; ++step) {
      const int row = step * kTeams + team, position = tile * kTileRows + row;
      valid[step] = page_ok && position >= w.low && position < w.high;
      float x[C];
      const LaneRow r = Rows::template decode<C, KFORM>(kc, k_tile + row * uint32_t(p.k_row_bytes), sub, key_table, x);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < C; ++i) dot = fmaf(q[g][i], x[i], dot);
        float partial = fmaf(r.scale, dot, r.zero * q_sum[g]);
#pragma unroll
        for (int offset = 1; offset < kLanes; offset *= 2) partial += __shfl_xor_sync(0xffffffffu, partial, offset);
        if (p.soft_cap > 0) partial = p.soft_cap * tanhf(partial / p.soft_cap);
        s[step][g] = valid[step] ? partial * kLog2e : -INFINITY;
        tile_max[g] = fmaxf(tile_max[g], s[step][g]);
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int offset = kLanes; offset < 32; offset *= 2)
        tile_max[g] = fmaxf(tile_max[g], __shfl_xor_sync(0xffffffffu, tile_max[g], offset));
      if (tile_max[g] > m[g]) {                              // the same on every lane of the warp
        const float correction = exp2f(m[g] - tile_max[g]);  // 0 while nothing was seen
        l[g] *= correction;
        zero_acc[g] *= correction;
#pragma unroll
        for (int i = 0; i < C; ++i) acc[g][i] *= correction;
        m[g] = tile_max[g];
      }
    }
#pragma unroll
    for (int step = 0; step < kSteps; ++step) {
      if (!valid[step]) continue;
      const int row = step * kTeams + team;
      float x[C];
      const LaneRow r =
          Rows::template decode<C, VFORM>(vc, v_tile + row * uint32_t(p.v_row_bytes), sub, value_table, x);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float weight = exp2f(s[step][g] - m[g]);
        const float scaled = weight * r.scale;
        l[g] += weight;
        zero_acc[g] = fmaf(weight, r.zero, zero_acc[g]);
#pragma unroll
        for (int i = 0; i < C; ++i) acc[g][i] = fmaf(scaled, x[i], acc[g][i]);
      }
    }
  });

  // The teams share the warp's maxima, so their sums simply add.
#pragma unroll
  for (int offset = kLanes; offset < 32; offset *= 2)
#pragma unroll
    for (int g = 0; g < G; ++g) {
      l[g] += __shfl_xor_sync(0xffffffffu, l[g], offset);
      zero_acc[g] += __shfl_xor_sync(0xffffffffu, zero_acc[g], offset);
#pragma unroll
      for (int i = 0; i < C; ++i) acc[g][i] += __shfl_xor_sync(0xffffffffu, acc[g][i], offset);
    }
  poisoned = __syncthreads_or(poisoned);  // every warp is done with its tiles: the states may reuse them
  float* states = reinterpret_cast<float*>(tiles);
  if (team == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float* state = states + (warp * G + g) * (D + 2);
      if (sub == 0) state[0] = m[g] * kLn2, state[1] = l[g];
#pragma unroll
      for (int i = 0; i < C; ++i) state[2 + sub * C + i] = acc[g][i] + zero_acc[g];
    }
  }
  __syncthreads();
  finish_block<Rows, D, G, kWarps>(p, vc, w, splits, states, queries, poisoned);
}

template <class Rows, int D, int G, size_t PAIR = 0>
TiledKernel<Rows> fast_kernel(int pair) {
  if constexpr (PAIR == std::size(Rows::kFastPairs)) {
    return nullptr;
  } else {
    if (pair == int(PAIR))
      return &tiled_attention_kernel<Rows, D, G, Rows::kFastPairs[PAIR][0], Rows::kFastPairs[PAIR][1]>;
    return fast_kernel<Rows, D, G, PAIR + 1>(pair);
  }
}

template <class Rows, int D>
TiledKernel<Rows> generic_kernel(int heads_per_block) {
  if (heads_per_block == 1) return &tiled_attention_kernel<Rows, D, 1, kAnyForm, kAnyForm>;
  if (heads_per_block == 2) return &tiled_attention_kernel<Rows, D, 2, kAnyForm, kAnyForm>;
  if constexpr (D <= 128) return &tiled_attention_kernel<Rows, D, 4, kAnyForm, kAnyForm>;
  return nullptr;
}

// The instance for the layer: a fast pair's own at head size 128 and 4 heads a block.
template <class Rows>
TiledKernel<Rows> kernel_for(int head_size, int heads_per_block, int fast_pair) {
  switch (head_size) {
    case 64:
      return generic_kernel<Rows, 64>(heads_per_block);
    case 128:
      if (heads_per_block == 4 && fast_pair >= 0) return fast_kernel<Rows, 128, 4>(fast_pair);
      return generic_kernel<Rows, 128>(heads_per_block);
    case 256:
      return generic_kernel<Rows, 256>(heads_per_block);
    default:
      return nullptr;  // plan_tiled_attention plans no other size
  }
}

}  // namespace tiled

template <class Rows>
Expected<TiledPlan<Rows>> plan_tiled_attention(const AttentionParams& p, const typename Rows::Codec& key,
                                               const typename Rows::Codec& value) {
  using namespace tiled;
  TiledPlan<Rows> plan;
  const bool aligned = p.v_region_offset % 16 == 0 && p.block_size % kTileRows == 0;
  const bool tiled_size =
      p.head_size == 64 || p.head_size == 128 || p.head_size == 256;  // what generic_kernel instantiates
  const int per_lane = p.head_size / kLanes;
  if (!aligned || !tiled_size || !Rows::tiled_serves(key, per_lane) || !Rows::tiled_serves(value, per_lane))
    return plan;
  plan.heads_per_block = p.head_size == 256 ? 2 : 4;
  const int group = p.num_query_heads / p.num_kv_heads;
  if (group < plan.heads_per_block) plan.heads_per_block = group >= 2 ? 2 : 1;
  plan.stage_bytes = uint32_t(kTileRows * (p.k_row_bytes + p.v_row_bytes) + kStageSlack);
  plan.stage_bytes = (plan.stage_bytes + 15) / 16 * 16;
  plan.stages = int(std::min<size_t>(kMaxStages, kStageBudget / (size_t(kWarps) * plan.stage_bytes)));
  if (plan.stages < 2) return TiledPlan<Rows>{};
  const size_t fixed = sizeof(float) * (size_t(plan.heads_per_block) * p.head_size + 512);
  const size_t tiles = size_t(kWarps) * plan.stages * plan.stage_bytes;
  const size_t states = sizeof(float) * kWarps * plan.heads_per_block * size_t(p.head_size + 2);
  plan.shared_bytes = fixed + std::max(tiles, states);
  int fast_pair = -1, index = 0;
  for (const auto& pair : Rows::kFastPairs) {
    if (pair[0] == Rows::form_of(key) && pair[1] == Rows::form_of(value)) fast_pair = index;
    ++index;
  }
  plan.kernel = kernel_for<Rows>(p.head_size, plan.heads_per_block, fast_pair);
  if (plan.kernel == nullptr) return TiledPlan<Rows>{};
  auto resident =
      prepare_kernel(reinterpret_cast<const void*>(plan.kernel), kThreads, kStageBudget + 8192, plan.shared_bytes);
  if (!resident) return resident.error();
  plan.resident_blocks = *resident;
  return plan;
}

template <class Rows>
Status launch_tiled_attention(const AttentionParams& p, const Codecs<Rows>& codecs, const TiledPlan<Rows>& plan,
                              int splits, cudaStream_t stream) {
  const dim3 grid(unsigned(blocks_per_split(p, plan.heads_per_block)), unsigned(splits));
  plan.kernel<<<grid, tiled::kThreads, plan.shared_bytes, stream>>>(p, codecs, plan.stages, plan.stage_bytes, splits);
  return last_launch_status("tiled attention kernel");
}

}  // namespace atb::plugin::cuda
