// Decoding a lane's run of coordinates of a K or V row held in shared memory, for every row
// kind of a RowCodec: fixed at compile time (FORM = row_form(kind, bits)) or read from the codec.
#pragma once

#include <atb/plugin/cuda/paged_attention_cuda.hpp>

#include <cuda_fp16.h>

#include "device_common.cuh"
#include "tile_pipeline.cuh"
#include "tiled_attention.cuh"

namespace atb::plugin::cuda {

// A row's lane coordinates as raw values x (the row is scale * x + zero over the lane's block).
struct LaneRow {
  float scale = 1.0f, zero = 0.0f;
};

// Packed codes: x = table[code] (LOOKUP) or the code itself as a float (flip 0x80: signed 8-bit).
template <int C, int BITS, bool LOOKUP>
__device__ inline void decode_codes(const uint8_t* codes, int sub, const float* table, uint32_t flip, float bias,
                                    float (&x)[C]) {
  constexpr int NB = C * BITS / 8;
  uint32_t words[(NB + 3) / 4];
  load_words<NB>(codes + sub * NB, words);
#pragma unroll
  for (int i = 0; i < C; ++i) {
    const uint32_t code = code_in<BITS>(words, i);
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
  if constexpr (KIND == kPlainF32) {
    uint32_t words[C];
    load_words<4 * C>(row + sub * 4 * C, words);
#pragma unroll
    for (int i = 0; i < C; ++i) x[i] = __uint_as_float(words[i]);
  } else if constexpr (KIND == kPlainF16) {
    uint32_t words[C / 2];
    load_words<2 * C>(row + sub * 2 * C, words);
#pragma unroll
    for (int i = 0; i < C; ++i)
      x[i] = __half2float(__ushort_as_half(static_cast<unsigned short>(words[i / 2] >> (16 * (i % 2)))));
  } else if constexpr (KIND == kPlainBf16) {
    uint32_t words[C / 2];
    load_words<2 * C>(row + sub * 2 * C, words);
#pragma unroll
    for (int i = 0; i < C; ++i) x[i] = __uint_as_float(i % 2 ? words[i / 2] & 0xffff0000u : words[i / 2] << 16);
  } else if constexpr (KIND == kCodebook) {
    const int block = sub * C / codec.block_size;
    lane.scale = load_half_bytes(row + codec.scales_offset + 2 * block);
    decode_codes<C, BITS, true>(row + codec.codes_offset, sub, table, 0, 0.0f, x);
  } else {  // affine; signed codes are 8-bit two's complement
    const int block = sub * C / codec.block_size;
    lane.scale = load_half_bytes(row + codec.scales_offset + 4 * block);
    lane.zero = load_half_bytes(row + codec.scales_offset + 4 * block + 2);
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

template <int C, int FORM>
__device__ inline LaneRow decode_row(const RowCodec& codec, const uint8_t* row, int sub, const float* table,
                                     float (&x)[C]) {
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

}  // namespace atb::plugin::cuda
