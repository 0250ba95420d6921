// The integer AVX2 key kernel (config kernel "avx2_int8"): the rotated query quantized once per step
// to int8, the codes multiplied as bytes with vpmaddubsw, scales and zeros applied per block after.
// It covers the affine and codebook K formats of 2, 3, 4 and 8 bits at head sizes that are
// multiples of 128; for anything else make_avx2_int8_key_kernel returns nullptr and callers keep the
// f32 AVX2 kernel.
#pragma once

#include "code_kernels.hpp"

namespace atb::turboquant {

// Largest magnitude of a quantized query coordinate against rows of `code_bits`: vpmaddubsw on an
// unsigned byte and a query byte must never saturate, 2 * 255 * 63 < 2^15 for 8-bit codes and
// 2 * 127 * 127 < 2^15 for the rest (codes of at most 4 bits, or table bytes of at most 127).
inline constexpr int int8_query_max(int code_bits) { return code_bits == 8 ? 63 : 127; }

std::unique_ptr<KeyKernel> make_avx2_int8_key_kernel(const tq::Quantizer& quantizer);

// How far the integer kernel's score of `query` (head_size rotated floats, before prepare) against
// `row` may lie from <query, decoded row> computed exactly: the query's rounding to its int8 grid,
// the codebook's centroids rounded to the 8-bit table, and f32 rounding of the block sums.
double int8_score_error_bound(const tq::Quantizer& quantizer, const float* query, const uint8_t* row);

}  // namespace atb::turboquant
