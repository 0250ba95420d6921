// Attention over encoded rows without a dequantised cache: a KeyKernel scores rotated queries
// against K rows straight from their codes, a ValueKernel accumulates probabilities times V rows in
// the rotated domain, decoding each row once for every query head of its GQA group.
//
// The scalar kernels here are the oracle of the plugin's faster ones (kernel "scalar" in the config
// selects them).
#pragma once

#include <atb/plugin/row_kernels.hpp>
#include <tq/quantizer.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace atb::turboquant {

class KeyKernel {
 public:
  virtual ~KeyKernel() = default;
  // Floats a prepared query keeps after its head_size rotated coordinates.
  virtual int extra_floats() const { return 0; }
  // `query`: head_size rotated coordinates, then extra_floats() for this kernel to fill.
  virtual void prepare(float* query) const { (void)query; }
  // scores[g * n + j] = <query g, decoded key row j>, row j at rows[j] (the rows of a span of keys lie
  // on several pages), query g at queries + g * stride.
  virtual void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
                     float* scores) const = 0;
};

class ValueKernel {
 public:
  virtual ~ValueKernel() = default;
  // acc[g * head_size + i] += sum_j probs[g * n + j] * decoded value row j [i], row j at rows[j].
  virtual void accumulate(const uint8_t* const* rows, int n, const float* probs, int count, float* acc) const = 0;
};

// `kernel` is "scalar", "avx2" or "avx2_int8" (already resolved from "auto"; avx2_int8 keeps the
// f32 AVX2 kernel for formats the integer one does not cover); plain formats use the shared
// uncompressed row kernels, so an uncompressed layer computes exactly what the reference does.
std::unique_ptr<KeyKernel> make_key_kernel(const tq::Quantizer& quantizer, const std::string& kernel);
std::unique_ptr<ValueKernel> make_value_kernel(const tq::Quantizer& quantizer, const std::string& kernel);

}  // namespace atb::turboquant
