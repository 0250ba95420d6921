// Codes of a block of values under one scale and a codebook: x ~ scale * centroid[code].  Shared by
// the per-32 Lloyd–Max V format and TurboQuant-MSE (whose block is the whole vector).
#pragma once

#include <tq/codebooks.hpp>
#include <tq/nearest_code.hpp>

#include <cstdint>

namespace tq {

// Chooses codes and a scale minimising sum (x_i - scale * centroid[code_i])^2: starting from the RMS
// normalisation (the codebook's own scale), it alternates nearest-centroid codes and the
// least-squares scale for those codes, keeping the best.  Both steps never increase the error, so
// this is never worse than plain RMS-normalised quantisation, and the scale is the MSE-optimal one
// for the codes stored.  Returns the scale rounded to fp16 (bits); a zero block gets scale 0.
//
// `count` is a multiple of 8.  Sums run in lanes combined as combine_lanes does.
uint16_t fit_scaled_codes(const float* x, int count, const ScalarCodebook& codebook, uint8_t* codes);

// fit_scaled_codes of each block of `block_size` values (the last may be shorter, every one a
// multiple of 8) of x[0 .. count): codes[count], scale_bits[one per block].  The same results as one
// call per block.  block_size >= 32 or >= count (at most 32 blocks).
void fit_scaled_blocks(const float* x, int count, int block_size, const ScalarCodebook& codebook, uint8_t* codes,
                       uint16_t* scale_bits);

}  // namespace tq
