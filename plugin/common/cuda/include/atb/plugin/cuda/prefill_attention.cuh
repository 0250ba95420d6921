// The tensor-core prefill kernel: head size 128, up to 8 query heads per KV head, every row format.
//
// A block of 8 warps serves 128 (query token, head) columns of one sequence and KV head: 128 / Gp
// consecutive query tokens times the group's heads (Gp: the group size rounded up to a power of two).  Per
// 16-token tile of the context the block copies the K and V codes into shared memory (16-byte
// cp.async, a few tiles ahead), decodes them once into fp16 planes (value = high + remainder), and
// each warp runs 16 of the columns through tensor cores as in FlashAttention-2: S^T = Q K^T with the
// query rows as A (in registers), then O += P V with P taken straight from the S accumulators.
// f32 layers (SPLIT): every product is high*high + low*high + high*low of fp16 splits with fp32
// accumulation, so the result matches fp32 arithmetic to ~1e-6.  bf16/f16 layers: the queries, K
// values and weights are single fp16 values (2^-11 relative, as in the decode kernel's 16-bit
// mode) and V values stay split, which takes half the MMAs away.  One block covers a token's whole
// context (no splits).
// Rows with values past fp16's range enter the planes divided by a power of two (plane_factor).
// Queries times the softmax scale must stay below 65504 (|q| below ~7e5 at head size 128).
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "attention_common.cuh"
#include "attention_launch.hpp"
#include "launch_schedule.hpp"
#include "row_format.cuh"
#include "tensor_core.cuh"
#include "tile_pipeline.cuh"

