// Codes of a block of values under one scale and a codebook: x ~ scale * centroid[code].  Shared by
// the per-32 Lloyd–Max V format and TurboQuant-MSE (whose block is the whole vector).
#pragma once

#include <tq/codebooks.hpp>
#include <tq/format.hpp>
#include <tq/nearest_code.hpp>

#include <cstdint>

namespace tq {

// Rounds of "nearest codes, then the least-squares scale for them" after the first round of a fit.
// More rounds lower each block's squared error, but the perplexity they buy depends on the block:
// whole-vector blocks (TurboQuant) keep two, the per-32 Lloyd-Max V blocks none, where more rounds
// cost perplexity on every model measured and doubled the encode time
// (plugin/turboquant/cpu/PERFORMANCE.md).  The CUDA encoder takes the same count (RowCodec).
inline int scaled_code_refinements(Scheme scheme) { return scheme == Scheme::lloyd_max_block ? 0 : 2; }

// Chooses codes and a scale for sum (x_i - scale * centroid[code_i])^2: the nearest centroids under
// the RMS normalisation (the codebook's own scale), then the least-squares scale for those codes;
// `refinements` more rounds of both follow while each lowers the error.  Never worse than plain
// RMS-normalised quantisation, and the scale is the MSE-optimal one for the codes stored.  Returns
// the scale rounded to fp16 (bits); a zero block gets scale 0.
//
// `count` is a multiple of 8.  Sums run in lanes combined as combine_lanes does.
uint16_t fit_scaled_codes(const float* x, int count, const ScalarCodebook& codebook, int refinements, uint8_t* codes);

// fit_scaled_codes of each block of `block_size` values (the last may be shorter, every one a
// multiple of 8) of x[0 .. count): codes[count], scale_bits[one per block].  The same results as one
// call per block.  block_size >= 32 or >= count (at most 32 blocks).
void fit_scaled_blocks(const float* x, int count, int block_size, const ScalarCodebook& codebook, int refinements,
                       uint8_t* codes, uint16_t* scale_bits);

}  // namespace tq
