// The codec's AVX2 paths (simd_kernels_avx2.cpp, compiled with -mavx2 -mfma -mf16c).  Each is
// bit-identical to the scalar code it replaces; callers check simd_enabled() first.
#pragma once

#include <tq/codebooks.hpp>

#include <cstdint>

namespace tq::avx2 {

// Unnormalised Walsh–Hadamard transform of n = 2^k >= 8 values, butterflies in the scalar order.
void hadamard(float* x, int n);

// x <- norm * hadamard(signs * x) (signs: nullptr for none), each step rounded as the scalar steps
// are, with the n values held in registers.  Returns false, leaving x alone, unless n is 8, 16, 32,
// 64 or 128.
bool rotate_block(float* x, const float* signs, int n, float norm);

// Codes of `count` (a multiple of 8) values: the number of codebook boundaries <= x[i] * inverse;
// and, in the same pass, cross = sum x[i] * c[code], self = sum c[code]^2 (lane sums).
void nearest_codes(const float* x, int count, float inverse, const ScalarCodebook& codebook, uint8_t* codes,
                   float& cross, float& self);

// Sums in 8 interleaved lanes, combined in the fixed order of lane_sum (scaled_codes.hpp).
float sum_of_squares(const float* x, int count);

// Smallest and largest of `count` (a multiple of 8) values (exact; NaN-free input).
void min_max(const float* x, int count, float& low, float& high);
// x[i] *= factors[i] (the rotation's signs), then, per power-of-two block, nothing else.
void multiply(float* x, const float* factors, int count);
// x[i] *= factor.
void scale(float* x, int count, float factor);

// affine_fields (tq/affine_fields.hpp) of four blocks given their ranges, with F16C conversions.
void affine_fields4(const float* lows, const float* highs, int top, bool is_signed, uint16_t* scale_bits,
                    uint16_t* zero_bits);

// Affine codes of one block: clamp(round_half_even((x - zero) * inverse), low, high).
void affine_codes(const float* x, int count, float zero, float inverse, float low, float high, uint8_t* codes);

// The leading codes of a row packed as pack_codes does, for widths 2, 3, 4 and 8 (whole groups of
// 16); returns how many were packed (0 for other widths), the caller packs the rest.
int pack_codes(const uint8_t* codes, int count, int bits, uint8_t* out);

}  // namespace tq::avx2
