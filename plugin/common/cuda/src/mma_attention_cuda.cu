// The tensor-core decode kernel: head size 128, up to 8 query heads per KV head, K rows affine
// (codes exact in fp16) or codebook, V rows codebook.  Same tile stream as the tiled kernel; per
// 16-row tile a warp computes the scores S = Q K^T and the update O += P V with mma.sync
// m16n8k16 (fp16 operands, fp32 accumulation), query heads on the MMA rows (8..15 zero).
//
// Precision: every operand that is not exact in fp16 is split into an fp16 high part and an fp16
// remainder, and the products high*high + low*high + high*low are accumulated, which keeps the
// result within ~1e-6 of fp32 arithmetic: queries (hi/lo) against exact affine codes, or against
// codebook values (hi/lo); weights P (hi/lo, with V's per-block scale folded in) against codebook
// values (hi/lo).  Affine K: S = scale * (Q . codes) + zero * sum(Q) per 32-coordinate block.
//
// The contraction order inside an MMA is free, so coordinates are assigned to fragment slots
// where the codes are cheapest to read: lane (g = lane / 4, t = lane % 4) reads coordinates
// 32b + 8t .. 32b + 8t + 7 of K rows for block b, and coordinates 32b + 4g .. 32b + 4g + 3 of V
// rows; the output columns are permuted back when the state is written.
#include <atb/plugin/cuda/paged_attention_cuda.hpp>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "attention_common.cuh"
#include "tile_pipeline.cuh"
#include "tiled_attention.cuh"

