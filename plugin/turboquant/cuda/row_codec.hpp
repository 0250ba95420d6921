// How the TurboQuant CUDA kernels read and write one K or V row: the codec's format reduced to what
// a kernel needs (kind, code width, offsets, the codebook and the rotation), built on the host from
// tq's format table at layer creation and passed to the kernels by value.
#pragma once

#include <atb/plugin/cuda/plain_rows.hpp>
#include <tq/byte_accounting.hpp>
#include <tq/format_table.hpp>

#include <cstdint>

namespace atb::turboquant::cuda {

using plugin::cuda::kPlainBf16;
using plugin::cuda::kPlainF16;
using plugin::cuda::kPlainF32;

// Row kinds past the plain ones (plugin::cuda::PlainKind).
enum RowKind : int32_t {
  kAffineUnsigned = plugin::cuda::kPlainKinds,  // x = zero + scale * code, fp16 (scale, zero) per block
  kAffineSigned,                                // the same with two's-complement 8-bit codes
  kCodebook,                                    // x = scale * table[code], one fp16 scale per block
};

// The kind of row a format stores, or -1 where the CUDA kernels read none (TurboQuant-prod).  The
// one mapping from tq's table: cuda_layer.cpp builds codecs with it and the tensor-core kernel derives
// its instances' row kinds from it at compile time.
constexpr int32_t row_kind(const tq::Format& format) {
  switch (format.scheme) {
    case tq::Scheme::plain:
      return plugin::cuda::plain_row_kind(format.plain_dtype);
    case tq::Scheme::affine_block:
      return format.signed_codes ? kAffineSigned : kAffineUnsigned;
    case tq::Scheme::lloyd_max_block:
    case tq::Scheme::turboquant_mse:
      return kCodebook;
    default:
      return -1;
  }
}

struct RowCodec {
  int32_t kind = kPlainF32;
  int32_t bits = 0;           // bits per packed code, LSB first
  int32_t block_size = 0;     // coordinates per scale
  int32_t codes_offset = 0;   // bytes into the row
  int32_t scales_offset = 0;  // bytes into the row
  int32_t rotated = 0;        // rows hold R x, R tq::Rotation(head_size, rotation_seed, layer_index, global KV head)
  uint64_t rotation_seed = 0;
  int32_t layer_index = 0;
  // Bytes into the layer tables of this role's channel smoothing scales, [KV heads][head_size] f32
  // (powers of two: rows are stored as x / s before the rotation, queries or outputs take s back);
  // -1: none.
  int32_t smoothing_offset = -1;
  // Bytes into the layer tables of this role's channel means, [KV heads][head_size] f32 in the scaled
  // domain (rows are stored as x / s - mu; outputs take mu back before s); -1: none.
  int32_t centering_offset = -1;
  float table[256] = {};  // centroids (kCodebook); their boundaries (encode) follow
  float boundaries[255] = {};
  int32_t table_size = 0;
  int32_t refinements = 0;  // kCodebook: fit rounds after the first, tq::scaled_code_refinements
};

// A layer's format for K or V and the codec built from it (cuda_layer.cpp).
struct RowFormat {
  tq::Format format;
  RowCodec codec;
};

}  // namespace atb::turboquant::cuda
