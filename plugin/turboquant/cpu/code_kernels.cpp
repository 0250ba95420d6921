#include "code_kernels.hpp"

#include <vector>

#include "avx2_code_kernels.hpp"
#include "avx2_int8_key_kernel.hpp"
#include "avx2_int8_value_kernel.hpp"
#include "scalar_code_kernels.hpp"
#include "turboquant_config.hpp"

namespace atb::turboquant {
namespace {

// The shared row kernels take untyped row pointers.
class UntypedRows {
 public:
  UntypedRows(const uint8_t* const* rows, int n) {
    const void** out = n <= kOnStack ? on_stack_ : (spilled_.resize(size_t(n)), spilled_.data());
    for (int j = 0; j < n; ++j) out[j] = rows[j];
    rows_ = out;
  }
  const void* const* get() const { return rows_; }

 private:
  static constexpr int kOnStack = 64;  // a span of keys (the driver's) fits
  const void* on_stack_[kOnStack];
  std::vector<const void*> spilled_;
  const void* const* rows_;
};

// Plain rows through the shared uncompressed kernels (the reference backend's own).
class PlainKeyKernel final : public KeyKernel {
 public:
  PlainKeyKernel(const tq::Quantizer& quantizer, std::string_view kernel)
      : kernels_(plugin::select_row_kernels(quantizer.format().plain_dtype, kernel)),
        head_size_(quantizer.head_size()) {}
  void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
             float* scores) const override {
    (void)stride;  // plain keys keep no extra floats: the stride is the head size
    kernels_.dot(queries, count, UntypedRows(rows, n).get(), n, head_size_, scores);
  }

 private:
  plugin::RowKernels kernels_;
  int head_size_;
};

class PlainValueKernel final : public ValueKernel {
 public:
  PlainValueKernel(const tq::Quantizer& quantizer, std::string_view kernel)
      : kernels_(plugin::select_row_kernels(quantizer.format().plain_dtype, kernel)),
        head_size_(quantizer.head_size()) {}
  void accumulate(const uint8_t* const* rows, int n, const float* probs, int count, float* acc) const override {
    kernels_.accumulate(probs, count, UntypedRows(rows, n).get(), n, head_size_, acc);
  }

 private:
  plugin::RowKernels kernels_;
  int head_size_;
};

}  // namespace

std::unique_ptr<KeyKernel> make_key_kernel(const tq::Quantizer& quantizer, const std::string& kernel) {
  if (quantizer.format().scheme == tq::Scheme::plain)
    return std::make_unique<PlainKeyKernel>(quantizer, simd_of(kernel));
  if (kernel == "avx2_int8")
    if (auto integer = make_avx2_int8_key_kernel(quantizer)) return integer;
  if (kernel != "scalar")
    if (auto fast = make_avx2_key_kernel(quantizer)) return fast;
  return make_scalar_key_kernel(quantizer);
}

std::unique_ptr<ValueKernel> make_value_kernel(const tq::Quantizer& quantizer, const std::string& kernel) {
  if (quantizer.format().scheme == tq::Scheme::plain)
    return std::make_unique<PlainValueKernel>(quantizer, simd_of(kernel));
  if (kernel == "avx2_int8")
    if (auto integer = make_avx2_int8_value_kernel(quantizer)) return integer;
  if (kernel != "scalar")
    if (auto fast = make_avx2_value_kernel(quantizer)) return fast;
  return make_scalar_value_kernel(quantizer);
}

}  // namespace atb::turboquant
