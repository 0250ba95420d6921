// The tensor-core prefill kernel: head size 128, up to 8 query heads per KV head, every row format.
//
// A block's 8 multiplying warps serve 128 (query token, head) columns of one sequence and KV head:
// 128 / Gp consecutive query tokens times the group's heads (Gp: the group size rounded up to a power
// of two).  Per step of 64 context tokens (four 16-token tiles, each from its page) the block copies
// the K and V codes into shared memory (16-byte cp.async, ahead of the step), decodes them once into
// fp16 planes (value = high + remainder), and each multiplying warp runs 16 of the columns through
// tensor cores as in FlashAttention-2: S^T = Q K^T with the query rows as A (in registers), then
// O += P V with P taken straight from the S accumulators.  A step of 64 keys, not 16, gives each warp
// eight independent score accumulators and pays the barriers, the running-max update and the rescale
// once per 64 keys.
// 16-bit layers: warp-specialised.  kProducerWarps more warps only copy and decode, a step ahead, into
// one of two plane buffers, and hand it over by named barriers (full / empty per buffer), so that the
// decoding runs beside the products instead of between barriers that every warp waits at.  Producer
// warp w brings tile w of each step in by two bulk copies (K rows, V rows) on the raw stage's
// mbarrier; the pages come from a cursor over the block table read a step ahead.  f32 layers (four
// planes a step, no room for a second set): every warp copies (cp.async) and decodes, then every warp
// multiplies.
// f32 layers (SPLIT): every product is high*high + low*high + high*low of fp16 splits with fp32
// accumulation, so the result matches fp32 arithmetic to ~1e-6.  bf16/f16 layers: the queries, K and
// V values and the weights are single fp16 values (2^-11 relative, as in the decode kernel's 16-bit
// mode): one MMA per product.  One block covers a token's whole context (no splits).
// Instances of a format fixed at compile time (16-bit layers) decode codes straight into fp16 pairs
// where the policy has such a decoding (Rows::decode_half16: a few instructions a pair, not a few a
// value); a warp holding a row that may pass fp16's range decodes in f32 as the others do.
// Rows with values past fp16's range enter the planes divided by a power of two (plane_factor).
// Queries times the softmax scale and log2 e must stay below 65504 (|q| below ~5e5 at head size 128).
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <string>
#include <type_traits>

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
constexpr int kStepTiles = 4;          // 16-row tiles of a step
constexpr int kStepRows = kStepTiles * kTileRows;
constexpr int kScoreTiles = kStepRows / 8;  // MMA n-tiles of a step's scores
constexpr int kProducerWarps = 4;  // 16-bit layers: warps that only copy and decode, beside the kWarps that multiply
constexpr int kPlaneBuffers = 2;   // 16-bit layers: plane sets, one decoded while the other is multiplied
// Threads of a block, and raw steps in shared memory (f32 layers: the one decoded and the next
// arriving; 16-bit layers: one more, since their decoding runs a step ahead of the products).
template <bool SPLIT>
constexpr int kThreadsOf = SPLIT ? kThreads : kThreads + 32 * kProducerWarps;
template <bool SPLIT>
constexpr int kStagesOf = SPLIT ? 2 : 3;
// Named barriers of the 16-bit kernel (0 is __syncthreads'): a plane buffer is full (producers
// arrive, multipliers wait) or empty (the other way round); the producers among themselves.
constexpr int kFullBarrier = 1;
constexpr int kEmptyBarrier = kFullBarrier + kPlaneBuffers;
constexpr int kProducerBarrier = kEmptyBarrier + kPlaneBuffers;
constexpr int kMultiplierBarrier = kProducerBarrier + 1;  // the multipliers among themselves
// Dynamic shared memory of a block: 227 KB on Hopper, less the kernel's static arrays (row factors
// and flags per plane buffer, below); more, and cudaFuncSetAttribute refuses the launch.
constexpr size_t kMaxSharedBytes = 225 * 1024;

__device__ inline void named_sync(int barrier, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(barrier), "r"(threads) : "memory");
}
__device__ inline void named_arrive(int barrier, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(barrier), "r"(threads) : "memory");
}