namespace atb::plugin::cuda {
namespace prefill {

constexpr int kD = 128;
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;  // the first half decodes a tile's K rows, the second its V rows
constexpr int kColumns = 16 * kWarps;  // (query token, head) pairs of a block, 16 per warp
constexpr int kPlaneStride = 136;      // halves per plane row: 128 + 8, so ldmatrix rows miss each other's banks
constexpr int kStages = 3;
constexpr size_t kMaxSharedBytes = 200 * 1024;

// Four 8x8 fp16 matrices from shared memory; lane l names row l % 8 of matrix l / 8.
__device__ inline void load_matrices(const __half* row, uint32_t (&r)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ inline void load_matrices_transposed(const __half* row, uint32_t (&r)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

struct Planes {
  __half* key_high;  // [16 tokens][kPlaneStride]
  __half* key_low;
  __half* value_high;
  __half* value_low;
};

// A row whose values pass fp16's range (65504) goes into the planes divided by a power of two, per
// row, so that the factor multiplies back in fp32: K's into the row's scores, V's into its weights
// (<= 1, so V rows stay exact up to 2^30, ~1e9).  The row's largest magnitude over this factor stays
// below 2^15.
__device__ inline float plane_factor(float largest) {
  if (isinf(largest)) return 1.0f;  // an infinite value stays one
  int exponent;
  frexpf(largest, &exponent);  // largest < 2^exponent
  return exponent > 15 ? ldexpf(1.0f, exponent - 15) : 1.0f;
}

// One row's coordinates sub * 16 .. + 15 of a raw tile, decoded and split into the planes; zeros for
// a row outside the context (its bytes may be anything, and a zero weight times NaN is NaN).  The
// row's 8 lanes (sub = lane % 8) agree on its plane_factor, which lane 0 of them writes to `factor`.
template <class Rows>
__device__ inline void decode_into(const typename Rows::Codec& codec, const uint8_t* row, bool row_valid, int sub,
                                   const float* table, __half* high, __half* low, float* factor) {
  float x[16];
  const LaneRow lane = Rows::template decode<16, kAnyForm>(codec, row, sub, table, x);
  __half2 largest[8];  // a tree of maxima
  auto split_and_store = [&](float inverse) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      uint32_t h, l;
      split_pair(x[2 * i] * inverse, x[2 * i + 1] * inverse, h, l);
      *reinterpret_cast<uint32_t*>(high + sub * 16 + 2 * i) = h;
      *reinterpret_cast<uint32_t*>(low + sub * 16 + 2 * i) = l;
      largest[i] = __habs2(*reinterpret_cast<const __half2*>(&h));
    }
  };
#pragma unroll
  for (int i = 0; i < 16; ++i) x[i] = row_valid ? fmaf(lane.scale, x[i], lane.zero) : 0.0f;
  // Stored first, checked after: the check's latency then stays out of every tile's path.
  split_and_store(1.0f);
  if (sub == 0) *factor = 1.0f;
#pragma unroll
  for (int width = 4; width > 0; width /= 2)
#pragma unroll
    for (int i = 0; i < width; ++i) largest[i] = __hmax2(largest[i], largest[i + width]);
  if (__any_sync(0xffffffffu,
                 __hisinf(largest[0].x) || __hisinf(largest[0].y))) {  // rarely; whole warps decode K or V rows
    float exact = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; ++i) exact = fmaxf(exact, fabsf(x[i]));
#pragma unroll
    for (int offset = 1; offset < 8; offset *= 2) exact = fmaxf(exact, __shfl_xor_sync(0xffffffffu, exact, offset));
    const float divisor = plane_factor(exact);
    split_and_store(1.0f / divisor);  // a power of two: exact
    if (sub == 0) *factor = divisor;
  }
}

template <class Rows, int GP, bool SPLIT>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_attention_kernel(const AttentionParams p, const __grid_constant__ Codecs<Rows> codecs, uint32_t stage_bytes,
                             int chunks) {
  constexpr int kTokens = kColumns / GP;  // query tokens of the block
  const int seq = blockIdx.x / chunks, chunk = blockIdx.x % chunks, kv_head = blockIdx.y;
  const int q_begin = p.query_start_loc[seq], q_len = p.query_start_loc[seq + 1] - q_begin;
  if (q_len <= kDecodeQueryTokens || chunk * kTokens >= q_len) return;  // decode kernels' tokens, or none
  // Rows outside the batch's tokens are never read or written; the decode kernels' blocks give
  // those sequences' tokens NaN.
  if (!sequence_is_sane(p, seq)) return;
  const int group = p.num_query_heads / p.num_kv_heads;
  const int seq_len = p.seq_lens[seq];
  bool poisoned = false;
  const int first_local = chunk * kTokens, tokens_here = min(kTokens, q_len - first_local);
  const int first_position = seq_len - q_len + first_local;

  extern __shared__ __align__(16) float shared[];
  float* queries = shared;                     // [kColumns][kD]; the outputs at the end
  float* key_table = queries + kColumns * kD;  // [256]
  float* value_table = key_table + 256;        // [256]
  __half* plane_memory = reinterpret_cast<__half*>(value_table + 256);
  const Planes planes{plane_memory, plane_memory + kTileRows * kPlaneStride,
                      plane_memory + 2 * kTileRows * kPlaneStride, plane_memory + 3 * kTileRows * kPlaneStride};
  uint8_t* raw = reinterpret_cast<uint8_t*>(plane_memory + 4 * kTileRows * kPlaneStride);  // [kStages] raw tiles
  __shared__ float row_factors[2][kTileRows];  // K, V: each plane row's plane_factor
  const typename Rows::Codec& kc = codecs.key;
  const typename Rows::Codec& vc = codecs.value;

  Rows::copy_tables(codecs, key_table, value_table);
  for (int i = threadIdx.x; i < kColumns * kD; i += kThreads) {
    const int column = i / kD, c = i % kD, local = column / GP, head = column % GP;
    float q = 0.0f;
    if (local < tokens_here && head < group) {
      const int token = q_begin + first_local + local;
      q = load_element(p.query, token * p.query_token_stride + (kv_head * group + head) * p.query_head_stride + c,
                       p.io_dtype) *
          p.scale;
    }
    queries[i] = q;
  }
  __syncthreads();
  Rows::rotate_queries_by_block(p, kc, kv_head, queries, kColumns, kD);

  // Warp w: columns 16w .. 16w + 15 as MMA rows g and g + 8.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  uint32_t q_high[kD / 16][4], q_low[kD / 16][4];
#pragma unroll
  for (int s = 0; s < kD / 16; ++s)
#pragma unroll
    for (int r = 0; r < 4; ++r) {  // a0: (g, 2t), a1: (g + 8, 2t), a2: (g, 2t + 8), a3: (g + 8, 2t + 8)
      const float* x = queries + (16 * warp + g + 8 * (r % 2)) * kD + 16 * s + 2 * t + 8 * (r / 2);
      split_pair(x[0], x[1], q_high[s][r], q_low[s][r]);
    }
  int low_of[2], position_of[2];  // the context of this lane's two columns
  bool column_ok[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int column = 16 * warp + g + 8 * r, local = column / GP;
    column_ok[r] = local < tokens_here && column % GP < group;
    position_of[r] = first_position + local;
    low_of[r] = p.sliding_window > 0 ? max(0, position_of[r] - p.sliding_window + 1) : 0;
  }
  const int block_low = p.sliding_window > 0 ? max(0, first_position - p.sliding_window + 1) : 0;
  const int last_low = p.sliding_window > 0 ? max(0, first_position + tokens_here - p.sliding_window) : 0;
  const int block_high = poisoned ? block_low : first_position + tokens_here;
  const int first_tile = block_low / kTileRows, end_tile = (block_high + kTileRows - 1) / kTileRows;

  const PageTiles source(p, seq, kv_head);
  const uint32_t k_tile_bytes = source.key_bytes();
  auto issue = [&](int tile) {  // every iteration commits one group, empty past the last tile
    if (tile < end_tile)
      source.copy(tile, raw + size_t((tile - first_tile) % kStages) * stage_bytes, threadIdx.x, kThreads);
    commit_copies();
  };

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // columns g, g + 8
  float o[kD / 8][4];  // n-tile j: (column g, coordinates 8j + 2t, + 1), (column g + 8, same)
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;

  for (int k = 0; k < kStages - 1; ++k) issue(first_tile + k);
  for (int tile = first_tile; tile < end_tile; ++tile) {
    issue(tile + kStages - 1);
    wait_copies(kStages - 1);
    __syncthreads();  // the raw tile is in, and every warp is done with the previous planes
    const bool page_ok = source.page_ok(source.page(tile));
    poisoned |= !page_ok;
    {
      const uint8_t* raw_tile = raw + size_t((tile - first_tile) % kStages) * stage_bytes;
      const int row = (threadIdx.x / 8) % kTileRows, sub = threadIdx.x % 8, position = tile * kTileRows + row;
      const bool row_valid = page_ok && position >= block_low && position < block_high;
      // K rows, then V rows, from one call site: two call sites (one per kind) made the object a
      // fifth larger and the prefill slower.
      const int which = threadIdx.x < kThreads / 2 ? 0 : 1;
      decode_into<Rows>(
          which == 0 ? kc : vc,
          which == 0 ? raw_tile + row * p.k_row_bytes : raw_tile + k_tile_bytes + row * p.v_row_bytes, row_valid, sub,
          which == 0 ? key_table : value_table, (which == 0 ? planes.key_high : planes.value_high) + row * kPlaneStride,
          (which == 0 ? planes.key_low : planes.value_low) + row * kPlaneStride, &row_factors[which][row]);
    }
    __syncthreads();
    // The plane factors of the lane's tokens 8n + 2t + e % 2 (score and weight slots [n][e]), K then
    // V, applied whatever they are (1 but for rows past fp16's range): a branch around them in this
    // path kept the compiler from moving loads across it.
    auto factor_of = [&](int which, int n, int e) { return row_factors[which][8 * n + 2 * t + e % 2]; };

    // S^T = Q K^T: rows = columns g, g + 8; n-tile n = tokens 8n .. 8n + 7.
    // Four independent accumulators per n-tile (even and odd k-steps, high and remainder products)
    // keep the chains of dependent MMAs short.
    float parts[4][2][4] = {};
#pragma unroll
    for (int step = 0; step < kD / 16; ++step) {
      // Matrices: tokens 0-7 x coords 16step.., tokens 0-7 x 16step + 8.., tokens 8-15 x .., tokens 8-15 x ..+8.
      const int matrix = lane / 8, row = lane % 8;
      const int offset = (row + 8 * (matrix / 2)) * kPlaneStride + 16 * step + 8 * (matrix % 2);
      uint32_t kh[4], kl[4];
      load_matrices(planes.key_high + offset, kh);
      if constexpr (SPLIT) load_matrices(planes.key_low + offset, kl);
      float(&high_part)[2][4] = parts[2 * (step % 2)];
      float(&low_part)[2][4] = parts[2 * (step % 2) + 1];
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        mma(high_part[n], q_high[step], kh[2 * n], kh[2 * n + 1]);
        if constexpr (SPLIT) {
          mma(low_part[n], q_low[step], kh[2 * n], kh[2 * n + 1]);
          mma(low_part[n], q_high[step], kl[2 * n], kl[2 * n + 1]);
        }
      }
    }
    float s[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = (parts[0][n][e] + parts[2][n][e]) + (parts[1][n][e] + parts[3][n][e]);
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] *= factor_of(0, n, e);
    // A tile every column of the block sees whole needs no per-score test (padding columns have zero
    // queries and are never written).
    const bool interior = page_ok && tile * kTileRows >= last_low && tile * kTileRows + kTileRows - 1 <= first_position;
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2, position = tile * kTileRows + 8 * n + 2 * t + e % 2;
        const bool valid = interior || (page_ok && column_ok[r] && position >= low_of[r] && position <= position_of[r]);
        float score = s[n][e];
        if (p.soft_cap > 0) score = p.soft_cap * tanhf(score / p.soft_cap);
        s[n][e] = valid ? score * kLog2e : -INFINITY;
        tile_max[r] = fmaxf(tile_max[r], s[n][e]);
      }
    float scale_of[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
      const float new_max = fmaxf(m[r], tile_max[r]);
      scale_of[r] = new_max == -INFINITY ? 1.0f : exp2f(m[r] - new_max);  // 0 while nothing was seen
      m[r] = new_max;
      l[r] *= scale_of[r];
    }
    if (scale_of[0] != 1.0f || scale_of[1] != 1.0f) {  // once the maxima settle, rarely
#pragma unroll
      for (int j = 0; j < kD / 8; ++j)
        o[j][0] *= scale_of[0], o[j][1] *= scale_of[0], o[j][2] *= scale_of[1], o[j][3] *= scale_of[1];
    }
    float weight[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        weight[n][e] = s[n][e] == -INFINITY ? 0.0f : exp2f(s[n][e] - m[r]);
        l[r] += weight[n][e];
      }
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) weight[n][e] *= factor_of(1, n, e);  // P x factor times V / factor
    // P as the A operand of O += P V: a0 (g, tokens 2t..), a1 (g + 8, 2t..), a2 (g, 8 + 2t..), a3 (g + 8, 8 + 2t..).
    uint32_t p_high[4], p_low[4];
    split_pair(weight[0][0], weight[0][1], p_high[0], p_low[0]);
    split_pair(weight[0][2], weight[0][3], p_high[1], p_low[1]);
    split_pair(weight[1][0], weight[1][1], p_high[2], p_low[2]);
    split_pair(weight[1][2], weight[1][3], p_high[3], p_low[3]);
