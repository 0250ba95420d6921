#include <atb/engine/kernels.hpp>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace atb::engine {
namespace {

void matmul_rows_scalar(const float* x, const float* w, float* y, int tokens, int in, int out, int o_begin, int o_end) {
  for (int t = 0; t < tokens; ++t)
    for (int o = o_begin; o < o_end; ++o) {
      float sum = 0;
      for (int i = 0; i < in; ++i) sum += x[size_t(t) * size_t(in) + size_t(i)] * w[size_t(o) * size_t(in) + size_t(i)];
      y[size_t(t) * size_t(out) + size_t(o)] = sum;
    }
}

#if defined(__x86_64__)
[[gnu::target("avx2,fma")]] inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// 4 tokens x 4 output rows at a time, 16 accumulators: each loaded vector feeds four FMAs.
[[gnu::target("avx2,fma")]] void matmul_rows_avx2(const float* x, const float* w, float* y, int tokens, int in, int out,
                                                  int o_begin, int o_end) {
  if (in % 8 != 0) return matmul_rows_scalar(x, w, y, tokens, in, out, o_begin, o_end);
  int t = 0;
  for (; t + 4 <= tokens; t += 4) {
    int o = o_begin;
    for (; o + 4 <= o_end; o += 4) {
      __m256 acc[4][4];
      for (auto& row : acc)
        for (auto& a : row) a = _mm256_setzero_ps();
      for (int i = 0; i < in; i += 8) {
        __m256 xv[4], wv[4];
        for (int a = 0; a < 4; ++a) xv[a] = _mm256_loadu_ps(x + size_t(t + a) * size_t(in) + size_t(i));
        for (int b = 0; b < 4; ++b) wv[b] = _mm256_loadu_ps(w + size_t(o + b) * size_t(in) + size_t(i));
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 4; ++b) acc[a][b] = _mm256_fmadd_ps(xv[a], wv[b], acc[a][b]);
      }
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) y[size_t(t + a) * size_t(out) + size_t(o + b)] = horizontal_sum(acc[a][b]);
    }
    for (; o < o_end; ++o)
      for (int a = 0; a < 4; ++a) {
        __m256 acc = _mm256_setzero_ps();
        for (int i = 0; i < in; i += 8)
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + size_t(t + a) * size_t(in) + size_t(i)),
                                _mm256_loadu_ps(w + size_t(o) * size_t(in) + size_t(i)), acc);
        y[size_t(t + a) * size_t(out) + size_t(o)] = horizontal_sum(acc);
      }
  }
  for (; t < tokens; ++t)
    for (int o = o_begin; o < o_end; ++o) {
      __m256 acc = _mm256_setzero_ps();
      for (int i = 0; i < in; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + size_t(t) * size_t(in) + size_t(i)),
                              _mm256_loadu_ps(w + size_t(o) * size_t(in) + size_t(i)), acc);
      y[size_t(t) * size_t(out) + size_t(o)] = horizontal_sum(acc);
    }
}
#endif

bool has_avx2() {
#if defined(__x86_64__)
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
#else
  return false;
#endif
}

}  // namespace

void matmul(const float* x, const float* w, float* y, int tokens, int in, int out, int threads) {
  const auto rows = [&](int o_begin, int o_end) {
#if defined(__x86_64__)
    if (has_avx2()) return matmul_rows_avx2(x, w, y, tokens, in, out, o_begin, o_end);
#endif
    matmul_rows_scalar(x, w, y, tokens, in, out, o_begin, o_end);
  };
  const int workers = std::clamp(threads, 1, std::max(1, out / 16));
  if (workers == 1) return rows(0, out);
  // Output rows split in multiples of 4 so the blocked kernel keeps its tiles.
  const int per_worker = (out / workers + 3) / 4 * 4;
  std::vector<std::jthread> pool;
  for (int k = 1; k < workers; ++k) {
    const int begin = std::min(out, k * per_worker), end = k + 1 == workers ? out : std::min(out, (k + 1) * per_worker);
    if (begin < end) pool.emplace_back([&rows, begin, end] { rows(begin, end); });
  }
  rows(0, std::min(out, per_worker));
}

void rmsnorm(const float* x, const float* weight, float* y, int tokens, int dim) {
  for (int t = 0; t < tokens; ++t) {
    const float* row = x + size_t(t) * size_t(dim);
    double sum = 0;
    for (int i = 0; i < dim; ++i) sum += double(row[i]) * row[i];
    const float scale = float(1.0 / std::sqrt(sum / dim + 1e-5));
    for (int i = 0; i < dim; ++i) y[size_t(t) * size_t(dim) + size_t(i)] = row[i] * scale * weight[i];
  }
}

void rope(float* vector, int heads, int head_size, const float* cos_row, const float* sin_row) {
  for (int h = 0; h < heads; ++h)
    for (int j = 0; j < head_size / 2; ++j) {
      float* pair = vector + size_t(h) * size_t(head_size) + 2 * size_t(j);
      const float a = pair[0], b = pair[1];
      pair[0] = a * cos_row[j] - b * sin_row[j];
      pair[1] = a * sin_row[j] + b * cos_row[j];
    }
}

void swiglu(float* a, const float* b, size_t count) {
  for (size_t i = 0; i < count; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

}  // namespace atb::engine
