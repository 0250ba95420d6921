// The tensor-core decode kernel of plain 16-bit rows (the `reference` plugin's bf16 and f16 caches
// with queries and outputs of the same type): head sizes 64, 128 and 256, up to 16 query heads of one
// KV head a block.  The rows are MMA operands as they are stored, so a tile costs no decoding: per 16-row tile
// a warp computes S = Q K^T and O += P V with mma.sync m16n8k16 in the cache's own type (bf16 or
// fp16 operands, fp32 accumulation), FlashAttention-2's register layout: the score accumulators are
// the weights' operand registers, query heads are the MMA rows.  The queries enter unscaled, as the
// host gave them (exact); the scale applies to the fp32 scores.  The weights enter as a 16-bit high
// part and a 16-bit remainder (two MMAs), so that a bf16 layer's outputs keep fp32-level weights.

#include <atb/plugin/cuda/attention_common.cuh>
#include <atb/plugin/cuda/fixed_tile_stream.cuh>
#include <atb/plugin/cuda/plain_decode_kernel.cuh>
#include <atb/plugin/cuda/plain_rows.cuh>
#include <atb/plugin/cuda/tensor_core.cuh>
#include <atb/plugin/cuda/tile_pipeline.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace atb::plugin::cuda {
namespace {

constexpr int kHeads = 16;            // MMA rows: query heads of one KV head (rows past the group stay zero)
constexpr float kRescaleLog2 = 8.0f;  // the running max is raised when a tile passes it by more

// A block's geometry at head size D (64, 128 or 256).
template <int D>
struct Geometry {
  static constexpr uint32_t kRowBytes = 2 * D;  // a 16-bit row
  // Shared-memory bytes from one row to the next: 16 more than a row, so that the 8 rows one
  // ldmatrix reads start 16 bytes apart in the banks instead of all in the same four.
  static constexpr uint32_t kPitch = kRowBytes + 16;
  // One tile in flight per warp while it multiplies another; two at head size 64, whose tiles are
  // half the bytes.  Head size 256 keeps one block a multiprocessor (144 KB of shared memory; its
  // query and output registers take ~190 a thread).
  static constexpr int kStages = D == 64 ? 3 : 2;
  static constexpr int kMinBlocks = D == 64 ? 4 : D == 128 ? 3 : 1;  // resident blocks a multiprocessor
  static constexpr int kScoreSteps = D / 16;                         // k-steps of S = Q K^T
  static constexpr int kOutputTiles = D / 8;                         // n-tiles of O
  using Stream = FixedTileStream<kRowBytes, kRowBytes, kStages, kPitch>;
};

// The block's shared memory: the queries ([kHeads] rows at kPitch, raw 16-bit), then the warps' tile
// stages, which the warps' states and the merge's scratch reuse once the tiles are done.
template <int D>
struct SharedMemory {
  using G = Geometry<D>;
  static constexpr size_t kTiles = size_t(kHeads) * G::kPitch;
  static constexpr size_t kStates = sizeof(float) * kTileWarps * kHeads * (D + 2);
  static constexpr size_t kMerged = sizeof(float) * kHeads * D;
  static constexpr size_t kStageArea = size_t(G::kStages) * kTileWarps * G::Stream::kStageBytes;
  static constexpr size_t kBytes = kTiles + (kStageArea > kStates + kMerged ? kStageArea : kStates + kMerged);
  static_assert(kTiles % 16 == 0, "stages start 16-byte aligned");
  __device__ static uint8_t* at(size_t offset) {
    extern __shared__ __align__(16) uint8_t dynamic_shared[];
    return dynamic_shared + offset;
  }
  __device__ static uint8_t* queries() { return at(0); }
  __device__ static uint8_t* tiles() { return at(kTiles); }
  __device__ static float* states() { return reinterpret_cast<float*>(at(kTiles)); }
  __device__ static float* merged() { return reinterpret_cast<float*>(at(kTiles + kStates)); }
};

// Two floats as one register of 16-bit elements of the cache's type (first in the low half), rounded
// to nearest, and what that rounding left of them as a second register.
template <bool BF16>
__device__ inline void split_pair16(float first, float second, uint32_t& high, uint32_t& low) {
  if constexpr (BF16) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(first, second);
    const float2 back = __bfloat1622float2(h);
    const __nv_bfloat162 l = __floats2bfloat162_rn(first - back.x, second - back.y);
    high = *reinterpret_cast<const uint32_t*>(&h);
    low = *reinterpret_cast<const uint32_t*>(&l);
  } else {
    const __half2 h = __floats2half2_rn(first, second);
    const float2 back = __half22float2(h);
    const __half2 l = __floats2half2_rn(first - back.x, second - back.y);
    high = *reinterpret_cast<const uint32_t*>(&h);
    low = *reinterpret_cast<const uint32_t*>(&l);
  }
}

