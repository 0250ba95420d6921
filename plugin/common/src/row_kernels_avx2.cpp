// Compiled with -mavx2 -mfma -mf16c; called only when cpu_has_avx2().
#include <atb/half.hpp>
#include <atb/plugin/row_kernels.hpp>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace atb::plugin {
namespace {

template <int32_t Dtype>
inline __m256 load8(const void* rows, int64_t index) {
  if constexpr (Dtype == ATB_DTYPE_F32) {
    return _mm256_loadu_ps(static_cast<const float*>(rows) + index);
  } else if constexpr (Dtype == ATB_DTYPE_F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(rows) + index)));
  } else {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(rows) + index));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
}

inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

constexpr int kGroupBlock = 4;

template <int32_t Dtype>
void dot_avx2(const float* queries, int count, const void* rows, int n, int d, float* scores) {
  const int vector_end = d & ~7;
  for (int j = 0; j < n; ++j) {
    const int64_t row = int64_t(j) * d;
    for (int g0 = 0; g0 < count; g0 += kGroupBlock) {
      const int gn = count - g0 < kGroupBlock ? count - g0 : kGroupBlock;
      __m256 acc[kGroupBlock] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int x = 0; x < vector_end; x += 8) {
        const __m256 k = load8<Dtype>(rows, row + x);
        for (int g = 0; g < gn; ++g)
          acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(queries + (g0 + g) * d + x), k, acc[g]);
      }
      for (int g = 0; g < gn; ++g) {
        float sum = horizontal_sum(acc[g]);
        for (int x = vector_end; x < d; ++x) sum += queries[(g0 + g) * d + x] * load_as_f32(rows, Dtype, row + x);
        scores[(g0 + g) * n + j] = sum;
      }
    }
  }
}

template <int32_t Dtype>
void accumulate_avx2(const float* probs, int count, const void* rows, int n, int d, float* acc) {
  const int vector_end = d & ~7;
  for (int g0 = 0; g0 < count; g0 += kGroupBlock) {
    const int gn = count - g0 < kGroupBlock ? count - g0 : kGroupBlock;
    for (int x = 0; x < vector_end; x += 8) {
      __m256 sums[kGroupBlock];
      for (int g = 0; g < gn; ++g) sums[g] = _mm256_loadu_ps(acc + (g0 + g) * d + x);
      for (int j = 0; j < n; ++j) {
        const __m256 v = load8<Dtype>(rows, int64_t(j) * d + x);
        for (int g = 0; g < gn; ++g) sums[g] = _mm256_fmadd_ps(_mm256_set1_ps(probs[(g0 + g) * n + j]), v, sums[g]);
      }
      for (int g = 0; g < gn; ++g) _mm256_storeu_ps(acc + (g0 + g) * d + x, sums[g]);
    }
    for (int g = g0; g < g0 + gn; ++g)
      for (int j = 0; j < n; ++j)
        for (int x = vector_end; x < d; ++x)
          acc[g * d + x] += probs[g * n + j] * load_as_f32(rows, Dtype, int64_t(j) * d + x);
  }
}

template <int32_t Dtype>
RowKernels make() {
  return {&dot_avx2<Dtype>, &accumulate_avx2<Dtype>, "avx2"};
}

}  // namespace

RowKernels avx2_row_kernels(int32_t dtype) {
  switch (dtype) {
    case ATB_DTYPE_F16: return make<ATB_DTYPE_F16>();
    case ATB_DTYPE_BF16: return make<ATB_DTYPE_BF16>();
    default: return make<ATB_DTYPE_F32>();
  }
}

}  // namespace atb::plugin

#else  // built without AVX2 flags (non-x86 targets): the scalar kernels stand in.

namespace atb::plugin {
RowKernels avx2_row_kernels(int32_t dtype) { return scalar_row_kernels(dtype); }
}  // namespace atb::plugin

#endif