struct Planes {
  __half* key_high;  // [kStepRows tokens][kPlaneStride]
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

// decode_into's f32 path: decode to f32, then split (or round) into the planes.
template <class Rows, int FORM, bool LOW>
__device__ inline bool decode_into_f32(const typename Rows::Codec& codec, const uint8_t* row, bool row_valid, int sub,
                                       const float* table, __half* high, __half* low, float* factor) {
  float x[16];
  const LaneRow lane = Rows::template decode<16, FORM>(codec, row, sub, table, x);
  __half2 largest[8];  // a tree of maxima
  auto split_and_store = [&](float inverse) {
    uint32_t h[8], l[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if constexpr (LOW)
        split_pair(x[2 * i] * inverse, x[2 * i + 1] * inverse, h[i], l[i]);
      else
        h[i] = half_pair(x[2 * i] * inverse, x[2 * i + 1] * inverse);
      largest[i] = __habs2(*reinterpret_cast<const __half2*>(&h[i]));
    }
    // 16-byte stores: a lane's 16 values are 32 contiguous bytes of the plane row.
    reinterpret_cast<uint4*>(high + sub * 16)[0] = make_uint4(h[0], h[1], h[2], h[3]);
    reinterpret_cast<uint4*>(high + sub * 16)[1] = make_uint4(h[4], h[5], h[6], h[7]);
    if constexpr (LOW) {
      reinterpret_cast<uint4*>(low + sub * 16)[0] = make_uint4(l[0], l[1], l[2], l[3]);
      reinterpret_cast<uint4*>(low + sub * 16)[1] = make_uint4(l[4], l[5], l[6], l[7]);
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
    return divisor != 1.0f;
  }
  return false;
}

// The f32 path where the fp16 one usually serves: a call, so that its code (unrolled over a step's
// rounds, it was most of the kernel's) stays out of the instruction cache.
template <class Rows, int FORM, bool LOW>
__device__ __noinline__ bool decode_into_f32_rarely(const typename Rows::Codec& codec, const uint8_t* row,
                                                    bool row_valid, int sub, const float* table, __half* high,
                                                    __half* low, float* factor) {
  return decode_into_f32<Rows, FORM, LOW>(codec, row, row_valid, sub, table, high, low, factor);
}

// One row's coordinates sub * 16 .. + 15 of a raw tile, decoded and split into the planes; zeros for
// a row outside the context (its bytes may be anything, and a zero weight times NaN is NaN).  The
// row's 8 lanes (sub = lane % 8) agree on its plane_factor, which lane 0 of them writes to `factor`;
// true where it is not 1.  FORM: the row format fixed at compile time, or kAnyForm; LOW: whether the
// remainder plane is written (f32 layers only: 16-bit layers multiply the high parts alone).
template <class Rows, int FORM, bool LOW>
__device__ inline bool decode_into(const typename Rows::Codec& codec, const uint8_t* row, bool row_valid, int sub,
                                   const float* table, const uint32_t* pairs, __half* high, __half* low,
                                   float* factor) {
  if constexpr (!LOW && Rows::template decodes_half<FORM>()) {
    // fp16 pairs straight from the codes; a warp with a row that may pass fp16's range takes the f32
    // decoding instead (every lane of a row agrees; the check is warp-wide).
    uint32_t h[8];
    const bool fits = Rows::template decode_half16<FORM>(codec, row, row_valid, sub, pairs, h);
    if (__all_sync(0xffffffffu, fits)) {
      reinterpret_cast<uint4*>(high + sub * 16)[0] = make_uint4(h[0], h[1], h[2], h[3]);
      reinterpret_cast<uint4*>(high + sub * 16)[1] = make_uint4(h[4], h[5], h[6], h[7]);
      if (sub == 0) *factor = 1.0f;
      return false;
    }
    return decode_into_f32_rarely<Rows, FORM, LOW>(codec, row, row_valid, sub, table, high, low, factor);
  } else {
    return decode_into_f32<Rows, FORM, LOW>(codec, row, row_valid, sub, table, high, low, factor);
  }
}

template <class Rows, int GP, bool SPLIT, int KFORM, int VFORM>
__global__ void __launch_bounds__(kThreadsOf<SPLIT>, 1)
    prefill_attention_kernel(const AttentionParams p, const __grid_constant__ Codecs<Rows> codecs, uint32_t tile_bytes,
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
  constexpr int kBlockThreads = kThreadsOf<SPLIT>, kStages = kStagesOf<SPLIT>;
  float* key_table = shared;                                             // [256]
  float* value_table = key_table + 256;                                  // [256]
  uint32_t* key_pairs = reinterpret_cast<uint32_t*>(value_table + 256);  // [kPairTableWords]: Rows::copy_pair_tables
  uint32_t* value_pairs = key_pairs + kPairTableWords;
  __half* plane_memory = reinterpret_cast<__half*>(value_pairs + kPairTableWords);
  // [kColumns][kD] before the first step and after the last: the queries, then the outputs.
  float* queries = reinterpret_cast<float*>(plane_memory);
  static_assert(sizeof(float) * kColumns * kD <= sizeof(__half) * 4 * kStepRows * kPlaneStride,
                "the queries fit in the planes' memory");
  const Planes planes{plane_memory, plane_memory + kStepRows * kPlaneStride,
                      plane_memory + 2 * kStepRows * kPlaneStride, plane_memory + 3 * kStepRows * kPlaneStride};
  uint8_t* raw = reinterpret_cast<uint8_t*>(plane_memory + 4 * kStepRows * kPlaneStride);  // [kStages][kStepTiles]
  __shared__ float row_factors[kPlaneBuffers][2][kStepRows];  // plane buffer, K or V: each plane row's plane_factor
  __shared__ unsigned step_tiles_ok[kPlaneBuffers];           // 16-bit layers: decode_step's tiles_ok per buffer
  __shared__ int step_scaled[kPlaneBuffers][kProducerWarps];  // and whether a producer warp scaled a row
  __shared__ uint64_t raw_landed[kStagesOf<false>];           // 16-bit layers: mbarriers of the raw stages
  static_assert(
      kMaxSharedBytes + sizeof(row_factors) + sizeof(step_tiles_ok) + sizeof(step_scaled) + sizeof(raw_landed) <=
          227 * 1024,
      "static and dynamic shared memory must fit a Hopper block's 227 KB");
  const typename Rows::Codec& kc = codecs.key;
  const typename Rows::Codec& vc = codecs.value;

  Rows::copy_tables(codecs, key_table, value_table);
  // Scores come out in log2 units (queries times the softmax scale and log2 e), ready for exp2: the
  // soft cap is applied in the same units.
  const float query_factor = p.scale * kLog2e, log2_cap = p.soft_cap * kLog2e;
  for (int i = threadIdx.x; i < kColumns * kD; i += kBlockThreads) {
    const int column = i / kD, c = i % kD, local = column / GP, head = column % GP;
    float q = 0.0f;
    if (local < tokens_here && head < group) {
      const int token = q_begin + first_local + local;
      q = load_element(p.query, token * p.query_token_stride + (kv_head * group + head) * p.query_head_stride + c,
                       p.io_dtype) *
          query_factor;
    }
    queries[i] = q;
  }
  __syncthreads();
  Rows::copy_pair_tables(codecs, key_table, value_table, key_pairs, value_pairs);  // seen after the step barrier
  Rows::rotate_queries_by_block(p, kc, kv_head, queries, kColumns, kD);

  // Warp w: columns 16w .. 16w + 15 as MMA rows g and g + 8.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const bool multiplies = warp < kWarps;  // the others (16-bit layers) only copy and decode
  uint32_t q_high[kD / 16][4], q_low[kD / 16][4];
  if (multiplies) {
#pragma unroll
    for (int s = 0; s < kD / 16; ++s)
#pragma unroll
      for (int r = 0; r < 4; ++r) {  // a0: (g, 2t), a1: (g + 8, 2t), a2: (g, 2t + 8), a3: (g + 8, 2t + 8)
        const float* x = queries + (16 * warp + g + 8 * (r % 2)) * kD + 16 * s + 2 * t + 8 * (r / 2);
        split_pair(x[0], x[1], q_high[s][r], q_low[s][r]);
      }
  }
  __syncthreads();                // the planes' memory is free
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
  const uint32_t stage_bytes = kStepTiles * tile_bytes;
  const int first_step = first_tile / kStepTiles, end_step = (end_tile + kStepTiles - 1) / kStepTiles;
  auto tile_in_range = [&](int tile) { return tile >= first_tile && tile < end_tile; };
  // The threads that copy walk the tiles' pages in order: a cursor (block-table index, first row
  // within the page) moved a tile at a time, and each step's pages read one step before its copies
  // are issued, so that neither a division nor a block-table load sits on the copies' path.
  const int tiles_per_page = p.block_size / kTileRows;  // whole tiles (plan_prefill_attention)
  int cursor_index = first_step * kStepTiles / tiles_per_page;
  int cursor_row = first_step * kStepTiles % tiles_per_page * kTileRows;
  struct StepPages {
    int32_t id[kStepTiles];  // block-table entries; -1 for a tile out of range
    int row[kStepTiles];
  };
  auto look_up = [&](int step) {
    StepPages pages;
#pragma unroll
    for (int i = 0; i < kStepTiles; ++i) {
      pages.id[i] = tile_in_range(step * kStepTiles + i) ? int32_t(source.page_at(cursor_index)) : -1;
      pages.row[i] = cursor_row;
      cursor_row += kTileRows;
      if (cursor_row == p.block_size) cursor_row = 0, ++cursor_index;
    }
    return pages;
  };
  StepPages ahead{};     // the pages of the next step to issue
  uint32_t ok_ring = 0;  // tiles_ok of the steps in the raw stages, oldest in the low kStepTiles bits
  // Copies a step's raw tiles with `workers` threads; every call commits one group, empty past the
  // last step, and pushes the step's tiles_ok (bit i: tile i in range and on a page of the pool).
  [[maybe_unused]] auto issue = [&](int step, int worker, int workers) {
    unsigned ok = 0;
    if (step < end_step) {
      const StepPages now = ahead;
      ahead = look_up(step + 1);
#pragma unroll
      for (int i = 0; i < kStepTiles; ++i)
        if (source.page_ok(now.id[i])) {
          source.copy_rows(now.id[i], now.row[i], raw + size_t(step % kStages) * stage_bytes + i * tile_bytes, worker,
                           workers);
          ok |= 1u << i;
        }
    }
    ok_ring = (ok_ring >> kStepTiles) | (ok << (kStepTiles * (kStages - 1)));
    commit_copies();
  };
  [[maybe_unused]] auto start_copies = [&](int worker, int workers) {
    ahead = look_up(first_step);
    for (int k = 0; k < kStages - 1; ++k) issue(first_step + k, worker, workers);
  };
  // 16-bit layers: the producers' copies of a step are bulk copies, producer warp w issuing tile w's
  // K and V rows, which land on the step's mbarrier (raw_landed[(step - first_step) % kStages],
  // kProducerWarps arrivals a phase): a tile is two instructions of one lane, not 16-byte copies
  // by every producer thread.  Pushes the step's tiles_ok as issue() does.
  auto landed_barrier = [&](int step) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(&raw_landed[(step - first_step) % kStages]));
  };
  [[maybe_unused]] auto issue_bulk = [&](int step, int producer_warp) {
    unsigned ok = 0;
    if (step < end_step) {
      const StepPages now = ahead;
      ahead = look_up(step + 1);
      int32_t id = now.id[0];
      int row = now.row[0];
#pragma unroll
      for (int i = 0; i < kStepTiles; ++i) {
        ok |= unsigned(source.page_ok(now.id[i])) << i;
        if (producer_warp == i) id = now.id[i], row = now.row[i];
      }
      // Every lane holds the same values; the reductions make that visible to the compiler, so that
      // the elected lane's copies take no loop over the active lanes.
      id = int32_t(__reduce_or_sync(~0u, uint32_t(id)));
      row = int(__reduce_or_sync(~0u, uint32_t(row)));
      const uint32_t destination = static_cast<uint32_t>(
          __cvta_generic_to_shared(raw + size_t(step % kStages) * stage_bytes + producer_warp * tile_bytes));
      if (source.page_ok(id))
        source.bulk_copy_rows(id, row, destination, landed_barrier(step));
      else
        arrive_once(landed_barrier(step));
    }
    ok_ring = (ok_ring >> kStepTiles) | (ok << (kStepTiles * (kStages - 1)));
  };

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // columns g, g + 8
  float o[kD / 8][4];  // n-tile j: (column g, coordinates 8j + 2t, + 1), (column g + 8, same)
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;

