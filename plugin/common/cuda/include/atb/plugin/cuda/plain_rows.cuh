// Uncompressed rows (f32, f16 or bf16 elements, no scale, no rotation): the row format of the
// `reference` plugin, and the plain rows any other format may fall back to.  The policy of
// row_format.cuh.
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/plain_rows.hpp>
#include <atb/plugin/cuda/row_format.cuh>
#include <atb/plugin/cuda/tile_pipeline.cuh>

#include <atb/status.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>

namespace atb::plugin::cuda {

// The lane's C coordinates of a plain row of KIND in shared memory (any alignment).
template <int C, int KIND>
__device__ inline void decode_plain(const uint8_t* row, int sub, float (&x)[C]) {
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
  } else {
    static_assert(KIND == kPlainBf16, "a plain kind");
    uint32_t words[C / 2];
    load_words<2 * C>(row + sub * 2 * C, words);
#pragma unroll
    for (int i = 0; i < C; ++i) x[i] = __uint_as_float(i % 2 ? words[i / 2] & 0xffff0000u : words[i / 2] << 16);
  }
}

// The lane's C coordinates of a plain row of `kind` in shared memory.
template <int C>
__device__ inline void decode_plain_any(int32_t kind, const uint8_t* row, int sub, float (&x)[C]) {
  switch (kind) {
    case kPlainF32:
      return decode_plain<C, kPlainF32>(row, sub, x);
    case kPlainF16:
      return decode_plain<C, kPlainF16>(row, sub, x);
    default:
      return decode_plain<C, kPlainBf16>(row, sub, x);
  }
}

// Coordinates first .. first + C - 1 of a plain row of `kind` in global memory.
template <int C>
__device__ inline void decode_plain_at(int32_t kind, const uint8_t* row, int first, float (&x)[C]) {
  switch (kind) {
    case kPlainF32:
#pragma unroll
      for (int i = 0; i < C; ++i) x[i] = reinterpret_cast<const float*>(row)[first + i];
      return;
    case kPlainF16:
#pragma unroll
      for (int i = 0; i < C; ++i) x[i] = __half2float(reinterpret_cast<const __half*>(row)[first + i]);
      return;
    default:
#pragma unroll
      for (int i = 0; i < C; ++i) x[i] = __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[first + i]);
      return;
  }
}

struct PlainRows {
  using Codec = PlainCodec;

  static int form_of(const Codec& codec) { return row_form(codec.kind, 0); }
  static bool tiled_serves(const Codec&, int) { return true; }
  static bool prefill_serves(const Codec&) { return true; }
  // The 16-bit caches, at head size 128 and 4 heads a block.
  static constexpr std::array<std::array<int, 2>, 2> kFastPairs{{
      {row_form(kPlainBf16, 0), row_form(kPlainBf16, 0)},
      {row_form(kPlainF16, 0), row_form(kPlainF16, 0)},
  }};
  static constexpr std::array<std::array<int, 2>, 2> kPrefillPairs = kFastPairs;

  // Writes every new token's K and V rows into their slots (plain_kernels.cu).
  static Status write_rows(const WriteParams& params, const Codecs<PlainRows>& codecs, cudaStream_t stream);

  __device__ static void copy_tables(const Codecs<PlainRows>&, float*, float*) {}

  // 16-bit rows become fp16 pairs in a few instructions: f16 rows are copied, bf16 rows converted
  // (false where a value passes fp16's range: the caller then scales the row in f32).
  template <int FORM>
  __host__ __device__ static constexpr bool decodes_half() {
    return FORM == row_form(kPlainF16, 0) || FORM == row_form(kPlainBf16, 0);
  }
  __device__ static void copy_pair_tables(const Codecs<PlainRows>&, const float*, const float*, uint32_t*, uint32_t*) {}
  template <int FORM>
  __device__ static bool decode_half16(const Codec&, const uint8_t* row, bool valid, int sub, const uint32_t*,
                                       uint32_t (&h)[8]) {
    // The prefill kernel's 16-bit rows are 256 bytes (head size 128) in 16-byte aligned stages: two
    // 16-byte loads, not the any-alignment word loader's nine loads and eight funnel shifts.
    const uint4 first = reinterpret_cast<const uint4*>(row + sub * 32)[0];
    const uint4 second = reinterpret_cast<const uint4*>(row + sub * 32)[1];
    const uint32_t words[8] = {first.x, first.y, first.z, first.w, second.x, second.y, second.z, second.w};
    if constexpr (FORM == row_form(kPlainF16, 0)) {
#pragma unroll
      for (int k = 0; k < 8; ++k) h[k] = valid ? words[k] : 0u;
      return true;
    } else {
      __half2 largest = __float2half2_rn(0.0f);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const uint32_t w = valid ? words[k] : 0u;
        const __half2 pair = __floats2half2_rn(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
        largest = __hmax2(largest, __habs2(pair));
        h[k] = *reinterpret_cast<const uint32_t*>(&pair);
      }
      return !__hisinf(__low2half(largest)) && !__hisinf(__high2half(largest));
    }
  }

  template <int C, int FORM>
  __device__ static LaneRow decode(const Codec& codec, const uint8_t* row, int sub, const float*, float (&x)[C]) {
    if constexpr (FORM != kAnyForm)
      decode_plain<C, FORM / 16>(row, sub, x);
    else
      decode_plain_any<C>(codec.kind, row, sub, x);
    return LaneRow{};
  }

  template <int C>
  __device__ static void decode_at(const Codec& codec, const float*, const uint8_t* row, int first, float (&x)[C]) {
    decode_plain_at<C>(codec.kind, row, first, x);
  }

  __device__ static void rotate_queries(const AttentionParams&, const Codec&, int, float*, int, int) {}
  __device__ static void rotate_queries_by_block(const AttentionParams&, const Codec&, int, float*, int, int) {}
  __device__ static void rotate_outputs(const AttentionParams&, const Codec&, int, float*, int, int) {}
  template <int J>
  __device__ static void rotate_output_lanes(const AttentionParams&, const Codec&, int, float (&)[J]) {}
};

}  // namespace atb::plugin::cuda