#pragma unroll
    for (int j = 0; j < kD / 8; j += 2) {
      // Transposed matrices: tokens 0-7 x coords 8j.., tokens 8-15 x 8j.., tokens 0-7 x 8j + 8.., tokens 8-15 x 8j
      // + 8..
      const int matrix = lane / 8, row = lane % 8;
      const int offset = (row + 8 * (matrix % 2)) * kPlaneStride + 8 * j + 8 * (matrix / 2);
      uint32_t vh[4], vl[4];
      load_matrices_transposed(planes.value_high + offset, vh);
      load_matrices_transposed(planes.value_low + offset, vl);
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        mma(o[j + half], p_high, vh[2 * half], vh[2 * half + 1]);
        if constexpr (SPLIT) mma(o[j + half], p_low, vh[2 * half], vh[2 * half + 1]);
        mma(o[j + half], p_high, vl[2 * half], vl[2 * half + 1]);
      }
    }
  }
  wait_copies(0);

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  poisoned = __syncthreads_or(poisoned);  // every warp is done with the queries: they hold the outputs now
  float* outputs = queries;
#pragma unroll
  for (int j = 0; j < kD / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e / 2;
      outputs[(16 * warp + g + 8 * r) * kD + 8 * j + 2 * t + e % 2] = o[j][e] / l[r];
    }
  __syncthreads();
  Rows::rotate_outputs(p, vc, kv_head, outputs, kColumns, kD);
  for (int i = threadIdx.x; i < kColumns * kD; i += kThreads) {
    const int column = i / kD, c = i % kD, local = column / GP, head = column % GP;
    if (local >= tokens_here || head >= group) continue;
    const int token = q_begin + first_local + local;
    store_element(p.output, token * p.output_token_stride + (kv_head * group + head) * p.output_head_stride + c,
                  p.io_dtype, poisoned ? NAN : outputs[i]);
  }
}

