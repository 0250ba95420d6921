// TurboQuant's rows for the shared CUDA kernels (the Rows policy of plugin/common/cuda's
// row_format.cuh): plain rows, per-block affine codes and scaled-codebook codes, rotated by the
// layer's Walsh-Hadamard rotation.  A kind fixed at compile time (FORM = row_form(kind, bits)) or
// read from the codec.
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/device_common.cuh>
#include <atb/plugin/cuda/plain_rows.cuh>
#include <atb/plugin/cuda/row_format.cuh>
#include <atb/plugin/cuda/tile_pipeline.cuh>
#include <atb/status.hpp>

#include <tq/bit_packing.hpp>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>

#include "rotation.cuh"
#include "row_codec.hpp"

namespace atb::turboquant::cuda {

using plugin::cuda::AttentionParams;
using plugin::cuda::kAnyForm;
using plugin::cuda::LaneRow;

// Packed codes: x = table[code] (LOOKUP) or the code itself as a float (flip 0x80: signed 8-bit).
template <int C, int BITS, bool LOOKUP>
__device__ inline void decode_codes(const uint8_t* codes, int sub, const float* table, uint32_t flip, float bias,
                                    float (&x)[C]) {
  constexpr int NB = C * BITS / 8;
  uint32_t words[(NB + 3) / 4];
  plugin::cuda::load_words<NB>(codes + sub * NB, words);
#pragma unroll
  for (int i = 0; i < C; ++i) {
    const uint32_t code = plugin::cuda::code_in<BITS>(words, i);
    if constexpr (LOOKUP)
      x[i] = table[code];
    else
      x[i] = __uint_as_float(0x4B000000u | (code ^ flip)) - bias;  // exact: 2^23 + code, minus 2^23
  }
}

// The lane's C coordinates of a row in shared memory (any alignment) of one fixed kind and width,
// with its block's scale and zero.
template <int C, int KIND, int BITS>
__device__ inline LaneRow decode_fixed(const RowCodec& codec, const uint8_t* row, int sub, const float* table,
                                       float (&x)[C]) {
  LaneRow lane;
  if constexpr (KIND < plugin::cuda::kPlainKinds) {
    plugin::cuda::decode_plain<C, KIND>(row, sub, x);
  } else if constexpr (KIND == kCodebook) {
    const int block = sub * C / codec.block_size;
    lane.scale = plugin::cuda::load_half_bytes(row + codec.scales_offset + 2 * block);
    decode_codes<C, BITS, true>(row + codec.codes_offset, sub, table, 0, 0.0f, x);
  } else {  // affine; signed codes are 8-bit two's complement
    const int block = sub * C / codec.block_size;
    lane.scale = plugin::cuda::load_half_bytes(row + codec.scales_offset + 4 * block);
    lane.zero = plugin::cuda::load_half_bytes(row + codec.scales_offset + 4 * block + 2);
    constexpr bool kSigned = KIND == kAffineSigned;
    decode_codes<C, BITS, false>(row + codec.codes_offset, sub, table, kSigned ? 0x80u : 0u,
                                 kSigned ? 8388736.0f : 8388608.0f, x);
  }
  return lane;
}

template <int C, int KIND>
__device__ inline LaneRow decode_of_width(const RowCodec& codec, const uint8_t* row, int sub, const float* table,
                                          float (&x)[C]) {
  switch (codec.bits) {
    case 1:
      return decode_fixed<C, KIND, 1>(codec, row, sub, table, x);
    case 2:
      return decode_fixed<C, KIND, 2>(codec, row, sub, table, x);
    case 3:
      return decode_fixed<C, KIND, 3>(codec, row, sub, table, x);
    case 4:
      return decode_fixed<C, KIND, 4>(codec, row, sub, table, x);
    case 5:
      return decode_fixed<C, KIND, 5>(codec, row, sub, table, x);
    case 6:
      return decode_fixed<C, KIND, 6>(codec, row, sub, table, x);
    case 7:
      return decode_fixed<C, KIND, 7>(codec, row, sub, table, x);
    default:
      return decode_fixed<C, KIND, 8>(codec, row, sub, table, x);
  }
}

// The codebook entries a codec's rows use (none for affine and plain rows).  The codecs are kernel
// parameters, and reading them at thread-dependent offsets serializes in the constant cache: kernels
// copy only these into shared memory (copying all 2 x 511 floats dominated a one-token write).
__device__ inline int codebook_entries(const RowCodec& codec) { return codec.kind == kCodebook ? codec.table_size : 0; }

// The rotation of local KV head `kv_head` under `codec`.
__device__ inline RotationRef rotation_of(const AttentionParams& p, const RowCodec& codec, int kv_head) {
  return {codec.rotation_seed, codec.layer_index, p.first_global_kv_head + kv_head,
          p.layer_tables == nullptr ? nullptr : p.layer_tables + int64_t(kv_head) * 2 * p.head_size};
}

// The smoothing scales of local KV head `kv_head` under `codec` ([head_size] floats in the layer
// tables), or null where the role is not smoothed.
__device__ inline const float* smoothing_of(const uint8_t* layer_tables, const RowCodec& codec, int kv_head, int d) {
  if (codec.smoothing_offset < 0 || layer_tables == nullptr) return nullptr;
  return reinterpret_cast<const float*>(layer_tables + codec.smoothing_offset) + int64_t(kv_head) * d;
}

// The channel means of local KV head `kv_head` under `codec` (in the scaled domain), or null where the
// role is not centered.
__device__ inline const float* centering_of(const uint8_t* layer_tables, const RowCodec& codec, int kv_head, int d) {
  if (codec.centering_offset < 0 || layer_tables == nullptr) return nullptr;
  return reinterpret_cast<const float*>(layer_tables + codec.centering_offset) + int64_t(kv_head) * d;
}

// Block-wide: x[i][j] = (x[i][j] + means[j]) * scales[j] for `count` vectors of d (means may be null).
__device__ inline void restore_channels(float* x, int count, int d, const float* scales, const float* means) {
  __syncthreads();
  for (int i = threadIdx.x; i < count * d; i += blockDim.x)
    x[i] = (x[i] + (means ? means[i % d] : 0.0f)) * scales[i % d];
  __syncthreads();
}

// Block-wide: x[i][j] *= scales[j] for `count` vectors of d.
__device__ inline void scale_channels(float* x, int count, int d, const float* scales) {
  __syncthreads();
  for (int i = threadIdx.x; i < count * d; i += blockDim.x) x[i] *= scales[i % d];
  __syncthreads();
}

// Pair tables of the prefill's fp16 decoding: up to 256 entries, then the largest magnitude.
constexpr int kPairTableEntries = 256;
static_assert(kPairTableEntries + 1 <= plugin::cuda::kPairTableWords, "the table and its largest magnitude fit");
// Decoded values stay below this (fp16's largest is 65504; the margin covers the rounding of the
// centroids and of the products).
constexpr float kHalfLimit = 65000.0f;

__device__ inline void fill_pair_table(const RowCodec& codec, const float* table, uint32_t* pairs) {
  if (codec.kind != kCodebook || codec.bits < 2 || codec.bits > 4) return;
  const int entries = 1 << (2 * codec.bits), mask = (1 << codec.bits) - 1;
  for (int i = threadIdx.x; i < entries; i += blockDim.x) {
    const __half2 pair = __floats2half2_rn(table[i & mask], table[i >> codec.bits]);
    pairs[i] = *reinterpret_cast<const uint32_t*>(&pair);
  }
  if (threadIdx.x == 0)
    pairs[kPairTableEntries] = __float_as_uint(fmaxf(fabsf(table[0]), fabsf(table[codec.table_size - 1])));
}

struct TurboQuantRows {
  using Codec = RowCodec;
  using Codecs = plugin::cuda::Codecs<TurboQuantRows>;

