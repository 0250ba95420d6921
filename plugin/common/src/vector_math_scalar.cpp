#include <atb/plugin/row_kernels.hpp>
#include <atb/plugin/vector_math.hpp>

#include <algorithm>
#include <cmath>

namespace atb::plugin {
namespace {

float exp_shifted_sum_scalar(float* values, int n, float shift) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += (values[i] = std::exp(values[i] - shift));
  return sum;
}

float max_scalar(const float* values, int n) { return *std::max_element(values, values + n); }

void scale_scalar(float* values, int n, float factor) {
  for (int i = 0; i < n; ++i) values[i] *= factor;
}

}  // namespace

VectorMath scalar_vector_math() { return {&exp_shifted_sum_scalar, &max_scalar, &scale_scalar}; }

VectorMath select_vector_math(std::string_view choice) {
  const bool avx2 = cpu_has_avx2() && (choice == "auto" || choice == "avx2");
  return avx2 ? avx2_vector_math() : scalar_vector_math();
}

}  // namespace atb::plugin