template <class Rows, int GP, bool SPLIT>
Status launch(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan, cudaStream_t stream) {
  static const cudaError_t raised = cudaFuncSetAttribute(
      prefill_attention_kernel<Rows, GP, SPLIT>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kMaxSharedBytes));
  if (raised != cudaSuccess)
    return Status::internal(std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(raised));
  constexpr int kTokens = kColumns / GP;
  const int chunks = (p.num_tokens + kTokens - 1) / kTokens;  // the longest sequence has at most every token
  const dim3 grid(unsigned(p.num_seqs) * unsigned(chunks), unsigned(p.num_kv_heads));
  prefill_attention_kernel<Rows, GP, SPLIT>
      <<<grid, kThreads, plan.shared_bytes, stream>>>(p, codecs, plan.stage_bytes, chunks);
  return last_launch_status("prefill attention kernel");
}

template <class Rows, bool SPLIT>
Status launch_for_group(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan,
                        cudaStream_t stream) {
  switch (plan.heads_padded) {
    case 1:
      return launch<Rows, 1, SPLIT>(p, codecs, plan, stream);
    case 2:
      return launch<Rows, 2, SPLIT>(p, codecs, plan, stream);
    case 4:
      return launch<Rows, 4, SPLIT>(p, codecs, plan, stream);
    default:
      return launch<Rows, 8, SPLIT>(p, codecs, plan, stream);
  }
}

}  // namespace prefill

