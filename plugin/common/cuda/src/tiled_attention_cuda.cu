// The tiled attention kernel (see tiled_attention.cuh).
//
// Block: 4 warps; a warp takes every 4th 16-row tile of the block's slice of the context.  In a
// warp, 4 teams of 8 lanes each take one row of the tile at a time (4 steps per tile), a lane
// holding head_size / 8 coordinates (16 lanes of 8 coordinates double the per-row work outside the
// coordinates).  Per tile: scores of its 16 rows for the G heads, one max per
// head for the tile (so the rescaling of the running state happens at most once per tile), then the
// V rows weighted into per-lane accumulators.  Scores run in log2 units (exp2).  Affine rows are
// read as scale * codes + zero with the zero folded per lane (K: zero * sum of the lane's query
// coordinates; V: a separate accumulator), codebook rows as scale * table[code].
#include <atb/plugin/cuda/paged_attention_cuda.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <iterator>
#include <string>

#include "attention_common.cuh"
#include "dependent_launch.cuh"
#include "row_decode.cuh"
#include "tile_pipeline.cuh"
#include "tiled_attention.cuh"

namespace atb::plugin::cuda {
namespace {

constexpr int kWarps = kTileWarps;
constexpr int kThreads = kTileThreads;
constexpr int kLanes = 8;            // lanes per row: a lane holds head_size / 8 coordinates
constexpr int kTeams = 32 / kLanes;  // rows a warp decodes at once
constexpr int kSteps = kTileRows / kTeams;

// Format pairs with a kernel of their own (no per-row dispatch) at head size 128, 4 heads a block:
// the reference's 16-bit caches (the quantized hot pairs have the tensor-core kernel).
constexpr int kFastPairs[][2] = {
    {row_form(kPlainBf16, 0), row_form(kPlainBf16, 0)},
    {row_form(kPlainF16, 0), row_form(kPlainF16, 0)},
};

template <int D, int G, int KFORM, int VFORM>
__global__ void __launch_bounds__(kThreads)
    tiled_attention_kernel(const AttentionParams p, const __grid_constant__ Codecs codecs, int stages,
                           uint32_t stage_bytes, int splits) {
  constexpr int C = D / kLanes;
  extern __shared__ __align__(16) float shared[];
  float* queries = shared;                                         // [G][D]
  float* key_table = queries + G * D;                              // [256]
  float* value_table = key_table + 256;                            // [256]
  uint8_t* tiles = reinterpret_cast<uint8_t*>(value_table + 256);  // [warp][stage] tiles; [warp][G][D + 2] states after
  const RowCodec& kc = codecs.key;
  const RowCodec& vc = codecs.value;
  const BlockWork w = block_work<G>(p);
  if (w.skip) return;  // the same for every thread of the block

  load_block_inputs<D, G>(p, codecs, w, queries, key_table, value_table);

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
      const LaneRow r = decode_row<C, KFORM>(kc, k_tile + row * uint32_t(p.k_row_bytes), sub, key_table, x);
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
      const LaneRow r = decode_row<C, VFORM>(vc, v_tile + row * uint32_t(p.v_row_bytes), sub, value_table, x);
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
  finish_block<D, G, kWarps>(p, vc, w, splits, states, queries, poisoned);
}

// Whether the kernel reads this codec's rows: every lane's coordinates in one scale block.
bool codec_served(const RowCodec& codec, int head_size) {
  const int per_lane = head_size / kLanes;
  switch (codec.kind) {
    case kPlainF32:
    case kPlainF16:
    case kPlainBf16:
      return true;
    case kAffineUnsigned:
    case kAffineSigned:
    case kCodebook:
      return codec.bits >= 1 && codec.bits <= 8 && codec.block_size > 0 && codec.block_size % per_lane == 0;
    default:
      return false;
  }
}

using KernelFunction = TiledKernel;

template <int D, int G, size_t PAIR = 0>
KernelFunction fast_kernel(int pair) {
  if constexpr (PAIR == std::size(kFastPairs)) {
    return nullptr;
  } else {
    if (pair == int(PAIR)) return &tiled_attention_kernel<D, G, kFastPairs[PAIR][0], kFastPairs[PAIR][1]>;
    return fast_kernel<D, G, PAIR + 1>(pair);
  }
}

template <int D>
KernelFunction generic_kernel(int heads_per_block) {
  if (heads_per_block == 1) return &tiled_attention_kernel<D, 1, kAnyForm, kAnyForm>;
  if (heads_per_block == 2) return &tiled_attention_kernel<D, 2, kAnyForm, kAnyForm>;
  if constexpr (D <= 128) return &tiled_attention_kernel<D, 4, kAnyForm, kAnyForm>;
  return nullptr;
}

KernelFunction kernel_for(const AttentionParams& p, const TiledPlan& plan) {
  if (plan.tensor_core_kernel != nullptr) return plan.tensor_core_kernel;
  switch (p.head_size) {
    case 64:
      return generic_kernel<64>(plan.heads_per_block);
    case 128:
      if (plan.heads_per_block == 4 && plan.fast_pair >= 0) return fast_kernel<128, 4>(plan.fast_pair);
      return generic_kernel<128>(plan.heads_per_block);
    case 256:
      return generic_kernel<256>(plan.heads_per_block);
    default:
      return nullptr;  // plan_tiled_attention plans no other size
  }
}

// Each kernel's shared-memory limit raised once, and its occupancy per shared-memory size, cached:
// both calls cost microseconds.
struct KernelFacts {
  KernelFunction kernel = nullptr;
  size_t shared_bytes = 0;
  int resident_blocks = 1;
};

Expected<int> resident_blocks(KernelFunction kernel, size_t shared_bytes) {
  thread_local KernelFacts cache[16];
  thread_local int next = 0;
  for (const KernelFacts& facts : cache)
    if (facts.kernel == kernel && facts.shared_bytes == shared_bytes) return facts.resident_blocks;
  const cudaError_t raised = cudaFuncSetAttribute(
      reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize, int(kStageBudget + 8192));
  if (raised != cudaSuccess)
    return Status::internal(std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(raised));
  int blocks = 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, reinterpret_cast<const void*>(kernel), kThreads,
                                                    shared_bytes) != cudaSuccess)
    blocks = 1;
  cache[next] = KernelFacts{kernel, shared_bytes, std::max(blocks, 1)};
  next = (next + 1) % 16;
  return std::max(blocks, 1);
}

}  // namespace