  static int form_of(const Codec& codec) {
    return codec.kind < plugin::cuda::kPlainKinds ? plugin::cuda::row_form(codec.kind, 0)
                                                  : plugin::cuda::row_form(codec.kind, codec.bits);
  }
  // Every lane's coordinates in one scale block.
  static bool tiled_serves(const Codec& codec, int per_lane) {
    return codec.kind < plugin::cuda::kPlainKinds ||
           (codec.bits >= 1 && codec.bits <= 8 && codec.block_size > 0 && codec.block_size % per_lane == 0);
  }
  // Blocks of a power of two coordinates (16 or more): decode_half16 finds a lane's block by a shift.
  static bool prefill_serves(const Codec& codec) {
    const bool power_of_two_blocks = codec.block_size >= 16 && (codec.block_size & (codec.block_size - 1)) == 0;
    return codec.kind < plugin::cuda::kPlainKinds || (codec.bits >= 1 && codec.bits <= 8 && power_of_two_blocks);
  }
  // None: the quantized pairs that matter have the tensor-core kernel.
  static constexpr std::array<std::array<int, 2>, 0> kFastPairs{};
  // The pairs the README recommends and the smallest: q8_0/q3_0, q4_0/q3_0, tq4/tq3, tq3/tq3, tq2/tq2
  // (q3_0 and tq3 V rows are both 3-bit codebook rows).
  static constexpr std::array<std::array<int, 2>, 5> kPrefillPairs{{
      {plugin::cuda::row_form(kAffineSigned, 8), plugin::cuda::row_form(kCodebook, 3)},
      {plugin::cuda::row_form(kAffineUnsigned, 4), plugin::cuda::row_form(kCodebook, 3)},
      {plugin::cuda::row_form(kCodebook, 4), plugin::cuda::row_form(kCodebook, 3)},
      {plugin::cuda::row_form(kCodebook, 3), plugin::cuda::row_form(kCodebook, 3)},
      {plugin::cuda::row_form(kCodebook, 2), plugin::cuda::row_form(kCodebook, 2)},
  }};

