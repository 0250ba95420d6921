// Codes of a block of values under one scale and a codebook: x ~ scale * centroid[code].  Shared by
// the per-32 Lloyd–Max V format and TurboQuant-MSE (whose block is the whole vector).
#pragma once

#include <tq/codebooks.hpp>

#include <cstdint>

namespace tq {

// Chooses codes and a scale minimising sum (x_i - scale * centroid[code_i])^2: starting from the RMS
// normalisation (the codebook's own scale), it alternates nearest-centroid codes and the
// least-squares scale for those codes, keeping the best.  Both steps never increase the error, so
// this is never worse than plain RMS-normalised quantisation, and the scale is the MSE-optimal one
// for the codes stored.  Returns the scale rounded to fp16 (bits); a zero block gets scale 0.
//
// `count` is a multiple of 8.  Sums run in 8 interleaved f32 lanes (element i into lane i % 8, by
// fused multiply-add) combined as ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)): the order the AVX2 path
// uses, so both paths give bit-identical rows.
uint16_t fit_scaled_codes(const float* x, int count, const ScalarCodebook& codebook, uint8_t* codes);

// The lane combination above.
float combine_lanes(const float lanes[8]);

}  // namespace tq
