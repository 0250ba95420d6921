#include <tq/half_rounding.hpp>
#include <tq/scaled_codes.hpp>

#include <cmath>

namespace tq {
namespace {

// Refinement rounds after the RMS start: the error settles after one or two.
constexpr int kRefinements = 2;

}  // namespace

uint16_t fit_scaled_codes(const float* x, int count, const ScalarCodebook& codebook, uint8_t* codes) {
  double energy = 0;
  for (int i = 0; i < count; ++i) energy += double(x[i]) * x[i];
  if (!(energy > 0)) {
    const uint8_t zero_code = uint8_t(codebook.nearest(0.0f));
    for (int i = 0; i < count; ++i) codes[i] = zero_code;
    return 0;
  }
  double best_error = energy;  // of the all-zero reconstruction
  double best_scale = 0;
  float scale = float(std::sqrt(energy / count));
  uint8_t trial[1024];
  for (int round = 0; round <= kRefinements; ++round) {
    const float inverse = 1.0f / scale;
    double cross = 0, self = 0;
    for (int i = 0; i < count; ++i) {
      trial[i] = uint8_t(codebook.nearest(x[i] * inverse));
      const double c = codebook.centroids[trial[i]];
      cross += double(x[i]) * c;
      self += c * c;
    }
    if (!(self > 0) || !(cross > 0)) break;
    const double fitted = cross / self;
    const double error = energy - cross * fitted;  // at the least-squares scale
    if (!(error < best_error)) break;
    best_error = error;
    best_scale = fitted;
    for (int i = 0; i < count; ++i) codes[i] = trial[i];
    scale = float(fitted);
  }
  if (best_scale == 0) {  // no round beat zero (cannot happen for finite non-zero input)
    const uint8_t zero_code = uint8_t(codebook.nearest(0.0f));
    for (int i = 0; i < count; ++i) codes[i] = zero_code;
  }
  return f16_nearest_finite(float(best_scale));
}

}  // namespace tq
