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
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(rows) + index)));
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

// GN (1..4) query rows against one key row; GN is a template argument so the accumulators stay in
// registers.
template <int32_t Dtype, int GN>
inline void dot_rows_block(const float* queries, int d, const void* row, int vector_end, float* out, int out_stride) {
  // Two accumulators per query row (even and odd 8-column steps) halve the FMA dependency chains.
  __m256 even[GN], odd[GN];
  for (int g = 0; g < GN; ++g) even[g] = odd[g] = _mm256_setzero_ps();
  int x = 0;
  for (; x + 16 <= vector_end; x += 16) {
    const __m256 k0 = load8<Dtype>(row, x);
    const __m256 k1 = load8<Dtype>(row, x + 8);
    for (int g = 0; g < GN; ++g) {
      even[g] = _mm256_fmadd_ps(_mm256_loadu_ps(queries + g * d + x), k0, even[g]);
      odd[g] = _mm256_fmadd_ps(_mm256_loadu_ps(queries + g * d + x + 8), k1, odd[g]);
    }
  }
  for (; x < vector_end; x += 8) {
    const __m256 k = load8<Dtype>(row, x);
    for (int g = 0; g < GN; ++g) even[g] = _mm256_fmadd_ps(_mm256_loadu_ps(queries + g * d + x), k, even[g]);
  }
  for (int g = 0; g < GN; ++g) {
    float sum = horizontal_sum(_mm256_add_ps(even[g], odd[g]));
    for (int t = vector_end; t < d; ++t) sum += queries[g * d + t] * load_as_f32(row, Dtype, t);
    out[g * out_stride] = sum;
  }
}

template <int32_t Dtype>
void dot_avx2(const float* queries, int count, const void* const* rows, int n, int d, float* scores) {
  const int vector_end = d & ~7;
  for (int j = 0; j < n; ++j) {
    const void* row = rows[j];
    for (int g0 = 0; g0 < count; g0 += kGroupBlock) {
      const float* q = queries + g0 * d;
      float* out = scores + g0 * n + j;
      switch (count - g0 < kGroupBlock ? count - g0 : kGroupBlock) {
        case 1:
          dot_rows_block<Dtype, 1>(q, d, row, vector_end, out, n);
          break;
        case 2:
          dot_rows_block<Dtype, 2>(q, d, row, vector_end, out, n);
          break;
        case 3:
          dot_rows_block<Dtype, 3>(q, d, row, vector_end, out, n);
          break;
        default:
          dot_rows_block<Dtype, 4>(q, d, row, vector_end, out, n);
          break;
      }
    }
  }
}

// acc rows g < GN += sum_j probs[g][j] * row j, over 8 columns at a time; GN as above.
template <int32_t Dtype, int GN>
inline void accumulate_block(const float* probs, int n, const void* const* rows, int d, int vector_end, float* acc) {
  int x = 0;
  for (; x + 16 <= vector_end; x += 16) {  // 16 columns at once: 2 * GN independent chains
    __m256 lo[GN], hi[GN];
    for (int g = 0; g < GN; ++g) {
      lo[g] = _mm256_loadu_ps(acc + g * d + x);
      hi[g] = _mm256_loadu_ps(acc + g * d + x + 8);
    }
    for (int j = 0; j < n; ++j) {
      const __m256 v0 = load8<Dtype>(rows[j], x);
      const __m256 v1 = load8<Dtype>(rows[j], x + 8);
      for (int g = 0; g < GN; ++g) {
        const __m256 p = _mm256_broadcast_ss(probs + g * n + j);
        lo[g] = _mm256_fmadd_ps(p, v0, lo[g]);
        hi[g] = _mm256_fmadd_ps(p, v1, hi[g]);
      }
    }
    for (int g = 0; g < GN; ++g) {
      _mm256_storeu_ps(acc + g * d + x, lo[g]);
      _mm256_storeu_ps(acc + g * d + x + 8, hi[g]);
    }
  }
  for (; x < vector_end; x += 8) {
    __m256 sums[GN];
    for (int g = 0; g < GN; ++g) sums[g] = _mm256_loadu_ps(acc + g * d + x);
    for (int j = 0; j < n; ++j) {
      const __m256 v = load8<Dtype>(rows[j], x);
      for (int g = 0; g < GN; ++g) sums[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(probs + g * n + j), v, sums[g]);
    }
    for (int g = 0; g < GN; ++g) _mm256_storeu_ps(acc + g * d + x, sums[g]);
  }
  for (int g = 0; g < GN; ++g)
    for (int j = 0; j < n; ++j)
      for (int t = vector_end; t < d; ++t) acc[g * d + t] += probs[g * n + j] * load_as_f32(rows[j], Dtype, t);
}

template <int32_t Dtype>
void accumulate_avx2(const float* probs, int count, const void* const* rows, int n, int d, float* acc) {
  const int vector_end = d & ~7;
  for (int g0 = 0; g0 < count; g0 += kGroupBlock) {
    const float* p = probs + g0 * n;
    float* a = acc + g0 * d;
    switch (count - g0 < kGroupBlock ? count - g0 : kGroupBlock) {
      case 1:
        accumulate_block<Dtype, 1>(p, n, rows, d, vector_end, a);
        break;
      case 2:
        accumulate_block<Dtype, 2>(p, n, rows, d, vector_end, a);
        break;
      case 3:
        accumulate_block<Dtype, 3>(p, n, rows, d, vector_end, a);
        break;
      default:
        accumulate_block<Dtype, 4>(p, n, rows, d, vector_end, a);
        break;
    }
  }
}

template <int32_t Dtype>
void to_f32_avx2(const void* row, int d, float* out) {
  int x = 0;
  for (; x + 8 <= d; x += 8) _mm256_storeu_ps(out + x, load8<Dtype>(row, x));
  for (; x < d; ++x) out[x] = load_as_f32(row, Dtype, x);
}

template <int32_t Dtype>
RowKernels make() {
  return {&dot_avx2<Dtype>, &accumulate_avx2<Dtype>, &to_f32_avx2<Dtype>, "avx2"};
}

}  // namespace

RowKernels avx2_row_kernels(int32_t dtype) {
  switch (dtype) {
    case ATB_DTYPE_F16:
      return make<ATB_DTYPE_F16>();
    case ATB_DTYPE_BF16:
      return make<ATB_DTYPE_BF16>();
    default:
      return make<ATB_DTYPE_F32>();
  }
}

}  // namespace atb::plugin

#else  // built without AVX2 flags (non-x86 targets): the scalar kernels stand in.

namespace atb::plugin {
RowKernels avx2_row_kernels(int32_t dtype) { return scalar_row_kernels(dtype); }
}  // namespace atb::plugin

#endif