  // The planes of buffer b: 16-bit layers keep two buffers where f32 layers keep the remainder planes.
  auto planes_of = [&](int buffer) {
    if constexpr (SPLIT) return planes;
    return buffer == 0 ? Planes{planes.key_high, planes.key_high, planes.value_high, planes.value_high}
                       : Planes{planes.key_low, planes.key_low, planes.value_low, planes.value_low};
  };
  // A step's raw tiles (stage step % kStages) decoded into plane buffer `buffer` by W threads (worker:
  // this one's index among them); tiles_ok: bit i set where tile i of the step is in range and on a
  // page of the pool (from issue()).  Returns whether a row this thread decoded entered its planes
  // divided (plane_factor).  A tile is 256 tasks (8 lanes a row, K rows then V rows), W of them a round.
  auto decode_step = [&](int step, int buffer, int worker, auto workers, unsigned tiles_ok) {
    constexpr int W = decltype(workers)::value, kRoundsPerTile = 256 / W, kRounds = kStepTiles * kRoundsPerTile;
    static_assert(W % 32 == 0 && 256 % W == 0, "whole warps decode K rows or V rows");
    const Planes planes = planes_of(buffer);
    bool scaled_rows = false;  // a row this thread decoded entered its planes divided (plane_factor)
    // Generic formats decode one round at a time (unrolled, their decoding made the kernel's code a
    // fifth larger and slower); formats fixed at compile time decode them all unrolled.
#pragma unroll(KFORM == kAnyForm ? 1 : kRounds)
    for (int k = 0; k < kRounds; ++k) {
      const int i = k / kRoundsPerTile, tile = step * kStepTiles + i;
      const bool in_range = tile_in_range(tile);
      const bool page_ok = (tiles_ok >> i) & 1u;
      poisoned |= in_range && !page_ok;
      const uint8_t* raw_tile = raw + size_t(step % kStages) * stage_bytes + i * tile_bytes;
      const int task = worker + W * (k % kRoundsPerTile);  // of the tile's 256
      const int row = (task / 8) % kTileRows, sub = task % 8, position = tile * kTileRows + row;
      const bool row_valid = page_ok && position >= block_low && position < block_high;
      const int plane_row = i * kTileRows + row;
      // Whole warps decode K rows (the first half of a tile's tasks) or V rows (the second).
      const int which = task / 128;
      const uint8_t* source_row =
          which == 0 ? raw_tile + row * p.k_row_bytes : raw_tile + k_tile_bytes + row * p.v_row_bytes;
      __half* high = (which == 0 ? planes.key_high : planes.value_high) + plane_row * kPlaneStride;
      __half* low = (which == 0 ? planes.key_low : planes.value_low) + plane_row * kPlaneStride;
      if constexpr (KFORM == kAnyForm && VFORM == kAnyForm) {
        // One call site for both kinds: two made the object a fifth larger and the prefill slower.
        scaled_rows |= decode_into<Rows, kAnyForm, SPLIT>(
            which == 0 ? kc : vc, source_row, row_valid, sub, which == 0 ? key_table : value_table,
            which == 0 ? key_pairs : value_pairs, high, low, &row_factors[buffer][which][plane_row]);
      } else if (which == 0) {
        scaled_rows |= decode_into<Rows, KFORM, SPLIT>(kc, source_row, row_valid, sub, key_table, key_pairs, high, low,
                                                       &row_factors[buffer][0][plane_row]);
      } else {
        scaled_rows |= decode_into<Rows, VFORM, SPLIT>(vc, source_row, row_valid, sub, value_table, value_pairs, high,
                                                       low, &row_factors[buffer][1][plane_row]);
      }
    }
    return scaled_rows;
  };
  // The products and the softmax of a decoded step.
  auto compute_step = [&](int step, int buffer, unsigned tiles_ok, bool any_scaled) {
    const Planes planes = planes_of(buffer);
    const int step_position = step * kStepRows;
    // The plane factors of the lane's tokens 8n + 2t + e % 2 (score and weight slots [n][e]), K then V.
    auto factor_of = [&](int which, int n, int e) { return row_factors[buffer][which][8 * n + 2 * t + e % 2]; };

    // S^T = Q K^T: rows = columns g, g + 8; n-tile n = tokens 8n .. 8n + 7 of the step, eight
    // independent accumulators.
    float s[kScoreTiles][4] = {};
#pragma unroll
    for (int d_step = 0; d_step < kD / 16; ++d_step)
#pragma unroll
      for (int i = 0; i < kStepTiles; ++i) {
        // Matrices: tokens 0-7 x coords 16d_step.., tokens 0-7 x 16d_step + 8.., tokens 8-15 x .., tokens 8-15 x
        // ..+8 (of tile i).
        const int matrix = lane / 8, row = lane % 8;
        const int offset = (i * kTileRows + row + 8 * (matrix / 2)) * kPlaneStride + 16 * d_step + 8 * (matrix % 2);
        uint32_t kh[4], kl[4];
        load_matrices(planes.key_high + offset, kh);
        if constexpr (SPLIT) load_matrices(planes.key_low + offset, kl);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float(&accumulator)[4] = s[2 * i + half];
          mma(accumulator, q_high[d_step], kh[2 * half], kh[2 * half + 1]);
          if constexpr (SPLIT) {
            mma(accumulator, q_low[d_step], kh[2 * half], kh[2 * half + 1]);
            mma(accumulator, q_high[d_step], kl[2 * half], kl[2 * half + 1]);
          }
        }
      }
    if (any_scaled) {
#pragma unroll
      for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] *= factor_of(0, n, e);
    }
    // Apart from the loop below: inside it, the branch over each score's tanh made that loop ~2,000
    // instructions long, and the jumps over them cost instruction fetches every step.
    if (p.soft_cap > 0) {
#pragma unroll
      for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = log2_cap * tanhf(s[n][e] / log2_cap);
    }
    // A step every column of the block sees whole needs no per-score test (padding columns have zero
    // queries and are never written): the block takes the unmasked copy of the loop below.
    const bool step_ok = tiles_ok == (1u << kStepTiles) - 1;
    const bool interior = step_ok && step_position >= last_low && step_position + kStepRows - 1 <= first_position;
    float step_max[2] = {-INFINITY, -INFINITY};
    auto take_scores = [&](auto masked) {
#pragma unroll
      for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e / 2, position = step_position + 8 * n + 2 * t + e % 2;
          const bool valid = !decltype(masked)::value || (((tiles_ok >> (n / 2)) & 1u) && column_ok[r] &&
                                                          position >= low_of[r] && position <= position_of[r]);
          s[n][e] = valid ? s[n][e] : -INFINITY;
          step_max[r] = fmaxf(step_max[r], s[n][e]);
        }
    };
    if (interior)
      take_scores(std::false_type{});
    else
      take_scores(std::true_type{});
    float scale_of[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      step_max[r] = fmaxf(step_max[r], __shfl_xor_sync(0xffffffffu, step_max[r], 1));
      step_max[r] = fmaxf(step_max[r], __shfl_xor_sync(0xffffffffu, step_max[r], 2));
      const float new_max = fmaxf(m[r], step_max[r]);
      scale_of[r] = new_max == -INFINITY ? 1.0f : exp2f(m[r] - new_max);  // 0 while nothing was seen
      m[r] = new_max;
      l[r] *= scale_of[r];
    }
    if (scale_of[0] != 1.0f || scale_of[1] != 1.0f) {  // once the maxima settle, rarely
#pragma unroll
      for (int j = 0; j < kD / 8; ++j)
        o[j][0] *= scale_of[0], o[j][1] *= scale_of[0], o[j][2] *= scale_of[1], o[j][3] *= scale_of[1];
    }
    // exp2(s - m) with m taken as 0 while it is -inf: a score of -inf then weighs 0 either way.
    const float max_of[2] = {m[0] == -INFINITY ? 0.0f : m[0], m[1] == -INFINITY ? 0.0f : m[1]};
