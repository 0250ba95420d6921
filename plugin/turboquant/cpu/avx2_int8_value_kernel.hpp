// The integer AVX2 value kernel (config kernel "avx2_int8"): probabilities times codebook values
// summed as int16 with vpmaddubsw, back to f32 once per tile.  It covers the codebook V formats of 3
// and 4 bits, with one scale per row (tq3, tq4) or per block (q3_0, q4_0), at head sizes that are
// multiples of 32; for anything else it returns nullptr and callers keep the f32 kernel.
#pragma once

#include <algorithm>
#include <vector>

#include "code_kernels.hpp"

namespace atb::turboquant {

// Rows per tile.  A tile's weights become bytes on the finest grid on which the largest is at most
// 255 and they sum to at most kInt8WeightTotal, so its int16 sums stay below kCentroidGridMax (63)
// * (500 + 32 / 2)
// whatever the rows hold.
inline constexpr int kInt8ValueTileRows = 32;
inline constexpr int kInt8WeightTotal = 500;

// The weight one byte stands for in a tile whose largest weight is `largest` and whose weights sum
// to `total` (0 when the tile weighs nothing).
inline double int8_weight_step(double largest, double total) {
  return total > 0 ? std::max(largest / 255, total / kInt8WeightTotal) : 0.0;
}

std::unique_ptr<ValueKernel> make_avx2_int8_value_kernel(const tq::Quantizer& quantizer);

// How far, per coordinate, the integer kernel's sum over `n` rows with probabilities `probs` (one
// head) may lie from the exact sum over the decoded rows: each weight rounded to its tile's byte
// grid, each centroid to the table's grid, and f32 rounding.
std::vector<double> int8_accumulate_error_bound(const tq::Quantizer& quantizer, const uint8_t* const* rows, int n,
                                                const float* probs);

}  // namespace atb::turboquant