namespace atb::plugin::cuda {
namespace {

constexpr int kD = 128;
constexpr int kHeads = 8;   // query heads a block serves: MMA rows 0..7
constexpr int kBlocks = 4;  // 32-coordinate blocks of a row

// d += a * b for one m16n8k16 fp16 MMA with fp32 accumulators; a1 = a3 = 0 (rows 8..15).
__device__ inline void mma(float (&d)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

// fp16 high part in the low 16 bits, fp16 remainder in the high 16 bits.
__device__ inline uint32_t split_half(float x) {
  const __half high = __float2half_rn(x);
  const __half low = __float2half_rn(x - __half2float(high));
  return uint32_t(__half_as_ushort(high)) | (uint32_t(__half_as_ushort(low)) << 16);
}

// The high parts of two split values as a half2 (first in the low half), and their remainders.
__device__ inline uint32_t highs(uint32_t first, uint32_t second) { return __byte_perm(first, second, 0x5410); }
__device__ inline uint32_t lows(uint32_t first, uint32_t second) { return __byte_perm(first, second, 0x7632); }

// Two small integer codes as an exact half2: 1024 + code has the code in its mantissa.
__device__ inline uint32_t codes_as_half2(uint32_t first, uint32_t second) {
  const uint32_t biased = first | (second << 16) | 0x64006400u;
  const __half2 value = __hsub2(*reinterpret_cast<const __half2*>(&biased), __half2(__ushort_as_half(0x6400), __ushort_as_half(0x6400)));
  return *reinterpret_cast<const uint32_t*>(&value);
}

__device__ inline float half_at(const uint8_t* at) { return load_half_bytes(at); }

template <int KIND_K, int BITS_K, int BITS_V>
__global__ void __launch_bounds__(kTileThreads) mma_attention_kernel(const AttentionParams p,
                                                                     const __grid_constant__ Codecs codecs, int stages,
                                                                     uint32_t stage_bytes, int splits) {
  static_assert(BITS_V <= 6, "four V codes and a sub-byte shift must fit one word");
  constexpr bool kAffineKeys = KIND_K == kAffineUnsigned;
  extern __shared__ __align__(16) float shared[];
  float* queries = shared;                                             // [kHeads][kD]
  uint32_t* key_table = reinterpret_cast<uint32_t*>(queries + kHeads * kD);  // split_half of the centroids
  uint32_t* value_table = key_table + 256;
  uint8_t* tiles = reinterpret_cast<uint8_t*>(value_table + 256);
  const RowCodec& kc = codecs.key;
  const RowCodec& vc = codecs.value;
  const BlockWork w = block_work<kHeads>(p);
  for (int i = threadIdx.x; i < 256; i += kTileThreads) {
    key_table[i] = split_half(kc.table[i]);
    value_table[i] = split_half(vc.table[i]);
  }
  load_queries<kD, kHeads>(p, kc, w, queries);

  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Q as the A operand: k-step s = 2b + h holds coordinates 32b + 8t + 4h + {0,1} (a0), {2,3} (a2).
  uint32_t q_high[2 * kBlocks][2], q_low[2 * kBlocks][2];
  float q_sum[kBlocks];
#pragma unroll
  for (int b = 0; b < kBlocks; ++b) {
    q_sum[b] = 0.0f;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float* x = queries + g * kD + 32 * b + 8 * t + 4 * h + 2 * r;
        const uint32_t first = split_half(x[0]), second = split_half(x[1]);
        q_high[2 * b + h][r] = highs(first, second);
        q_low[2 * b + h][r] = lows(first, second);
        q_sum[b] += x[0] + x[1];
      }
    q_sum[b] += __shfl_xor_sync(0xffffffffu, q_sum[b], 1);
    q_sum[b] += __shfl_xor_sync(0xffffffffu, q_sum[b], 2);
  }

  const WarpTileStream stream(p, w, splits, tiles, stages, stage_bytes);
  const uint32_t k_row_bytes = uint32_t(p.k_row_bytes), v_row_bytes = uint32_t(p.v_row_bytes);
  float m = -INFINITY, l = 0.0f;  // head g
  float o[kBlocks][4][4];         // n-tile (b, j): columns 2t, 2t + 1 = coordinates 32b + 8t + j, + 4
#pragma unroll
  for (int b = 0; b < kBlocks; ++b)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[b][j][e] = 0.0f;
  bool poisoned = w.poisoned;

  for (int k = 0; k < stages - 1; ++k) stream.issue(k, lane);
  for (int k = 0; k < stream.count(); ++k) {
    stream.issue(k + stages - 1, lane);
    wait_copies(stages - 1);
    __syncwarp();
    const int tile = stream.tile(k);
    const bool page_ok = stream.page_ok(stream.page(tile));
    poisoned |= !page_ok;
    const uint8_t* key_rows = stream.key_rows(k);
    const uint8_t* value_rows = stream.value_rows(k);

    // Scores of head g for the tokens 8n + 2t + e this lane's accumulators hold.
    float s[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      float c[2][4] = {};
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        // B operand: token 8n + g, coordinates 32b + 8t .. + 7.
        const uint8_t* codes = key_rows + (8 * n + g) * k_row_bytes + kc.codes_offset + (4 * b + t) * BITS_K;
        uint32_t words[(BITS_K + 3) / 4];
        load_words<BITS_K>(codes, words);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t c0 = code_in<BITS_K>(words, 4 * h), c1 = code_in<BITS_K>(words, 4 * h + 1);
          const uint32_t c2 = code_in<BITS_K>(words, 4 * h + 2), c3 = code_in<BITS_K>(words, 4 * h + 3);
          if constexpr (kAffineKeys) {
            const uint32_t b0 = codes_as_half2(c0, c1), b1 = codes_as_half2(c2, c3);
            mma(c[n], q_high[2 * b + h][0], q_high[2 * b + h][1], b0, b1);
            mma(c[n], q_low[2 * b + h][0], q_low[2 * b + h][1], b0, b1);
          } else {
            const uint32_t e0 = key_table[c0], e1 = key_table[c1], e2 = key_table[c2], e3 = key_table[c3];
            const uint32_t b0 = highs(e0, e1), b1 = highs(e2, e3);
            mma(c[n], q_high[2 * b + h][0], q_high[2 * b + h][1], b0, b1);
            mma(c[n], q_low[2 * b + h][0], q_low[2 * b + h][1], b0, b1);
            mma(c[n], q_high[2 * b + h][0], q_high[2 * b + h][1], lows(e0, e1), lows(e2, e3));
          }
        }
      }
      const int scale_block = 32 * b / kc.block_size;
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const uint8_t* row = key_rows + (8 * n + 2 * t + e) * k_row_bytes + kc.scales_offset;
          if constexpr (kAffineKeys)
            s[n][e] += half_at(row + 4 * scale_block) * c[n][e] + half_at(row + 4 * scale_block + 2) * q_sum[b];
          else
            s[n][e] += half_at(row + 2 * scale_block) * c[n][e];
        }
    }