TiledPlan plan_tiled_attention(const AttentionParams& p, const RowCodec& key, const RowCodec& value) {
  TiledPlan plan;
  const bool aligned = reinterpret_cast<uintptr_t>(p.pages) % 16 == 0 && p.page_stride % 16 == 0 &&
                       p.v_region_offset % 16 == 0 && p.block_size % kTileRows == 0;
  const bool tiled_size =
      p.head_size == 64 || p.head_size == 128 || p.head_size == 256;  // what generic_kernel instantiates
  if (!aligned || !tiled_size || !codec_served(key, p.head_size) || !codec_served(value, p.head_size)) return plan;
  plan.heads_per_block = p.head_size == 256 ? 2 : 4;
  const int group = p.num_query_heads / p.num_kv_heads;
  if (group < plan.heads_per_block) plan.heads_per_block = group >= 2 ? 2 : 1;
  plan.stage_bytes = uint32_t(kTileRows * (p.k_row_bytes + p.v_row_bytes) + kStageSlack);
  plan.stage_bytes = (plan.stage_bytes + 15) / 16 * 16;
  plan.stages = int(std::min<size_t>(kMaxStages, kStageBudget / (size_t(kWarps) * plan.stage_bytes)));
  if (plan.stages < 2) return TiledPlan{};
  const size_t fixed = sizeof(float) * (size_t(plan.heads_per_block) * p.head_size + 512);
  const size_t tiles = size_t(kWarps) * plan.stages * plan.stage_bytes;
  const size_t states = sizeof(float) * kWarps * plan.heads_per_block * size_t(p.head_size + 2);
  plan.shared_bytes = fixed + std::max(tiles, states);
  const auto form_of = [](const RowCodec& codec) {
    return codec.kind <= kPlainBf16 ? row_form(codec.kind, 0) : row_form(codec.kind, codec.bits);
  };
  for (size_t pair = 0; pair < std::size(kFastPairs); ++pair)
    if (kFastPairs[pair][0] == form_of(key) && kFastPairs[pair][1] == form_of(value)) plan.fast_pair = int(pair);
  if (group <= 8) {
    const TensorCoreKernel tensor_core = mma_attention_kernel_for(p, key, value);
    if (tensor_core.kernel != nullptr) {
      plan.tensor_core_kernel = tensor_core.kernel;
      plan.heads_per_block = 8;
      plan.shared_bytes = tensor_core.shared_bytes;
    }
  }
  return plan;
}

int tiled_blocks_per_split(const AttentionParams& p, const TiledPlan& plan) {
  const int group = p.num_query_heads / p.num_kv_heads;
  return p.num_tokens * p.num_kv_heads * ((group + plan.heads_per_block - 1) / plan.heads_per_block);
}

int tiled_resident_blocks(const AttentionParams& p, const TiledPlan& plan) {
  const KernelFunction kernel = kernel_for(p, plan);
  if (kernel == nullptr) return 1;
  auto blocks = resident_blocks(kernel, plan.shared_bytes);
  return blocks ? *blocks : 1;
}

Status launch_tiled_attention(const AttentionParams& p, const Codecs& codecs, const TiledPlan& plan, int splits,
                              cudaStream_t stream) {
  const KernelFunction kernel = kernel_for(p, plan);
  if (kernel == nullptr) return Status::internal("tiled attention: no kernel for this plan");
  auto ready = resident_blocks(kernel, plan.shared_bytes);  // raises the kernel's shared-memory limit
  if (!ready) return ready.error();
  const dim3 grid(unsigned(tiled_blocks_per_split(p, plan)), unsigned(splits));
  if (plan.tensor_core_kernel != nullptr && p.overlaps_write)  // it waits for the write kernel where it must
    return launch_dependent(kernel, grid, dim3(kThreads), plan.shared_bytes, stream, "tensor-core attention kernel", p,
                            codecs, plan.stages, plan.stage_bytes, splits);
  kernel<<<grid, kThreads, plan.shared_bytes, stream>>>(p, codecs, plan.stages, plan.stage_bytes, splits);
  return last_launch_status("tiled attention kernel");
}

}  // namespace atb::plugin::cuda
