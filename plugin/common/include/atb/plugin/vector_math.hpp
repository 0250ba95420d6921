// The softmax arithmetic of the attention driver over short f32 arrays: a scalar version (the
// oracle, std::exp) and an AVX2+FMA version (a polynomial exp, within 2e-7 relative), picked at
// run time like the row kernels.
#pragma once

#include <string_view>

namespace atb::plugin {

struct VectorMath {
  // values[i] = exp(values[i] - shift); returns their sum.
  float (*exp_shifted_sum)(float* values, int n, float shift);
  // The largest of values[0..n), n >= 1.
  float (*max)(const float* values, int n);
  // values[i] *= factor.
  void (*scale)(float* values, int n, float factor);
};

VectorMath scalar_vector_math();
VectorMath avx2_vector_math();

// "auto" (AVX2 when the CPU has it), "scalar" or "avx2"; an unavailable choice falls back to scalar.
VectorMath select_vector_math(std::string_view choice);

}  // namespace atb::plugin