template <bool BF16>
__device__ inline void mma16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (BF16)
    mma_bf16(d, a, b0, b1);
  else
    mma(d, a, b0, b1);
}

// One warp's share of a block: the query operands in registers and the softmax state (running max m
// and sum l of heads g and g + 8, O of both) over the warp's tiles.
template <int D, bool BF16>
class PlainTileAttention {
  using G = Geometry<D>;
  using Shared = SharedMemory<D>;
  static constexpr uint32_t kPitch = G::kPitch;
  static constexpr int kScoreSteps = G::kScoreSteps, kOutputTiles = G::kOutputTiles;
  // Q's operands stay in registers up to head size 128; at 256 they are read from shared memory at
  // each k-step (held, they and the outputs took every register and spilled).
  static constexpr bool kQueriesHeld = D <= 128;
  static constexpr int kHeldSteps = kQueriesHeld ? kScoreSteps : 1;

 public:
  // After the raw queries are in shared memory.
  __device__ explicit PlainTileAttention(const AttentionParams& p)
      : lane_(threadIdx.x % 32),
        g_(lane_ / 4),
        t_(lane_ % 4),
        score_factor_(p.scale * kLog2e),
        soft_cap_(p.soft_cap * kLog2e) {
    // ldmatrix's lane l names a row of matrix l / 8: for Q (A operand) and V (B operand, transposed)
    // matrices 0-3 are rows 0-7 / 8-15 at columns 0-7, then the same at columns 8-15; for K (B
    // operand) rows 0-7 at columns 0-7 / 8-15, then rows 8-15.
    const int row = lane_ % 8, matrix = lane_ / 8;
    rows_lane_ = uint32_t((row + 8 * (matrix % 2)) * kPitch + 16 * (matrix / 2));
    keys_lane_ = uint32_t((row + 8 * (matrix / 2)) * kPitch + 16 * (matrix % 2));
#pragma unroll
    for (int s = 0; s < kHeldSteps; ++s)
      if constexpr (kQueriesHeld) load_matrices(Shared::queries() + rows_lane_ + 32 * s, q_[s]);
#pragma unroll
    for (int n = 0; n < kOutputTiles; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) o_[n][e] = 0.0f;
  }

  // One tile of 16 rows at positions tile * 16 ..; rows outside [w.low, w.high) weigh nothing.
  __device__ void attend(const BlockWork& w, int tile, const uint8_t* key_rows, uint8_t* value_rows) {
    float s[2][4];  // S: n-tile j = tokens 8j ..; [0], [1]: head g, tokens 8j + 2t (+ 1); [2], [3]: head g + 8
    scores(key_rows, s);
    if (tile * kTileRows < w.low || tile * kTileRows + kTileRows > w.high) mask_outside_context(w, tile, value_rows, s);
    uint32_t high[4], low[4];
    weigh(s, high, low);
    accumulate_values(value_rows, high, low);
  }

