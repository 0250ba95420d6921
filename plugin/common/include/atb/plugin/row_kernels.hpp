// Dot products and weighted sums over rows of uncompressed K/V (f32, f16 or bf16) for a GQA group of
// f32 query rows.  A scalar version (the oracle) and an AVX2+FMA+F16C version, picked at run time.
#pragma once

#include <cstdint>
#include <string_view>

namespace atb::plugin {

struct RowKernels {
  // scores[g * n + j] = sum_x queries[g * d + x] * rows[j][x], g < count, j < n (row j at rows[j]: the
  // rows of a span of keys lie on several pages).
  void (*dot)(const float* queries, int count, const void* const* rows, int n, int d, float* scores);
  // acc[g * d + x] += sum_j probs[g * n + j] * rows[j][x].
  void (*accumulate)(const float* probs, int count, const void* const* rows, int n, int d, float* acc);
  // out[x] = row[x] as f32, x < d (the conversion is exact for every dtype).
  void (*to_f32)(const void* row, int d, float* out);
  const char* name;
};

RowKernels scalar_row_kernels(int32_t dtype);
RowKernels avx2_row_kernels(int32_t dtype);

// True when this CPU runs AVX2, FMA and F16C.
bool cpu_has_avx2();

// "auto" (AVX2 when the CPU has it), "scalar" or "avx2"; an unavailable choice falls back to scalar.
RowKernels select_row_kernels(int32_t dtype, std::string_view choice);

}  // namespace atb::plugin
