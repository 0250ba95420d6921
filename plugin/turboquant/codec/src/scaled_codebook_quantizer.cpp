// Formats whose rows are codes of one codebook under one fp16 scale per block:
//   lloyd_max_block (V, vllm-metal):  blocks of 32, unit-normal Lloyd–Max codebook;
//   turboquant_mse:                   one block of head_size, Lloyd–Max codebook of the rotated
//                                     coordinate's exact (sphere) distribution for that head size.
// x ~ scale * centroid[code]; the scale is fitted by least squares (see scaled_codes.hpp).
#include "quantizers.hpp"

#include <tq/bit_packing.hpp>
#include <tq/codebooks.hpp>
#include <tq/half_rounding.hpp>
#include <tq/scaled_codes.hpp>

#include <algorithm>

namespace tq {
namespace {

class ScaledCodebookQuantizer final : public Quantizer {
 public:
  ScaledCodebookQuantizer(const Format& format, int head_size)
      : Quantizer(format, head_size),
        codebook_(format.scheme == Scheme::lloyd_max_block ? unit_normal_codebook(format.bits)
                                                           : sphere_codebook(head_size, format.bits)) {}

  void encode(const float* x, uint8_t* row) const override {
    const RowLayout& layout = this->layout();
    uint8_t codes[kMaxRotationSize];
    uint16_t scales[kMaxRotationSize / kScaleBlock];
    fit_scaled_blocks(x, layout.head_size, layout.block_size, codebook_, scaled_code_refinements(format().scheme),
                      codes, scales);
    for (int block = 0; block < layout.blocks; ++block)
      store_f16(row + layout.scales_offset + 2 * size_t(block), scales[block]);
    pack_codes(codes, layout.head_size, layout.code_bits, row + layout.codes_offset);
  }

  void decode(const uint8_t* row, float* x) const override {
    const RowLayout& layout = this->layout();
    uint8_t codes[kMaxRotationSize];
    unpack_codes(row + layout.codes_offset, layout.head_size, layout.code_bits, codes);
    for (int i = 0; i < layout.head_size; ++i) {
      const float scale = load_f16(row + layout.scales_offset + 2 * size_t(i / layout.block_size));
      x[i] = scale * codebook_.centroids[codes[i]];
    }
  }

  const ScalarCodebook* codebook() const override { return &codebook_; }

 private:
  const ScalarCodebook& codebook_;
};

}  // namespace

std::unique_ptr<Quantizer> make_scaled_codebook_quantizer(const Format& format, int head_size) {
  return std::make_unique<ScaledCodebookQuantizer>(format, head_size);
}

}  // namespace tq
