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
#include "tensor_core.cuh"
#include "tile_pipeline.cuh"
#include "tiled_attention.cuh"

namespace atb::plugin::cuda {
namespace {

constexpr int kD = 128;
constexpr int kHeads = 8;   // query heads a block serves: MMA rows 0..7
constexpr int kBlocks = 4;  // 32-coordinate blocks of a row

// Two codes (up to 10 bits) as an exact half2: 1024 + code has the code in its mantissa.  Signed
// 8-bit codes arrive with their sign bit flipped (code + 128) and lose 1024 + 128.
template <bool SIGNED>
__device__ inline uint32_t codes_as_half2(uint32_t first, uint32_t second) {
  const uint32_t biased = first | (second << 16) | 0x64006400u;
  const unsigned short offset = SIGNED ? 0x6480 : 0x6400;  // 1152 or 1024
  const __half2 value = __hsub2(*reinterpret_cast<const __half2*>(&biased), __half2(__ushort_as_half(offset), __ushort_as_half(offset)));
  return *reinterpret_cast<const uint32_t*>(&value);
}

// An fp16 at an even address (rows and scale fields of head size 128 all start at one).
__device__ inline float half_at(const uint8_t* at) { return __half2float(*reinterpret_cast<const __half*>(at)); }

// Which of a lane's 8 K coordinates (32b + 8t + i) fills half e of register r of k-step 2b + h: the
// order in which the codes come out of the packed word cheapest.  4-bit: (w >> 4s) & 0x000F000F holds
// codes s and s + 4; 8-bit: (w >> 8s) & 0x00FF00FF holds codes s and s + 2 of each word.
template <int BITS>
__device__ constexpr int slot_coordinate(int h, int r, int e) {
  if constexpr (BITS == 4) return 2 * h + r + 4 * e;
  if constexpr (BITS == 8) return 4 * h + r + 2 * e;
  return 4 * h + 2 * r + e;
}

// The 8 codes of a lane's K coordinates as 4 exact half2 pairs in slot order, [h][r].
template <int BITS, bool SIGNED>
__device__ inline void affine_pairs(const uint32_t (&words)[(BITS + 3) / 4], uint32_t (&pairs)[2][2]) {
  constexpr uint32_t kFlip = SIGNED ? 0x80808080u : 0u;
  const unsigned short offset = SIGNED ? 0x6480 : 0x6400;  // 1024 + 128 or 1024
  const __half2 bias(__ushort_as_half(offset), __ushort_as_half(offset));
  auto finish = [&](uint32_t biased) {
    const __half2 value = __hsub2(*reinterpret_cast<const __half2*>(&biased), bias);
    return *reinterpret_cast<const uint32_t*>(&value);
  };
  if constexpr (BITS == 4) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int r = 0; r < 2; ++r) pairs[h][r] = finish(((words[0] >> (4 * (2 * h + r))) & 0x000F000Fu) | 0x64006400u);
  } else if constexpr (BITS == 8) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int r = 0; r < 2; ++r) pairs[h][r] = finish((((words[h] ^ kFlip) >> (8 * r)) & 0x00FF00FFu) | 0x64006400u);
  } else {
    constexpr uint32_t kCodeFlip = SIGNED ? 0x80u : 0u;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        pairs[h][r] = codes_as_half2<SIGNED>(code_in<BITS>(words, slot_coordinate<BITS>(h, r, 0)) ^ kCodeFlip,
                                             code_in<BITS>(words, slot_coordinate<BITS>(h, r, 1)) ^ kCodeFlip);
  }
}

template <int KIND_K, int BITS_K, int BITS_V>
__global__ void __launch_bounds__(kTileThreads) mma_attention_kernel(const AttentionParams p,
                                                                     const __grid_constant__ Codecs codecs, int stages,
                                                                     uint32_t stage_bytes, int splits) {
  static_assert(BITS_V <= 6, "four V codes and a sub-byte shift must fit one word");
  constexpr bool kAffineKeys = KIND_K == kAffineUnsigned || KIND_K == kAffineSigned;
  constexpr bool kSignedKeys = KIND_K == kAffineSigned;
  extern __shared__ __align__(16) float shared[];
  float* queries = shared;                                                    // [kHeads][kD]
  uint32_t* key_table = reinterpret_cast<uint32_t*>(queries + kHeads * kD);   // split_half of the centroids
  uint32_t* value_table = key_table + 256;
  float* weights = reinterpret_cast<float*>(value_table + 256);  // [warp][16 tokens][kHeads]: P transposed
  uint8_t* tiles = reinterpret_cast<uint8_t*>(weights + kTileWarps * kTileRows * kHeads);
  const RowCodec& kc = codecs.key;
  const RowCodec& vc = codecs.value;
  const BlockWork w = block_work<kHeads>(p);
  if (w.skip) return;  // the same for every thread of the block
  for (int i = threadIdx.x; i < 256; i += kTileThreads) {
    key_table[i] = split_half(kc.table[i]);
    value_table[i] = split_half(vc.table[i]);
  }
  load_queries<kD, kHeads>(p, kc, w, queries);

  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  float* warp_weights = weights + (threadIdx.x / 32) * kTileRows * kHeads;
  // Q^T as the B operand (column g = head g): k-step s = 2b + h holds coordinates
  // 32b + 8t + 4h + {0,1} (b0) and + {2,3} (b1); K's A operand uses the same assignment.
  uint32_t q_high[2 * kBlocks][2], q_low[2 * kBlocks][2];
  float q_sum[kBlocks][2];  // per block, for heads 2t and 2t + 1
#pragma unroll
  for (int b = 0; b < kBlocks; ++b) {
    float sum = 0.0f;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float* x = queries + g * kD + 32 * b + 8 * t;
        const float x0 = x[slot_coordinate<BITS_K>(h, r, 0)], x1 = x[slot_coordinate<BITS_K>(h, r, 1)];
        const uint32_t first = split_half(x0), second = split_half(x1);
        q_high[2 * b + h][r] = highs(first, second);
        q_low[2 * b + h][r] = lows(first, second);
        sum += x0 + x1;
      }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);  // head g's block sum on every lane of quad g
    q_sum[b][0] = __shfl_sync(0xffffffffu, sum, 4 * (2 * t));
    q_sum[b][1] = __shfl_sync(0xffffffffu, sum, 4 * (2 * t + 1));
  }

  int key_scale_block[kBlocks], value_scale_block[kBlocks];  // scale field of each 32-coordinate block