#pragma unroll
    for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float weight = exp2f(s[n][e] - max_of[e / 2]);
        l[e / 2] += weight;
        s[n][e] = weight;
      }
    if (any_scaled) {  // P x factor times V / factor
#pragma unroll
      for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] *= factor_of(1, n, e);
    }
#pragma unroll
    for (int k_step = 0; k_step < kStepTiles; ++k_step) {
      // P as the A operand of O += P V over tokens 16k_step..: a0 (g, 2t..), a1 (g + 8, 2t..), a2 (g,
      // 8 + 2t..), a3 (g + 8, 8 + 2t..).
      const float(&w0)[4] = s[2 * k_step];
      const float(&w1)[4] = s[2 * k_step + 1];
      uint32_t p_high[4], p_low[4];
      if constexpr (SPLIT) {
        split_pair(w0[0], w0[1], p_high[0], p_low[0]);
        split_pair(w0[2], w0[3], p_high[1], p_low[1]);
        split_pair(w1[0], w1[1], p_high[2], p_low[2]);
        split_pair(w1[2], w1[3], p_high[3], p_low[3]);
      } else {
        p_high[0] = half_pair(w0[0], w0[1]), p_high[1] = half_pair(w0[2], w0[3]);
        p_high[2] = half_pair(w1[0], w1[1]), p_high[3] = half_pair(w1[2], w1[3]);
      }
#pragma unroll
      for (int j = 0; j < kD / 8; j += 2) {
        // Transposed matrices: tokens 0-7 x coords 8j.., tokens 8-15 x 8j.., tokens 0-7 x 8j + 8.., tokens 8-15 x
        // 8j + 8.. (of tile k_step).
        const int matrix = lane / 8, row = lane % 8;
        const int offset = (k_step * kTileRows + row + 8 * (matrix % 2)) * kPlaneStride + 8 * j + 8 * (matrix / 2);
        uint32_t vh[4], vl[4];
        load_matrices_transposed(planes.value_high + offset, vh);
        if constexpr (SPLIT) load_matrices_transposed(planes.value_low + offset, vl);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          mma(o[j + half], p_high, vh[2 * half], vh[2 * half + 1]);
          if constexpr (SPLIT) {
            mma(o[j + half], p_low, vh[2 * half], vh[2 * half + 1]);
            mma(o[j + half], p_high, vl[2 * half], vl[2 * half + 1]);
          }
        }
      }
    }
  };

  // o / l of the warp's columns into the planes' memory (the outputs before their rotation back).
  float* outputs = queries;
  auto write_outputs = [&] {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
      l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int j = 0; j < kD / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        outputs[(16 * warp + g + 8 * r) * kD + 8 * j + 2 * t + e % 2] = o[j][e] / l[r];
      }
  };

  if constexpr (SPLIT) {
    start_copies(threadIdx.x, kBlockThreads);
    for (int step = first_step; step < end_step; ++step) {
      issue(step + kStages - 1, threadIdx.x, kBlockThreads);
      wait_copies(kStages - 1);
      __syncthreads();  // the raw step is in, and every warp is done with the previous planes
      const unsigned tiles_ok = ok_ring & ((1u << kStepTiles) - 1);
      const bool scaled_rows =
          decode_step(step, 0, threadIdx.x, std::integral_constant<int, kBlockThreads>{}, tiles_ok);
      // The planes are complete; whether any row of the step took a factor (rows past fp16's range,
      // rarely) decides, for the whole block, whether scores and weights are multiplied by them.
      compute_step(step, 0, tiles_ok, __syncthreads_or(scaled_rows));
    }
  } else if (!multiplies) {
    // 16-bit layers, the producers: copy each step kStages - 1 ahead and decode it into a free plane
    // buffer, while the multipliers run the step before.
    constexpr int kWorkers = 32 * kProducerWarps;
    static_assert(kProducerWarps == kStepTiles, "a producer warp issues each tile of a step");
    const int worker = threadIdx.x - kThreads, producer_warp = warp - kWarps;
    if (worker == 0) {
      for (int s = 0; s < kStages; ++s)
        init_barrier<kProducerWarps>(static_cast<uint32_t>(__cvta_generic_to_shared(&raw_landed[s])));
      fence_barrier_inits();
    }
    named_sync(kProducerBarrier, kWorkers);
    ahead = look_up(first_step);
    for (int k = 0; k < kStages - 1; ++k) issue_bulk(first_step + k, producer_warp);
    for (int step = first_step; step < end_step; ++step) {
      const int n = step - first_step, buffer = n % kPlaneBuffers;
      wait_barrier(landed_barrier(step), uint32_t(n / kStages) & 1u);  // the step's tiles are in
      // Every producer is done with the stage that the next copies overwrite (the previous step's).
      named_sync(kProducerBarrier, kWorkers);
      issue_bulk(step + kStages - 1, producer_warp);
      if (n >= kPlaneBuffers) named_sync(kEmptyBarrier + buffer, kBlockThreads);  // its last step is multiplied
      const unsigned tiles_ok = ok_ring & ((1u << kStepTiles) - 1);
      const bool scaled_rows = decode_step(step, buffer, worker, std::integral_constant<int, kWorkers>{}, tiles_ok);
      const bool warp_scaled = __any_sync(0xffffffffu, scaled_rows);
      if (lane == 0) step_scaled[buffer][warp - kWarps] = warp_scaled;
      if (worker == 0) step_tiles_ok[buffer] = tiles_ok;
      named_arrive(kFullBarrier + buffer, kBlockThreads);
    }
  } else {
    // 16-bit layers, the multipliers.
    for (int step = first_step; step < end_step; ++step) {
      const int buffer = (step - first_step) % kPlaneBuffers;
      named_sync(kFullBarrier + buffer, kBlockThreads);
      bool any_scaled = false;
#pragma unroll
      for (int w = 0; w < kProducerWarps; ++w) any_scaled |= step_scaled[buffer][w] != 0;
      compute_step(step, buffer, step_tiles_ok[buffer], any_scaled);
      // Only a step the producers will wait for is announced (no arrival is left pending at the end).
      if (step + kPlaneBuffers < end_step) named_arrive(kEmptyBarrier + buffer, kBlockThreads);
    }
    // Written here, not after the block-wide barrier, so that the producers' path keeps none of the
    // accumulators alive; the planes are free once every multiplier is past its last step (the
    // producers wrote their last buffer before it).
    named_sync(kMultiplierBarrier, kThreads);
    write_outputs();
  }
  wait_copies(0);
  // f32 layers: every warp is done with the planes, which hold the outputs now; 16-bit layers: the
  // multipliers' outputs are in.
  poisoned = __syncthreads_or(poisoned);
  if constexpr (SPLIT) write_outputs();
  __syncthreads();
  Rows::rotate_outputs(p, vc, kv_head, outputs, kColumns, kD);
  for (int i = threadIdx.x; i < kColumns * kD; i += kBlockThreads) {
    const int column = i / kD, c = i % kD, local = column / GP, head = column % GP;
    if (local >= tokens_here || head >= group) continue;
    const int token = q_begin + first_local + local;
    store_element(p.output, token * p.output_token_stride + (kv_head * group + head) * p.output_head_stride + c,
                  p.io_dtype, poisoned ? NAN : outputs[i]);
  }
}

