#include <tq/half_rounding.hpp>
#include <tq/scaled_codes.hpp>
#include <tq/simd.hpp>

#include <cmath>

#include "simd_kernels.hpp"

namespace tq {
namespace {

// Refinement rounds after the RMS start: the error settles after one or two.
constexpr int kRefinements = 2;

float sum_of_squares(const float* x, int count) {
  if (simd_enabled()) return avx2::sum_of_squares(x, count);
  float lanes[8] = {};
  for (int i = 0; i < count; ++i) lanes[i % 8] = std::fma(x[i], x[i], lanes[i % 8]);
  return combine_lanes(lanes);
}

// Codes and, in the same pass, the lane sums of x * c and c * c (see the header).
void nearest_codes(const float* x, int count, float inverse, const ScalarCodebook& codebook, uint8_t* codes,
                   float& cross, float& self) {
  if (simd_enabled()) return avx2::nearest_codes(x, count, inverse, codebook, codes, cross, self);
  float cross_lanes[8] = {}, self_lanes[8] = {};
  for (int i = 0; i < count; ++i) {
    codes[i] = uint8_t(codebook.nearest(x[i] * inverse));
    const float c = codebook.centroids[codes[i]];
    cross_lanes[i % 8] = std::fma(x[i], c, cross_lanes[i % 8]);
    self_lanes[i % 8] = std::fma(c, c, self_lanes[i % 8]);
  }
  cross = combine_lanes(cross_lanes);
  self = combine_lanes(self_lanes);
}

}  // namespace

uint16_t fit_scaled_codes(const float* x, int count, const ScalarCodebook& codebook, uint8_t* codes) {
  const float energy = sum_of_squares(x, count);
  const uint8_t zero_code = uint8_t(codebook.nearest(0.0f));
  if (!(energy > 0)) {
    for (int i = 0; i < count; ++i) codes[i] = zero_code;
    return 0;
  }
  float best_error = energy;  // of the all-zero reconstruction
  float best_scale = 0;
  float scale = std::sqrt(energy / float(count));
  uint8_t trial[1024];
  for (int round = 0; round <= kRefinements; ++round) {
    float cross, self;
    nearest_codes(x, count, 1.0f / scale, codebook, trial, cross, self);
    if (!(self > 0) || !(cross > 0)) break;
    const float fitted = cross / self;
    const float explained = cross * fitted;
    const float error = energy - explained;  // at the least-squares scale
    if (!(error < best_error)) break;
    best_error = error;
    best_scale = fitted;
    for (int i = 0; i < count; ++i) codes[i] = trial[i];
    scale = fitted;
  }
  if (best_scale == 0)
    for (int i = 0; i < count; ++i) codes[i] = zero_code;
  return f16_nearest_finite(best_scale);
}

}  // namespace tq