#pragma unroll
  for (int b = 0; b < kBlocks; ++b) key_scale_block[b] = 32 * b / kc.block_size, value_scale_block[b] = 32 * b / vc.block_size;

  const WarpTileStream stream(p, w, splits, tiles, stages, stage_bytes);
  const uint32_t k_row_bytes = uint32_t(p.k_row_bytes), v_row_bytes = uint32_t(p.v_row_bytes);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // heads 2t, 2t + 1
  // O^T accumulators of n-tile (b, h): rows g, g + 8 = coordinates 32b + 4g + 2h (+ 1); columns = heads 2t, 2t + 1.
  float o[kBlocks][2][4];
#pragma unroll
  for (int b = 0; b < kBlocks; ++b)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[b][h][e] = 0.0f;
  bool poisoned = w.poisoned;

  stream.for_each_tile(lane, poisoned, [&](int tile, bool page_ok, const uint8_t* key_rows, const uint8_t* value_rows) {
    // S = K Q^T: rows = tokens g (r = 0) and g + 8 (r = 1), columns = heads 2t + e.
    float s[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
    const uint8_t* own_rows[2] = {key_rows + g * k_row_bytes, key_rows + (g + 8) * k_row_bytes};
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      uint32_t words[2][(BITS_K + 3) / 4];
#pragma unroll
      for (int r = 0; r < 2; ++r) load_words<BITS_K>(own_rows[r] + kc.codes_offset + (4 * b + t) * BITS_K, words[r]);
      uint32_t affine[2][2][2];  // [token r][h][register]: exact code pairs of affine keys
      if constexpr (kAffineKeys) {
#pragma unroll
        for (int r = 0; r < 2; ++r) affine_pairs<BITS_K, kSignedKeys>(words[r], affine[r]);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        uint32_t pair_high[2][2], pair_low[2][2];  // [token r][register of the k-step]
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          if constexpr (kAffineKeys) {
            pair_high[r][0] = affine[r][h][0];
            pair_high[r][1] = affine[r][h][1];
          } else {
#pragma unroll
            for (int q = 0; q < 2; ++q) {
              const uint32_t e0 = key_table[code_in<BITS_K>(words[r], slot_coordinate<BITS_K>(h, q, 0))];
              const uint32_t e1 = key_table[code_in<BITS_K>(words[r], slot_coordinate<BITS_K>(h, q, 1))];
              pair_high[r][q] = highs(e0, e1), pair_low[r][q] = lows(e0, e1);
            }
          }
        }
        const int step = 2 * b + h;
        mma(c, pair_high[0][0], pair_high[1][0], pair_high[0][1], pair_high[1][1], q_high[step][0], q_high[step][1]);
        mma(c, pair_high[0][0], pair_high[1][0], pair_high[0][1], pair_high[1][1], q_low[step][0], q_low[step][1]);
        if constexpr (!kAffineKeys)
          mma(c, pair_low[0][0], pair_low[1][0], pair_low[0][1], pair_low[1][1], q_high[step][0], q_high[step][1]);
      }
      const int scale_block = key_scale_block[b];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const uint8_t* scales = own_rows[r] + kc.scales_offset;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if constexpr (kAffineKeys)
            s[r][e] += half_at(scales + 4 * scale_block) * c[2 * r + e] + half_at(scales + 4 * scale_block + 2) * q_sum[b][e];
          else
            s[r][e] += half_at(scales + 2 * scale_block) * c[2 * r + e];
        }
      }
    }

    bool valid[2];
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int position = tile * kTileRows + g + 8 * r;
      valid[r] = page_ok && position >= w.low && position < w.high;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float score = s[r][e];
        if (p.soft_cap > 0) score = p.soft_cap * tanhf(score / p.soft_cap);
        s[r][e] = valid[r] ? score * kLog2e : -INFINITY;
        tile_max[e] = fmaxf(tile_max[e], s[r][e]);
      }
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) {
#pragma unroll
      for (int offset = 4; offset < 32; offset *= 2)
        tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], offset));
      if (tile_max[e] > m[e]) {
        const float correction = exp2f(m[e] - tile_max[e]);  // 0 while nothing was seen
        l[e] *= correction;
#pragma unroll
        for (int b = 0; b < kBlocks; ++b)
#pragma unroll
          for (int h = 0; h < 2; ++h) o[b][h][e] *= correction, o[b][h][2 + e] *= correction;
        m[e] = tile_max[e];
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float weight = valid[r] ? exp2f(s[r][e] - m[e]) : 0.0f;
        l[e] += weight;
        warp_weights[(g + 8 * r) * kHeads + 2 * t + e] = weight;
      }
    }
    __syncwarp();

    // O^T += V^T P^T per 32-coordinate block: B = weights of head g for tokens 2t, 2t + 1 (b0) and
    // 2t + 8, 2t + 9 (b1) times V's block scale; A = V of those tokens at coordinates 32b + 4g + 2h (+1).
    const int tokens[4] = {2 * t, 2 * t + 1, 2 * t + 8, 2 * t + 9};
    const uint8_t* token_rows[4];
    float head_weight[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      token_rows[i] = value_rows + tokens[i] * v_row_bytes;
      head_weight[i] = warp_weights[tokens[i] * kHeads + g];
    }
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      const int scale_block = value_scale_block[b];
      uint32_t scaled[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        scaled[i] = split_half(head_weight[i] != 0.0f ? head_weight[i] * half_at(token_rows[i] + vc.scales_offset + 2 * scale_block)
                                                      : 0.0f);
      const uint32_t b0_high = highs(scaled[0], scaled[1]), b1_high = highs(scaled[2], scaled[3]);
      const uint32_t b0_low = lows(scaled[0], scaled[1]), b1_low = lows(scaled[2], scaled[3]);
      uint32_t codes[4];
      const int bit = (32 * b + 4 * g) * BITS_V;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        uint32_t word[1];
        load_words<4>(token_rows[i] + vc.codes_offset + bit / 8, word);
        codes[i] = word[0] >> (bit % 8);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        uint32_t e[4][2];  // [token i][row g: coordinate 2h, row g + 8: 2h + 1]
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int q = 0; q < 2; ++q) e[i][q] = value_table[(codes[i] >> ((2 * h + q) * BITS_V)) & ((1u << BITS_V) - 1u)];
        const uint32_t a0 = highs(e[0][0], e[1][0]), a1 = highs(e[0][1], e[1][1]);
        const uint32_t a2 = highs(e[2][0], e[3][0]), a3 = highs(e[2][1], e[3][1]);
        mma(o[b][h], a0, a1, a2, a3, b0_high, b1_high);
        mma(o[b][h], a0, a1, a2, a3, b0_low, b1_low);
        mma(o[b][h], lows(e[0][0], e[1][0]), lows(e[0][1], e[1][1]), lows(e[2][0], e[3][0]), lows(e[2][1], e[3][1]),
            b0_high, b1_high);
      }
    }
  });