  // Writes every new token's K and V rows into their slots (write_kv_cuda.cu).
  static Status write_rows(const plugin::cuda::WriteParams& params, const Codecs& codecs, cudaStream_t stream);

  __device__ static void copy_tables(const Codecs& codecs, float* key_table, float* value_table) {
    for (int i = threadIdx.x; i < codebook_entries(codecs.key); i += blockDim.x) key_table[i] = codecs.key.table[i];
    for (int i = threadIdx.x; i < codebook_entries(codecs.value); i += blockDim.x)
      value_table[i] = codecs.value.table[i];
  }

  // The forms decode_half16 serves: 8-bit signed and 4-bit unsigned affine codes, 2- to 4-bit codebooks.
  template <int FORM>
  __host__ __device__ static constexpr bool decodes_half() {
    constexpr int kind = FORM / 16, bits = FORM % 16;
    return FORM != kAnyForm && ((kind == kAffineSigned && bits == 8) || (kind == kAffineUnsigned && bits == 4) ||
                                (kind == kCodebook && bits >= 2 && bits <= 4));
  }

  // Block-wide, after copy_tables' tables are visible: each 2- to 4-bit codebook's pair table, entry
  // i = (c[i & mask], c[i >> bits]) as an fp16 pair (the lower code in the low half), and at
  // kPairTableEntries the largest centroid magnitude as a float.
  __device__ static void copy_pair_tables(const Codecs& codecs, const float* key_table, const float* value_table,
                                          uint32_t* key_pairs, uint32_t* value_pairs) {
    fill_pair_table(codecs.key, key_table, key_pairs);
    fill_pair_table(codecs.value, value_table, value_pairs);
  }