  // The warp's state of heads g and g + 8 into `states` ([warp][head][m, l, D outputs]).
  __device__ void store_state(float* states) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float l = l_[e];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      float* state = states + ((threadIdx.x / 32) * kHeads + g_ + 8 * e) * (D + 2);
      if (t_ == 0) state[0] = m_[e] * kLn2, state[1] = l;
#pragma unroll
      for (int n = 0; n < kOutputTiles; ++n) {
        state[2 + 8 * n + 2 * t_] = o_[n][2 * e];
        state[2 + 8 * n + 2 * t_ + 1] = o_[n][2 * e + 1];
      }
    }
  }

 private:
  // S = Q K^T in log2 units, soft-capped.
  __device__ void scores(const uint8_t* key_rows, float (&s)[2][4]) {
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
#pragma unroll
    for (int step = 0; step < kScoreSteps; ++step) {
      uint32_t k[4];  // tokens 0-7 then 8-15, each at columns 16 step .. + 7 and + 8 .. + 15
      load_matrices(key_rows + keys_lane_ + 32 * step, k);
      uint32_t fetched[4];
      if constexpr (!kQueriesHeld) load_matrices(Shared::queries() + rows_lane_ + 32 * step, fetched);
      const uint32_t(&q)[4] = kQueriesHeld ? q_[step % kHeldSteps] : fetched;
      mma16<BF16>(s[0], q, k[0], k[1]);
      mma16<BF16>(s[1], q, k[2], k[3]);
    }
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] *= score_factor_;
        if (soft_cap_ > 0) s[j][e] = soft_cap_ * tanhf(s[j][e] / soft_cap_);
      }
  }

  // Rows outside the context (in a split's first and last tiles only) may hold any bits (a pool
  // need not be zeroed): their scores become -inf, and their V rows zero (0 x NaN would be NaN).
  __device__ void mask_outside_context(const BlockWork& w, int tile, uint8_t* value_rows, float (&s)[2][4]) {
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int position = tile * kTileRows + 8 * j + 2 * t_ + e % 2;
        if (position < w.low || position >= w.high) s[j][e] = -INFINITY;
      }
    constexpr int kChunks = int(G::kRowBytes / 16);  // 16-byte pieces of a row
#pragma unroll
    for (int i = lane_; i < kTileRows * kChunks; i += 32) {
      const int row = i / kChunks, position = tile * kTileRows + row;
      if (position < w.low || position >= w.high)
        *reinterpret_cast<uint4*>(value_rows + row * kPitch + 16 * (i % kChunks)) = make_uint4(0, 0, 0, 0);
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // before the stage's next bulk copy
    __syncwarp();
  }

  // The running max raised where the tile needs it, and the weights exp2(s - m) as the A operand of
  // O += P V (high parts and remainders), their sums into l.
  __device__ void weigh(float (&s)[2][4], uint32_t (&high)[4], uint32_t (&low)[4]) {
    float tile_max[2];
#pragma unroll
    for (int e = 0; e < 2; ++e)
      tile_max[e] = fmaxf(fmaxf(s[0][2 * e], s[0][2 * e + 1]), fmaxf(s[1][2 * e], s[1][2 * e + 1]));
    // m is the same in the 4 lanes of a head: "some lane's max passes m + 2^8" is "the head's does".
    if (__any_sync(0xffffffffu, tile_max[0] > m_[0] + kRescaleLog2 || tile_max[1] > m_[1] + kRescaleLog2)) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], 1));
        tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], 2));
        const float raised = fmaxf(m_[e], tile_max[e]);
        const float correction = fast_exp2(m_[e] - raised);
        l_[e] *= correction;
#pragma unroll
        for (int n = 0; n < kOutputTiles; ++n) o_[n][2 * e] *= correction, o_[n][2 * e + 1] *= correction;
        m_[e] = raised;
      }
    }
    float p[2][4];
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[j][e] = fast_exp2(s[j][e] - m_[e / 2]);  // 0 for rows outside the context
        l_[e / 2] += p[j][e];
      }
    // A = P: rows g, g + 8 (heads), columns 2t, 2t + 1 (tokens) of n-tile 0 then of n-tile 1.
    split_pair16<BF16>(p[0][0], p[0][1], high[0], low[0]);
    split_pair16<BF16>(p[0][2], p[0][3], high[1], low[1]);
    split_pair16<BF16>(p[1][0], p[1][1], high[2], low[2]);
    split_pair16<BF16>(p[1][2], p[1][3], high[3], low[3]);
  }

  // O += P V, two n-tiles of coordinates per ldmatrix (V transposed: tokens are the k dimension).
  __device__ void accumulate_values(const uint8_t* value_rows, const uint32_t (&high)[4], const uint32_t (&low)[4]) {
#pragma unroll
    for (int n = 0; n < kOutputTiles; n += 2) {
      uint32_t v[4];  // coordinates 8n .. + 7 at tokens 0-7 / 8-15, then 8n + 8 .. + 15
      load_matrices_transposed(value_rows + rows_lane_ + 16 * n, v);
      mma16<BF16>(o_[n], high, v[0], v[1]);
      mma16<BF16>(o_[n], low, v[0], v[1]);
      mma16<BF16>(o_[n + 1], high, v[2], v[3]);
      mma16<BF16>(o_[n + 1], low, v[2], v[3]);
    }
  }

  const int lane_, g_, t_;
  const float score_factor_;                // the softmax scale in log2 units
  const float soft_cap_;                    // the cap of scores in log2 units
  uint32_t rows_lane_ = 0, keys_lane_ = 0;  // the lane's ldmatrix row address, from a tile's (or Q's) start
  uint32_t q_[kHeldSteps][4];               // A operands of Q: heads g, g + 8 at columns 16 step + 2t ..
  float m_[2] = {-1e30f, -1e30f}, l_[2] = {0.0f, 0.0f};  // heads g, g + 8; a finite start keeps s - m finite
  float o_[kOutputTiles][4];  // O of n-tile n: [0], [1] head g at coordinates 8n + 2t (+ 1); [2], [3] head g + 8
};

