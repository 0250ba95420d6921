// Horizontal sums shared by the AVX2 kernels (compiled only into files built with -mavx2).
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <algorithm>

namespace atb::turboquant {

// out[i] = the sum of v[i]'s lanes for i < Count: eight at a time by a tree of horizontal adds, which
// costs about one operation per vector instead of five for a reduction each.
template <int Count>
inline void horizontal_sums(const __m256 (&v)[Count], float* out) {
  for (int base = 0; base < Count; base += 8) {
    __m256 x[8];
    for (int i = 0; i < 8; ++i) x[i] = base + i < Count ? v[base + i] : _mm256_setzero_ps();
    const __m256 low = _mm256_hadd_ps(_mm256_hadd_ps(x[0], x[1]), _mm256_hadd_ps(x[2], x[3]));
    const __m256 high = _mm256_hadd_ps(_mm256_hadd_ps(x[4], x[5]), _mm256_hadd_ps(x[6], x[7]));
    const __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(low, high, 0x20), _mm256_permute2f128_ps(low, high, 0x31));
    float lanes[8];
    _mm256_storeu_ps(lanes, sums);
    std::copy_n(lanes, std::min(8, Count - base), out + base);
  }
}

}  // namespace atb::turboquant

#endif
