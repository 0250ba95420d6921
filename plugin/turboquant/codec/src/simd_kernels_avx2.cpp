// Compiled with -mavx2 -mfma -mf16c; reached only when simd_enabled().
#include "simd_kernels.hpp"

#include <tq/scaled_codes.hpp>

#include <cstring>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace tq::avx2 {
namespace {

// ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)), as combine_lanes.
inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// The 8 int32 codes of one vector, stored as bytes.
inline void store_codes(__m256i codes, uint8_t* out) {
  const __m128i packed16 = _mm_packus_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
  const __m128i packed8 = _mm_packus_epi16(packed16, packed16);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), packed8);
}

}  // namespace

void hadamard(float* x, int n) {
  // Butterflies of span 1, 2, 4 inside each vector, then spans >= 8 across vectors: each output is
  // the same a + b or a - b of the same operands as in the scalar loop.
  for (int i = 0; i < n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    // span 1: (a, b) -> (a + b, a - b) on lane pairs.
    __m256 swapped = _mm256_permute_ps(v, 0xb1);                                     // (x1, x0, x3, x2, ...)
    __m256 sum = _mm256_add_ps(v, swapped), difference = _mm256_sub_ps(swapped, v);  // odd lanes: a - b
    v = _mm256_blend_ps(sum, difference, 0xaa);
    // span 2.
    swapped = _mm256_permute_ps(v, 0x4e);  // (x2, x3, x0, x1, ...)
    sum = _mm256_add_ps(v, swapped);
    difference = _mm256_sub_ps(swapped, v);
    v = _mm256_blend_ps(sum, difference, 0xcc);
    // span 4.
    swapped = _mm256_permute2f128_ps(v, v, 0x01);
    sum = _mm256_add_ps(v, swapped);
    difference = _mm256_sub_ps(swapped, v);
    v = _mm256_blend_ps(sum, difference, 0xf0);
    _mm256_storeu_ps(x + i, v);
  }
  for (int half = 8; half < n; half *= 2)
    for (int start = 0; start < n; start += 2 * half)
      for (int i = start; i < start + half; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + half);
        _mm256_storeu_ps(x + i, _mm256_add_ps(a, b));
        _mm256_storeu_ps(x + i + half, _mm256_sub_ps(a, b));
      }
}

void nearest_codes(const float* x, int count, float inverse, const ScalarCodebook& codebook, uint8_t* codes,
                   float& cross, float& self) {
  const __m256 scale = _mm256_set1_ps(inverse);
  const int boundaries = int(codebook.boundaries.size());
  const float* bounds = codebook.boundaries.data();
  const float* centroids = codebook.centroids.data();
  const __m256 low = _mm256_loadu_ps(codebook.first16), high = _mm256_loadu_ps(codebook.first16 + 8);
  __m256 cross_acc = _mm256_setzero_ps(), self_acc = _mm256_setzero_ps();
  for (int i = 0; i < count; i += 8) {
    const __m256 raw = _mm256_loadu_ps(x + i);
    const __m256 v = _mm256_mul_ps(raw, scale);
    __m256i code = _mm256_setzero_si256();
    __m256 c;
    if (boundaries <= 15) {
      // Count the boundaries <= v (each comparison mask is -1 where true), then look the centroid
      // up with one or two permutes.
      for (int t = 0; t < boundaries; ++t)
        code = _mm256_sub_epi32(code, _mm256_castps_si256(_mm256_cmp_ps(_mm256_set1_ps(bounds[t]), v, _CMP_LE_OQ)));
      c = _mm256_permutevar8x32_ps(low, code);
      if (boundaries > 7)
        c = _mm256_blendv_ps(c, _mm256_permutevar8x32_ps(high, code), _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)));
    } else {
      // Binary search over the ascending boundaries (2^bits - 1 of them): same count.
      for (int step = (boundaries + 1) / 2; step > 0; step /= 2) {
        const __m256i probe = _mm256_add_epi32(code, _mm256_set1_epi32(step - 1));
        const __m256 bound = _mm256_i32gather_ps(bounds, probe, 4);
        const __m256i take = _mm256_castps_si256(_mm256_cmp_ps(bound, v, _CMP_LE_OQ));
        code = _mm256_add_epi32(code, _mm256_and_si256(take, _mm256_set1_epi32(step)));
      }
      c = _mm256_i32gather_ps(centroids, code, 4);
    }
    store_codes(code, codes + i);
    cross_acc = _mm256_fmadd_ps(raw, c, cross_acc);
    self_acc = _mm256_fmadd_ps(c, c, self_acc);
  }
  cross = horizontal_sum(cross_acc);
  self = horizontal_sum(self_acc);
}

float sum_of_squares(const float* x, int count) {
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < count; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  return horizontal_sum(acc);
}

void min_max(const float* x, int count, float& low, float& high) {
  __m256 lo = _mm256_loadu_ps(x), hi = lo;
  for (int i = 8; i < count; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
  }
  float lows[8], highs[8];
  _mm256_storeu_ps(lows, lo);
  _mm256_storeu_ps(highs, hi);
  low = lows[0];
  high = highs[0];
  for (int i = 1; i < 8; ++i) {
    low = lows[i] < low ? lows[i] : low;
    high = highs[i] > high ? highs[i] : high;
  }
}

void multiply(float* x, const float* factors, int count) {
  int i = 0;
  for (; i + 8 <= count; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(factors + i)));
  for (; i < count; ++i) x[i] *= factors[i];
}

void scale(float* x, int count, float factor) {
  const __m256 f = _mm256_set1_ps(factor);
  int i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), f));
  for (; i < count; ++i) x[i] *= factor;
}

void affine_codes(const float* x, int count, float zero, float inverse, float low, float high, uint8_t* codes) {
  const __m256 z = _mm256_set1_ps(zero), s = _mm256_set1_ps(inverse), lo = _mm256_set1_ps(low),
               hi = _mm256_set1_ps(high);
  for (int i = 0; i < count; i += 8) {
    const __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), z), s),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i code = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(q, lo), hi));
    // Two's complement bytes for signed codes: keep the low byte of each lane.
    const __m256i low_bytes = _mm256_and_si256(code, _mm256_set1_epi32(0xff));
    store_codes(low_bytes, codes + i);
  }
}

}  // namespace tq::avx2

#else  // a build without AVX2: simd_enabled() is false there, so these are never reached

#include <cstdlib>

namespace tq::avx2 {
void hadamard(float*, int) { std::abort(); }
void nearest_codes(const float*, int, float, const ScalarCodebook&, uint8_t*, float&, float&) { std::abort(); }
float sum_of_squares(const float*, int) { std::abort(); }
void min_max(const float*, int, float&, float&) { std::abort(); }
void multiply(float*, const float*, int) { std::abort(); }
void scale(float*, int, float) { std::abort(); }
void affine_codes(const float*, int, float, float, float, float, uint8_t*) { std::abort(); }
}  // namespace tq::avx2

#endif
