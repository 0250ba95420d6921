#include <tq/byte_accounting.hpp>
#include <tq/half_rounding.hpp>
#include <tq/rotation.hpp>
#include <tq/scaled_codes.hpp>
#include <tq/simd.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "simd_kernels.hpp"

namespace tq {
namespace {

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

// One block's fit in progress: the state kept between its rounds.  No member initialisers: the
// fits of a row are an array on the stack, set by start_fit.
struct BlockFit {
  const float* x;
  uint8_t* codes;
  int count;
  float energy, best_error, best_scale, scale;
  bool refining;
};

// Starts from the RMS normalisation; a zero block is done at once (zero codes, scale 0).  Fields are
// set one by one: a whole struct built and copied costs store-forwarding stalls here.
void start_fit(BlockFit& fit, const float* x, int count, uint8_t* codes) {
  fit.x = x;
  fit.codes = codes;
  fit.count = count;
  fit.energy = sum_of_squares(x, count);
  fit.best_scale = 0;
  fit.refining = fit.energy > 0;
  fit.best_error = fit.energy;  // of the all-zero reconstruction
  fit.scale = fit.refining ? std::sqrt(fit.energy / float(count)) : 0.0f;
}

// One round: nearest codes under the current scale, then the least-squares scale for them; the
// block stops refining once a round does not lower its error.
void refine(BlockFit& fit, const ScalarCodebook& codebook, uint8_t* trial) {
  float cross, self;
  nearest_codes(fit.x, fit.count, 1.0f / fit.scale, codebook, trial, cross, self);
  if (!(self > 0) || !(cross > 0)) {
    fit.refining = false;
    return;
  }
  const float fitted = cross / self;
  const float explained = cross * fitted;
  const float error = fit.energy - explained;  // at the least-squares scale
  if (!(error < fit.best_error)) {
    fit.refining = false;
    return;
  }
  fit.best_error = error;
  fit.best_scale = fitted;
  std::memcpy(fit.codes, trial, size_t(fit.count));
  fit.scale = fitted;
}

uint16_t finish_fit(const BlockFit& fit, uint8_t zero_code) {
  if (fit.best_scale == 0) std::memset(fit.codes, zero_code, size_t(fit.count));
  return f16_nearest_finite(fit.best_scale);
}

}  // namespace

void fit_scaled_blocks(const float* x, int count, int block_size, const ScalarCodebook& codebook, int refinements,
                       uint8_t* codes, uint16_t* scale_bits) {
  // Round by round over all blocks rather than block by block: the blocks are independent, so one
  // block's round overlaps the latency of the others' (a round of a 32-value block is a short chain
  // of dependent sums, a division and the next round's reciprocal).
  const uint8_t zero_code = uint8_t(codebook.nearest(0.0f));
  BlockFit fits[kMaxRotationSize / kScaleBlock];
  const int blocks = (count + block_size - 1) / block_size;
  for (int b = 0; b < blocks; ++b)
    start_fit(fits[b], x + b * block_size, std::min(block_size, count - b * block_size), codes + b * block_size);
  uint8_t trial[kMaxRotationSize];
  for (int round = 0; round <= refinements; ++round)
    for (int b = 0; b < blocks; ++b)
      if (fits[b].refining) refine(fits[b], codebook, trial + b * block_size);
  for (int b = 0; b < blocks; ++b) scale_bits[b] = finish_fit(fits[b], zero_code);
}

uint16_t fit_scaled_codes(const float* x, int count, const ScalarCodebook& codebook, int refinements, uint8_t* codes) {
  uint16_t scale_bits = 0;
  fit_scaled_blocks(x, count, count, codebook, refinements, codes, &scale_bits);
  return scale_bits;
}

}  // namespace tq