    bool valid[2][2];
    float tile_max = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int position = tile * kTileRows + 8 * n + 2 * t + e;
        valid[n][e] = page_ok && position >= w.low && position < w.high;
        float score = s[n][e];
        if (p.soft_cap > 0) score = p.soft_cap * tanhf(score / p.soft_cap);
        s[n][e] = valid[n][e] ? score * kLog2e : -INFINITY;
        tile_max = fmaxf(tile_max, s[n][e]);
      }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    if (tile_max > m) {
      const float correction = exp2f(m - tile_max);  // 0 while nothing was seen
      l *= correction;
#pragma unroll
      for (int b = 0; b < kBlocks; ++b)
#pragma unroll
        for (int j = 0; j < 4; ++j) o[b][j][0] *= correction, o[b][j][1] *= correction;
      m = tile_max;
    }
    float weight[2][2];
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        weight[n][e] = valid[n][e] ? exp2f(s[n][e] - m) : 0.0f;
        l += weight[n][e];
      }

    // O += P V: A = weights of tokens 2t, 2t + 1 (a0) and 8 + 2t, 9 + 2t (a2) with V's block scale;
    // B = V of those tokens at coordinate 32b + 4g + j for n-tile j.
    const uint8_t* token_rows[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) token_rows[i] = value_rows + (8 * (i / 2) + 2 * t + i % 2) * v_row_bytes;
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      const int scale_block = 32 * b / vc.block_size;
      uint32_t scaled[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float wv = weight[i / 2][i % 2];
        scaled[i] = split_half(wv != 0.0f ? wv * half_at(token_rows[i] + vc.scales_offset + 2 * scale_block) : 0.0f);
      }
      const uint32_t a0_high = highs(scaled[0], scaled[1]), a2_high = highs(scaled[2], scaled[3]);
      const uint32_t a0_low = lows(scaled[0], scaled[1]), a2_low = lows(scaled[2], scaled[3]);
      uint32_t codes[4];
      const int bit = (32 * b + 4 * g) * BITS_V;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        uint32_t word[1];
        load_words<4>(token_rows[i] + vc.codes_offset + bit / 8, word);
        codes[i] = word[0] >> (bit % 8);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t e[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) e[i] = value_table[(codes[i] >> (j * BITS_V)) & ((1u << BITS_V) - 1u)];
        const uint32_t b0_high = highs(e[0], e[1]), b1_high = highs(e[2], e[3]);
        mma(o[b][j], a0_high, a2_high, b0_high, b1_high);
        mma(o[b][j], a0_low, a2_low, b0_high, b1_high);
        mma(o[b][j], a0_high, a2_high, lows(e[0], e[1]), lows(e[2], e[3]));
      }
    }
    __syncwarp();  // the stage is refilled by the next iteration's copies
  }
  wait_copies(0);

  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  poisoned = __syncthreads_or(poisoned);  // every warp is done with its tiles: the states may reuse them
  float* states = reinterpret_cast<float*>(tiles);
  float* state = states + ((threadIdx.x / 32) * kHeads + g) * (kD + 2);
  if (t == 0) state[0] = m * kLn2, state[1] = l;
#pragma unroll
  for (int b = 0; b < kBlocks; ++b)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      state[2 + 32 * b + 8 * t + j] = o[b][j][0];
      state[2 + 32 * b + 8 * t + 4 + j] = o[b][j][1];
    }
  __syncthreads();
  finish_block<kD, kHeads>(p, vc, w, splits, states, kTileWarps, queries, poisoned);
}

}  // namespace

TiledKernel mma_attention_kernel_for(int key_form, int value_form) {
  if (value_form != row_form(kCodebook, 3)) return nullptr;
  if (key_form == row_form(kAffineUnsigned, 4)) return &mma_attention_kernel<kAffineUnsigned, 4, 3>;
  if (key_form == row_form(kAffineUnsigned, 8)) return &mma_attention_kernel<kAffineUnsigned, 8, 3>;
  if (key_form == row_form(kAffineUnsigned, 5)) return &mma_attention_kernel<kAffineUnsigned, 5, 3>;
  if (key_form == row_form(kCodebook, 4)) return &mma_attention_kernel<kCodebook, 4, 3>;
  return nullptr;
}

}  // namespace atb::plugin::cuda