template <class Rows>
PrefillPlan plan_prefill_attention(const AttentionParams& p, const typename Rows::Codec& key,
                                   const typename Rows::Codec& value) {
  using namespace prefill;
  PrefillPlan plan;
  const int group = p.num_query_heads / p.num_kv_heads;
  const bool aligned = p.v_region_offset % 16 == 0 && p.block_size % kTileRows == 0;
  if (p.head_size != kD || group > 8 || !aligned || !Rows::prefill_serves(key) || !Rows::prefill_serves(value))
    return plan;  // a layer this kernel does not serve
  plan.stage_bytes = uint32_t((kTileRows * (p.k_row_bytes + p.v_row_bytes) + kStageSlack + 15) / 16 * 16);
  plan.shared_bytes = sizeof(float) * (size_t(kColumns) * kD + 512) + sizeof(__half) * 4 * kTileRows * kPlaneStride +
                      size_t(kStages) * plan.stage_bytes;
  if (plan.shared_bytes > kMaxSharedBytes) return PrefillPlan{};
  plan.heads_padded = group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8;
  return plan;
}

template <class Rows>
Status launch_prefill_attention(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan,
                                cudaStream_t stream) {
  return p.io_dtype == ATB_DTYPE_F32 ? prefill::launch_for_group<Rows, true>(p, codecs, plan, stream)
                                     : prefill::launch_for_group<Rows, false>(p, codecs, plan, stream);
}

}  // namespace atb::plugin::cuda
