// Compiled with -mavx2 -mfma -mf16c; called only when cpu_has_avx2().
#include <atb/plugin/vector_math.hpp>

#include <algorithm>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace atb::plugin {
namespace {

// exp(x) for x <= 0 (softmax arguments): x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6
// polynomial (Taylor, error < 2e-7 relative on that range), times 2^n built in the exponent bits.
// Below -87.3 the result flushes to 0, as the true value is below f32's normal range.
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 min_x = _mm256_set1_ps(-87.3f);
  const __m256 underflow = _mm256_cmp_ps(x, min_x, _CMP_LT_OQ);
  x = _mm256_max_ps(x, min_x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 split in two for exactness
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
  return _mm256_andnot_ps(underflow, result);
}

inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

float exp_shifted_sum_avx2(float* values, int n, float shift) {
  const __m256 shift_v = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(values + i), shift_v));
    _mm256_storeu_ps(values + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  float total = horizontal_sum(sum);
  if (i < n) {
    alignas(32) float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::copy(values + i, values + n, tail);
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_load_ps(tail), shift_v));
    _mm256_store_ps(tail, e);
    for (int j = 0; j < n - i; ++j) total += (values[i + j] = tail[j]);
  }
  return total;
}

float max_avx2(const float* values, int n) {
  int i = 0;
  float result = values[0];
  if (n >= 8) {
    __m256 m = _mm256_loadu_ps(values);
    for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(values + i));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    result = *std::max_element(lanes, lanes + 8);
  }
  for (; i < n; ++i) result = std::max(result, values[i]);
  return result;
}

void scale_avx2(float* values, int n, float factor) {
  const __m256 f = _mm256_set1_ps(factor);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(values + i, _mm256_mul_ps(_mm256_loadu_ps(values + i), f));
  for (; i < n; ++i) values[i] *= factor;
}

}  // namespace

VectorMath avx2_vector_math() { return {&exp_shifted_sum_avx2, &max_avx2, &scale_avx2}; }

}  // namespace atb::plugin

#else

namespace atb::plugin {
VectorMath avx2_vector_math() { return scalar_vector_math(); }
}  // namespace atb::plugin

#endif
