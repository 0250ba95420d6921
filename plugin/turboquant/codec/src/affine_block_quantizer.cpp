// K affine per block of 32 (vllm-metal's K formats): x ~ zero + scale * code with fp16 scale and
// zero per block.  Unsigned codes run over [0, 2^b - 1] with the zero at the block's minimum;
// signed 8-bit codes over [-127, 127] with the zero at the block's midpoint (tq/affine_fields.hpp).
#include "quantizers.hpp"
#include "simd_kernels.hpp"

#include <tq/bit_packing.hpp>
#include <tq/affine_fields.hpp>
#include <tq/half_rounding.hpp>
#include <tq/simd.hpp>

#include <algorithm>
#include <cmath>

namespace tq {
namespace {

class AffineBlockQuantizer final : public Quantizer {
 public:
  AffineBlockQuantizer(const Format& format, int head_size) : Quantizer(format, head_size) {}

  void encode(const float* x, uint8_t* row) const override {
    const RowLayout& layout = this->layout();
    const bool is_signed = format().signed_codes;
    const int top = affine_top(layout.code_bits, is_signed);
    const bool simd = simd_enabled();
    // Sized by blocks, and plain bit fields rather than AffineFields (which start zeroed): clearing
    // the fields cost more than a row of 128 costs to encode.
    constexpr int kMaxBlocks = (kMaxRotationSize + kScaleBlock - 1) / kScaleBlock;
    uint8_t codes[kMaxRotationSize];
    float lows[kMaxBlocks], highs[kMaxBlocks];
    uint16_t scale_bits[kMaxBlocks], zero_bits[kMaxBlocks];
    for (int block = 0; block < layout.blocks; ++block) {
      const int begin = block * layout.block_size;
      const int end = std::min(layout.head_size, begin + layout.block_size);
      if (simd) {
        avx2::min_max(x + begin, end - begin, lows[block], highs[block]);
      } else {
        const auto [low_at, high_at] = std::minmax_element(x + begin, x + end);
        lows[block] = *low_at;
        highs[block] = *high_at;
      }
    }
    int done = 0;
    if (simd)
      for (; done + 4 <= layout.blocks; done += 4)
        avx2::affine_fields4(lows + done, highs + done, top, is_signed, scale_bits + done, zero_bits + done);
    for (int block = done; block < layout.blocks; ++block) {
      const AffineFields fields = affine_fields(lows[block], highs[block], top, is_signed);
      scale_bits[block] = fields.scale_bits;
      zero_bits[block] = fields.zero_bits;
    }
    for (int block = 0; block < layout.blocks; ++block) {
      const int begin = block * layout.block_size;
      const int end = std::min(layout.head_size, begin + layout.block_size);
      const float zero = f16_bits_value(zero_bits[block]);
      const float inverse = affine_inverse(AffineFields{scale_bits[block], zero_bits[block]});
      const float low_code = is_signed ? -float(top) : 0.0f;
      if (simd) {
        avx2::affine_codes(x + begin, end - begin, zero, inverse, low_code, float(top), codes + begin);
      } else {
        for (int i = begin; i < end; ++i) codes[i] = affine_code(x[i], zero, inverse, low_code, float(top));
      }
      store_f16(row + layout.scales_offset + 4 * size_t(block), scale_bits[block]);
      store_f16(row + layout.scales_offset + 4 * size_t(block) + 2, zero_bits[block]);
    }
    pack_codes(codes, layout.head_size, layout.code_bits, row + layout.codes_offset);
  }

  void decode(const uint8_t* row, float* x) const override {
    const RowLayout& layout = this->layout();
    uint8_t codes[kMaxRotationSize];
    unpack_codes(row + layout.codes_offset, layout.head_size, layout.code_bits, codes);
    for (int i = 0; i < layout.head_size; ++i) {
      const size_t block = size_t(i / layout.block_size);
      const float scale = load_f16(row + layout.scales_offset + 4 * block);
      const float zero = load_f16(row + layout.scales_offset + 4 * block + 2);
      const float q = format().signed_codes ? float(int8_t(codes[i])) : float(codes[i]);
      x[i] = zero + scale * q;
    }
  }
};

}  // namespace

std::unique_ptr<Quantizer> make_affine_block_quantizer(const Format& format, int head_size) {
  return std::make_unique<AffineBlockQuantizer>(format, head_size);
}

}  // namespace tq