template <class Rows, int GP, bool SPLIT, int KFORM = kAnyForm, int VFORM = kAnyForm>
Status launch(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan, cudaStream_t stream) {
  static const cudaError_t raised =
      cudaFuncSetAttribute(prefill_attention_kernel<Rows, GP, SPLIT, KFORM, VFORM>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(kMaxSharedBytes));
  if (raised != cudaSuccess)
    return Status::internal(std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(raised));
  constexpr int kTokens = kColumns / GP;
  const int chunks = (p.num_tokens + kTokens - 1) / kTokens;  // the longest sequence has at most every token
  const dim3 grid(unsigned(p.num_seqs) * unsigned(chunks), unsigned(p.num_kv_heads));
  prefill_attention_kernel<Rows, GP, SPLIT, KFORM, VFORM>
      <<<grid, kThreadsOf<SPLIT>, plan.shared_bytes, stream>>>(p, codecs, plan.tile_bytes, chunks);
  return last_launch_status("prefill attention kernel");
}

// A fast pair's instance (Rows::kPrefillPairs[PAIR]).
template <class Rows, int GP, size_t PAIR = 0>
Status launch_fast(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan, cudaStream_t stream) {
  if constexpr (PAIR == std::size(Rows::kPrefillPairs)) {
    return Status::internal("prefill attention: no instance for fast pair " + std::to_string(plan.fast_pair));
  } else {
    if (plan.fast_pair == int(PAIR))
      return launch<Rows, GP, false, Rows::kPrefillPairs[PAIR][0], Rows::kPrefillPairs[PAIR][1]>(p, codecs, plan,
                                                                                                 stream);
    return launch_fast<Rows, GP, PAIR + 1>(p, codecs, plan, stream);
  }
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
      if constexpr (!SPLIT)
        if (plan.fast_pair >= 0) return launch_fast<Rows, 4>(p, codecs, plan, stream);
      return launch<Rows, 4, SPLIT>(p, codecs, plan, stream);
    default:
      if constexpr (!SPLIT)
        if (plan.fast_pair >= 0) return launch_fast<Rows, 8>(p, codecs, plan, stream);
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
  const bool aligned = p.v_region_offset % 16 == 0 && p.page_stride % 16 == 0 && p.block_size % kTileRows == 0;
  if (p.head_size != kD || group > 8 || !aligned || !Rows::prefill_serves(key) || !Rows::prefill_serves(value))
    return plan;  // a layer this kernel does not serve
  plan.tile_bytes = uint32_t((kTileRows * (p.k_row_bytes + p.v_row_bytes) + kStageSlack + 15) / 16 * 16);
  const int stages = p.io_dtype == ATB_DTYPE_F32 ? kStagesOf<true> : kStagesOf<false>;
  plan.shared_bytes = sizeof(float) * (512 + 2 * kPairTableWords) + sizeof(__half) * 4 * kStepRows * kPlaneStride +
                      size_t(stages) * kStepTiles * plan.tile_bytes;
  if (plan.shared_bytes > kMaxSharedBytes) return PrefillPlan{};
  plan.heads_padded = group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8;
  const std::array<int, 2> forms{Rows::form_of(key), Rows::form_of(value)};
  for (size_t pair = 0; pair < std::size(Rows::kPrefillPairs); ++pair)
    if (Rows::kPrefillPairs[pair] == forms) plan.fast_pair = int(pair);
  return plan;
}

template <class Rows>
Status launch_prefill_attention(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan,
                                cudaStream_t stream) {
  return p.io_dtype == ATB_DTYPE_F32 ? prefill::launch_for_group<Rows, true>(p, codecs, plan, stream)
                                     : prefill::launch_for_group<Rows, false>(p, codecs, plan, stream);
}

}  // namespace atb::plugin::cuda