#pragma unroll
  for (int e = 0; e < 2; ++e)
#pragma unroll
    for (int offset = 4; offset < 32; offset *= 2) l[e] += __shfl_xor_sync(0xffffffffu, l[e], offset);
  poisoned = __syncthreads_or(poisoned);  // every warp is done with its tiles: the states may reuse them
  float* states = reinterpret_cast<float*>(tiles);
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    float* state = states + ((threadIdx.x / 32) * kHeads + 2 * t + e) * (kD + 2);
    if (g == 0) state[0] = m[e] * kLn2, state[1] = l[e];
#pragma unroll
    for (int b = 0; b < kBlocks; ++b)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        state[2 + 32 * b + 4 * g + 2 * h] = o[b][h][e];
        state[2 + 32 * b + 4 * g + 2 * h + 1] = o[b][h][2 + e];
      }
  }
  __syncthreads();
  finish_block<kD, kHeads>(p, vc, w, splits, states, kTileWarps, queries, poisoned);
}

}  // namespace

TiledKernel mma_attention_kernel_for(int key_form, int value_form) {
  if (value_form != row_form(kCodebook, 3)) return nullptr;
  if (key_form == row_form(kAffineUnsigned, 4)) return &mma_attention_kernel<kAffineUnsigned, 4, 3>;
  if (key_form == row_form(kAffineUnsigned, 8)) return &mma_attention_kernel<kAffineUnsigned, 8, 3>;
  if (key_form == row_form(kAffineSigned, 8)) return &mma_attention_kernel<kAffineSigned, 8, 3>;
  if (key_form == row_form(kAffineUnsigned, 5)) return &mma_attention_kernel<kAffineUnsigned, 5, 3>;
  if (key_form == row_form(kCodebook, 4)) return &mma_attention_kernel<kCodebook, 4, 3>;
  return nullptr;
}

}  // namespace atb::plugin::cuda
