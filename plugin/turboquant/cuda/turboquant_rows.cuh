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

// Block-wide: x[i][j] *= scales[j] for `count` vectors of d.
__device__ inline void scale_channels(float* x, int count, int d, const float* scales) {
  __syncthreads();
  for (int i = threadIdx.x; i < count * d; i += blockDim.x) x[i] *= scales[i % d];
  __syncthreads();
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
  static bool prefill_serves(const Codec& codec) {
    return codec.kind < plugin::cuda::kPlainKinds || (codec.bits >= 1 && codec.bits <= 8 && codec.block_size % 16 == 0);
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
  // Smoothed V rows hold x / s: the outputs take s once rotated back.
  __device__ static void rotate_outputs(const AttentionParams& p, const Codec& codec, int kv_head, float* x, int count,
                                        int d) {
    if (codec.rotated) rotate_by_block(x, count, d, rotation_of(p, codec, kv_head), true);
    if (const float* scales = smoothing_of(p.layer_tables, codec, kv_head, d)) scale_channels(x, count, d, scales);
  }
  template <int J>
  __device__ static void rotate_output_lanes(const AttentionParams& p, const Codec& codec, int kv_head, float (&v)[J]) {
    if (codec.rotated) rotate_back_in_registers(v, rotation_of(p, codec, kv_head));
    if (const float* scales = smoothing_of(p.layer_tables, codec, kv_head, 32 * J)) {
      const int lane = threadIdx.x % 32;
#pragma unroll
      for (int j = 0; j < J; ++j) v[j] *= scales[lane + 32 * j];
    }
  }
};

}  // namespace atb::turboquant::cuda