  // A lane's 16 coordinates of a row in shared memory as 8 fp16 pairs, each zero + scale * code
  // rounded once (codebooks: scale times the centroid's fp16), with a few instructions a pair: bytes
  // and nibbles become fp16 by exponent bits (0x6400 | u is 1024 + u), codebook pairs are one
  // look-up.  Rows outside the context (valid false) give zeros.  False where the row's values may
  // pass 65000 (the caller then decodes in f32 and scales the row); FORM: decodes_half<FORM>().
  template <int FORM>
  __device__ static bool decode_half16(const Codec& codec, const uint8_t* row, bool valid, int sub,
                                       const uint32_t* pairs, uint32_t (&h)[8]) {
    constexpr int kKind = FORM / 16, kBits = FORM % 16, kBytes = 2 * kBits;
    uint32_t words[(kBytes + 3) / 4];
    plugin::cuda::load_words<kBytes>(row + codec.codes_offset + sub * kBytes, words);
    const int block = (sub * 16) >> (__ffs(codec.block_size) - 1);  // a power of two (prefill_serves)
    if constexpr (kKind == kCodebook) {
      const float scale = valid ? plugin::cuda::load_half_bytes(row + codec.scales_offset + 2 * block) : 0.0f;
      const __half2 scale2 = __float2half2_rn(scale);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const uint32_t pair = pairs[plugin::cuda::code_in<2 * kBits>(words, k)];
        const __half2 product = __hmul2(*reinterpret_cast<const __half2*>(&pair), scale2);
        h[k] = *reinterpret_cast<const uint32_t*>(&product);
      }
      return fabsf(scale) * __uint_as_float(pairs[kPairTableEntries]) < kHalfLimit;
    } else {
      const uint8_t* fields = row + codec.scales_offset + 4 * block;
      const float scale = valid ? plugin::cuda::load_half_bytes(fields) : 0.0f;
      const float zero = valid ? plugin::cuda::load_half_bytes(fields + 2) : 0.0f;
      const __half2 scale2 = __float2half2_rn(scale), zero2 = __float2half2_rn(zero);
      auto affine = [&](uint32_t codes) {  // codes: fp16 pair of exact integers
        const __half2 value = __hfma2(*reinterpret_cast<const __half2*>(&codes), scale2, zero2);
        return *reinterpret_cast<const uint32_t*>(&value);
      };
      auto as_word = [](__half2 pair) { return *reinterpret_cast<const uint32_t*>(&pair); };
      auto as_pair = [](uint32_t word) { return *reinterpret_cast<const __half2*>(&word); };
      if constexpr (kKind == kAffineSigned) {  // bytes b: (b ^ 0x80) | 0x6400 is 1152 + b
        const __half2 offset = __float2half2_rn(1152.0f);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint32_t biased = words[j] ^ 0x80808080u;
          h[2 * j] = affine(as_word(__hsub2(as_pair(__byte_perm(biased, 0x64646464u, 0x5140)), offset)));
          h[2 * j + 1] = affine(as_word(__hsub2(as_pair(__byte_perm(biased, 0x64646464u, 0x7362)), offset)));
        }
        return fabsf(zero) + 127.0f * fabsf(scale) < kHalfLimit;
      } else {  // nibbles n0..n7 of a word: (n0, n4) and (16 n1, 16 n5) over 1024, then n2.. after a shift
        const __half2 offset = __float2half2_rn(1024.0f), sixteenth = __float2half2_rn(0.0625f),
                      sixty_four = __float2half2_rn(-64.0f);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const uint32_t w = words[j] >> (8 * half);
            const uint32_t even = as_word(__hsub2(as_pair((w & 0x000f000fu) | 0x64006400u), offset));
            const uint32_t odd = as_word(__hfma2(as_pair((w & 0x00f000f0u) | 0x64006400u), sixteenth, sixty_four));
            h[4 * j + half] = affine(__byte_perm(even, odd, 0x5410));      // codes 8j + 2 half, + 1
            h[4 * j + 2 + half] = affine(__byte_perm(even, odd, 0x7632));  // codes 8j + 4 + 2 half, + 1
          }
        }
        return fabsf(zero) + 15.0f * fabsf(scale) < kHalfLimit;
      }
    }
  }

  template <int C, int FORM>
  __device__ static LaneRow decode(const Codec& codec, const uint8_t* row, int sub, const float* table, float (&x)[C]) {
    if constexpr (FORM != kAnyForm) {
      return decode_fixed<C, FORM / 16, FORM % 16>(codec, row, sub, table, x);
    } else {
      switch (codec.kind) {
        case kPlainF32:
          return decode_fixed<C, kPlainF32, 0>(codec, row, sub, table, x);
        case kPlainF16:
          return decode_fixed<C, kPlainF16, 0>(codec, row, sub, table, x);
        case kPlainBf16:
          return decode_fixed<C, kPlainBf16, 0>(codec, row, sub, table, x);
        case kCodebook:
          return decode_of_width<C, kCodebook>(codec, row, sub, table, x);
        case kAffineSigned:
          return decode_fixed<C, kAffineSigned, 8>(codec, row, sub, table, x);
        default:
          return decode_of_width<C, kAffineUnsigned>(codec, row, sub, table, x);
      }
    }
  }

  // Coordinates first .. first + C - 1 of a row, decoded exactly as the codec's decode does.
  template <int C>
  __device__ static void decode_at(const Codec& codec, const float* table, const uint8_t* row, int first,
                                   float (&x)[C]) {
    if (codec.kind < plugin::cuda::kPlainKinds) return plugin::cuda::decode_plain_at<C>(codec.kind, row, first, x);
    const uint8_t* codes = row + codec.codes_offset;
    const uint8_t* scales = row + codec.scales_offset;
    const bool affine = codec.kind == kAffineUnsigned || codec.kind == kAffineSigned;
#pragma unroll
    for (int i = 0; i < C; ++i) {
      const int index = first + i, block = index / codec.block_size;
      const unsigned code = tq::code_at(codes, index, codec.bits);
      if (affine) {
        const float scale = plugin::cuda::load_half_bytes(scales + 4 * block);
        const float zero = plugin::cuda::load_half_bytes(scales + 4 * block + 2);
        const float q = codec.kind == kAffineSigned ? float(static_cast<int8_t>(code)) : float(code);
        x[i] = zero + scale * q;
      } else {
        x[i] = plugin::cuda::load_half_bytes(scales + 2 * block) * table[code];
      }
    }
  }

  // Smoothed K rows hold x / s: the queries take s before they are rotated as the rows were.
  __device__ static void rotate_queries(const AttentionParams& p, const Codec& codec, int kv_head, float* x, int count,
                                        int d) {
    if (const float* scales = smoothing_of(p.layer_tables, codec, kv_head, d)) scale_channels(x, count, d, scales);
    if (codec.rotated) rotate_forward(x, count, d, rotation_of(p, codec, kv_head));
  }
  __device__ static void rotate_queries_by_block(const AttentionParams& p, const Codec& codec, int kv_head, float* x,
                                                 int count, int d) {
    if (const float* scales = smoothing_of(p.layer_tables, codec, kv_head, d)) scale_channels(x, count, d, scales);
    if (codec.rotated) rotate_by_block(x, count, d, rotation_of(p, codec, kv_head), false);
  }
  // Smoothed V rows hold x / s - mu: the outputs take mu and s once rotated back (the probabilities
  // sum to one).
  __device__ static void rotate_outputs(const AttentionParams& p, const Codec& codec, int kv_head, float* x, int count,
                                        int d) {
    if (codec.rotated) rotate_by_block(x, count, d, rotation_of(p, codec, kv_head), true);
    if (const float* scales = smoothing_of(p.layer_tables, codec, kv_head, d))
      restore_channels(x, count, d, scales, centering_of(p.layer_tables, codec, kv_head, d));
  }
  template <int J>
  __device__ static void rotate_output_lanes(const AttentionParams& p, const Codec& codec, int kv_head, float (&v)[J]) {
    if (codec.rotated) rotate_back_in_registers(v, rotation_of(p, codec, kv_head));
    if (const float* scales = smoothing_of(p.layer_tables, codec, kv_head, 32 * J)) {
      const float* means = centering_of(p.layer_tables, codec, kv_head, 32 * J);
      const int lane = threadIdx.x % 32;
#pragma unroll
      for (int j = 0; j < J; ++j) v[j] = (v[j] + (means ? means[lane + 32 * j] : 0.0f)) * scales[lane + 32 * j];
    }
  }
};

}  // namespace atb::turboquant::cuda