template <int D, bool BF16>
__global__ void __launch_bounds__(kTileThreads, Geometry<D>::kMinBlocks)
    plain_decode_kernel(const AttentionParams p, const __grid_constant__ Codecs<PlainRows> codecs, int splits) {
  using Shared = SharedMemory<D>;
  using Stream = typename Geometry<D>::Stream;
  constexpr int kStages = Geometry<D>::kStages;
  const QueryBits<D, kHeads, kTileThreads> query_bits(p, block_heads<kHeads>(p));
  const BlockWork w = block_work<kHeads>(p);
  if (decode_block_done<D>(p, w, splits)) return;
  __shared__ uint64_t tile_barriers[kTileWarps * kStages];
  Stream stream(p, w, splits, Shared::tiles(), tile_barriers);
  bool poisoned = w.poisoned;
  stream.start(threadIdx.x % 32, poisoned);  // the first tiles' copies overlap the set-up below
#pragma unroll
  for (int k = 0; k < query_bits.kCount; ++k) {
    const int i = int(threadIdx.x) + k * kTileThreads;
    reinterpret_cast<unsigned short*>(Shared::queries() + (i / D) * Geometry<D>::kPitch)[i % D] =
        static_cast<unsigned short>(query_bits.bits[k]);
  }
  __syncthreads();
  PlainTileAttention<D, BF16> attention(p);
  stream.for_each_tile(poisoned, [&](int tile, const uint8_t* key_rows, uint8_t* value_rows) {
    attention.attend(w, tile, key_rows, value_rows);
  });
  wait_for_previous_kernel();             // this kernel completes after the write kernel, whatever its tiles
  poisoned = __syncthreads_or(poisoned);  // every warp is done with its tiles: the states may reuse them
  attention.store_state(Shared::states());
  __syncthreads();
  finish_block<PlainRows, D, kHeads, kTileWarps>(p, codecs.value, w, splits, Shared::states(), Shared::merged(),
                                                 poisoned);
}

template <int D>
OwnDecodeKernel<PlainRows> kernel_for(bool bf16) {
  return {bf16 ? &plain_decode_kernel<D, true> : &plain_decode_kernel<D, false>, SharedMemory<D>::kBytes, kHeads,
          kTileThreads};
}

}  // namespace

OwnDecodeKernel<PlainRows> plain_decode_kernel_for(const AttentionParams& shape, const PlainCodec& rows) {
  if (shape.head_size != 64 && shape.head_size != 128 && shape.head_size != 256) return {};
  const uint64_t row_bytes = 2 * uint64_t(shape.head_size);
  if (shape.k_row_bytes != row_bytes || shape.v_row_bytes != row_bytes) return {};
  // The queries must be exact operands of the cache's type: the same 16-bit type.
  const bool bf16 = rows.kind == kPlainBf16 && shape.io_dtype == ATB_DTYPE_BF16;
  const bool f16 = rows.kind == kPlainF16 && shape.io_dtype == ATB_DTYPE_F16;
  if (!bf16 && !f16) return {};
  switch (shape.head_size) {
    case 64:
      return kernel_for<64>(bf16);
    case 128:
      return kernel_for<128>(bf16);
    default:
      return kernel_for<256>(bf16);
  }
}

}  // namespace atb::plugin::cuda
