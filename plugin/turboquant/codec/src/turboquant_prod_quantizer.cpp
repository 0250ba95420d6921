// TurboQuant-prod (K only, experimental): TurboQuant-MSE codes at bits-1 bits, then a 1-bit QJL
// sketch of the residual r = y - y_mse:  z = sign(S r)  with S a head_size x head_size matrix of
// independent N(0, 1) entries, plus the residual's norm.  Decoding adds
//     ||r|| * sqrt(pi/2) / head_size * S^T z,
// whose inner product with any query is an unbiased estimate of <q, r> over the draw of S.
//
// S is drawn once per (seed, head size): SplitMix64 seeded with qjl_stream_seed(seed, head_size),
// two 53-bit uniforms per Box–Muller pair, filled row by row.  It is shared by all layers and heads
// (their rotations already differ).
//
// Row: [codes (bits-1 each)] [fp16 MSE scale] [head_size sign bits, 1 = +1] [fp16 residual norm].
#include "quantizers.hpp"

#include <tq/bit_packing.hpp>
#include <tq/codebooks.hpp>
#include <tq/half_rounding.hpp>
#include <tq/scaled_codes.hpp>
#include <tq/splitmix64.hpp>

#include <cmath>
#include <vector>

namespace tq {
namespace {

uint64_t qjl_stream_seed(uint64_t seed, int head_size) {
  uint64_t state = seed ^ 0x514a4c0000000000ull ^ uint64_t(uint32_t(head_size));  // "QJL"
  return splitmix64(state);
}

std::vector<float> gaussian_matrix(uint64_t seed, int size) {
  uint64_t state = qjl_stream_seed(seed, size);
  std::vector<float> matrix(size_t(size) * size_t(size));
  for (size_t i = 0; i < matrix.size(); i += 2) {
    const double u1 = (double(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = double(splitmix64(state) >> 11) * 0x1.0p-53;          // [0, 1)
    const double radius = std::sqrt(-2.0 * std::log(u1));
    matrix[i] = float(radius * std::cos(2 * M_PI * u2));
    if (i + 1 < matrix.size()) matrix[i + 1] = float(radius * std::sin(2 * M_PI * u2));
  }
  return matrix;
}

class TurboQuantProdQuantizer final : public Quantizer {
 public:
  TurboQuantProdQuantizer(const Format& format, int head_size, uint64_t seed)
      : Quantizer(format, head_size),
        codebook_(sphere_codebook(head_size, format.bits - 1)),
        sketch_(gaussian_matrix(seed, head_size)) {}

  void encode(const float* y, uint8_t* row) const override {
    const RowLayout& layout = this->layout();
    const int d = layout.head_size;
    uint8_t codes[kMaxRotationSize];
    const uint16_t scale_bits = fit_scaled_codes(y, d, codebook_, scaled_code_refinements(format().scheme), codes);
    pack_codes(codes, d, layout.code_bits, row + layout.codes_offset);
    store_f16(row + layout.scales_offset, scale_bits);

    const float scale = atb::f16_to_f32(scale_bits);
    float residual[kMaxRotationSize];
    double residual_energy = 0;
    for (int i = 0; i < d; ++i) {
      residual[i] = y[i] - scale * codebook_.centroids[codes[i]];
      residual_energy += double(residual[i]) * residual[i];
    }
    uint8_t signs[kMaxRotationSize];
    for (int k = 0; k < d; ++k) {
      const float* s_row = sketch_.data() + size_t(k) * size_t(d);
      float projection = 0;
      for (int j = 0; j < d; ++j) projection += s_row[j] * residual[j];
      signs[k] = projection >= 0 ? 1 : 0;
    }
    pack_codes(signs, d, 1, row + layout.sketch_offset);
    store_f16(row + layout.residual_norm_offset, f16_nearest_finite(float(std::sqrt(residual_energy))));
  }

  void decode(const uint8_t* row, float* y) const override {
    const RowLayout& layout = this->layout();
    const int d = layout.head_size;
    uint8_t codes[kMaxRotationSize], signs[kMaxRotationSize];
    unpack_codes(row + layout.codes_offset, d, layout.code_bits, codes);
    unpack_codes(row + layout.sketch_offset, d, 1, signs);
    const float scale = load_f16(row + layout.scales_offset);
    const float weight = load_f16(row + layout.residual_norm_offset) * float(std::sqrt(M_PI / 2) / d);
    for (int i = 0; i < d; ++i) y[i] = scale * codebook_.centroids[codes[i]];
    for (int k = 0; k < d; ++k) {
      const float sign = signs[k] ? weight : -weight;
      const float* s_row = sketch_.data() + size_t(k) * size_t(d);
      for (int i = 0; i < d; ++i) y[i] += sign * s_row[i];
    }
  }

  const ScalarCodebook* codebook() const override { return &codebook_; }
  const float* sketch_matrix() const override { return sketch_.data(); }

 private:
  const ScalarCodebook& codebook_;
  std::vector<float> sketch_;  // S, row-major
};

}  // namespace

std::unique_ptr<Quantizer> make_turboquant_prod_quantizer(const Format& format, int head_size, uint64_t seed) {
  return std::make_unique<TurboQuantProdQuantizer>(format, head_size, seed);
}

}  // namespace tq
