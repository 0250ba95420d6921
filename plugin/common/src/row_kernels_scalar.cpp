#include <atb/half.hpp>
#include <atb/cpu_features.hpp>
#include <atb/plugin/row_kernels.hpp>

namespace atb::plugin {
namespace {

template <int32_t Dtype>
void dot_scalar(const float* queries, int count, const void* const* rows, int n, int d, float* scores) {
  for (int j = 0; j < n; ++j) {
    for (int g = 0; g < count; ++g) {
      float sum = 0.0f;
      for (int x = 0; x < d; ++x) sum += queries[g * d + x] * load_as_f32(rows[j], Dtype, x);
      scores[g * n + j] = sum;
    }
  }
}

template <int32_t Dtype>
void accumulate_scalar(const float* probs, int count, const void* const* rows, int n, int d, float* acc) {
  for (int g = 0; g < count; ++g)
    for (int j = 0; j < n; ++j) {
      const float p = probs[g * n + j];
      for (int x = 0; x < d; ++x) acc[g * d + x] += p * load_as_f32(rows[j], Dtype, x);
    }
}

template <int32_t Dtype>
void to_f32_scalar(const void* row, int d, float* out) {
  for (int x = 0; x < d; ++x) out[x] = load_as_f32(row, Dtype, x);
}

template <int32_t Dtype>
RowKernels make() {
  return {&dot_scalar<Dtype>, &accumulate_scalar<Dtype>, &to_f32_scalar<Dtype>, "scalar"};
}

}  // namespace

RowKernels scalar_row_kernels(int32_t dtype) {
  switch (dtype) {
    case ATB_DTYPE_F16:
      return make<ATB_DTYPE_F16>();
    case ATB_DTYPE_BF16:
      return make<ATB_DTYPE_BF16>();
    default:
      return make<ATB_DTYPE_F32>();
  }
}

bool cpu_has_avx2() { return cpu_has_avx2_fma_f16c(); }

RowKernels select_row_kernels(int32_t dtype, std::string_view choice) {
  const bool avx2 = cpu_has_avx2() && (choice == "auto" || choice == "avx2");
  return avx2 ? avx2_row_kernels(dtype) : scalar_row_kernels(dtype);
}

}  // namespace atb::plugin
