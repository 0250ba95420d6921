// Scalar kernels over encoded rows, one per scheme: the plain loops every faster kernel is tested
// against.
#include <tq/bit_packing.hpp>
#include <tq/half_rounding.hpp>

#include <cmath>
#include <vector>

#include "code_kernels.hpp"
#include "scalar_code_kernels.hpp"

namespace atb::turboquant {
namespace {

using tq::RowLayout;

// x ~ zero_b + scale_b * code:  <q, x> = sum_b scale_b * <q_b, codes_b> + zero_b * sum(q_b).
class AffineKeyKernel final : public KeyKernel {
 public:
  explicit AffineKeyKernel(const tq::Quantizer& quantizer)
      : layout_(quantizer.layout()), signed_codes_(quantizer.format().signed_codes) {}
  int extra_floats() const override { return layout_.blocks; }
  void prepare(float* query) const override {
    for (int b = 0; b < layout_.blocks; ++b) {
      float sum = 0;
      for (int i = b * layout_.block_size; i < std::min(layout_.head_size, (b + 1) * layout_.block_size); ++i)
        sum += query[i];
      query[layout_.head_size + b] = sum;
    }
  }
  void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
             float* scores) const override {
    uint8_t codes[tq::kMaxRotationSize];
    for (int j = 0; j < n; ++j) {
      const uint8_t* row = rows[j];
      tq::unpack_codes(row + layout_.codes_offset, layout_.head_size, layout_.code_bits, codes);
      for (int g = 0; g < count; ++g) {
        const float* q = queries + size_t(g) * size_t(stride);
        float total = 0;
        for (int b = 0; b < layout_.blocks; ++b) {
          const uint8_t* meta = row + layout_.scales_offset + 4 * size_t(b);
          float dot = 0;
          for (int i = b * layout_.block_size; i < std::min(layout_.head_size, (b + 1) * layout_.block_size); ++i)
            dot += q[i] * (signed_codes_ ? float(int8_t(codes[i])) : float(codes[i]));
          total += tq::load_f16(meta) * dot + tq::load_f16(meta + 2) * q[layout_.head_size + b];
        }
        scores[size_t(g) * size_t(n) + size_t(j)] = total;
      }
    }
  }

 private:
  RowLayout layout_;
  bool signed_codes_;
};

// x ~ scale_b * centroid[code]:  <q, x> = sum_b scale_b * sum_i q_i centroid[code_i].
class CodebookKeyKernel final : public KeyKernel {
 public:
  explicit CodebookKeyKernel(const tq::Quantizer& quantizer)
      : layout_(quantizer.layout()), centroids_(quantizer.codebook()->centroids.data()) {}
  void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
             float* scores) const override {
    uint8_t codes[tq::kMaxRotationSize];
    for (int j = 0; j < n; ++j) {
      const uint8_t* row = rows[j];
      tq::unpack_codes(row + layout_.codes_offset, layout_.head_size, layout_.code_bits, codes);
      for (int g = 0; g < count; ++g) {
        const float* q = queries + size_t(g) * size_t(stride);
        float total = 0;
        for (int b = 0; b < layout_.blocks; ++b) {
          float dot = 0;
          for (int i = b * layout_.block_size; i < std::min(layout_.head_size, (b + 1) * layout_.block_size); ++i)
            dot += q[i] * centroids_[codes[i]];
          total += tq::load_f16(row + layout_.scales_offset + 2 * size_t(b)) * dot;
        }
        scores[size_t(g) * size_t(n) + size_t(j)] = total;
      }
    }
  }

 private:
  RowLayout layout_;
  const float* centroids_;
};

// TurboQuant-prod: <q, x> = s * <q, centroids> + ||r|| sqrt(pi/2)/d * <S q, signs>; S q is computed
// once per query in prepare().
class ProdKeyKernel final : public KeyKernel {
 public:
  explicit ProdKeyKernel(const tq::Quantizer& quantizer)
      : layout_(quantizer.layout()),
        centroids_(quantizer.codebook()->centroids.data()),
        sketch_(quantizer.sketch_matrix()) {}
  int extra_floats() const override { return layout_.head_size; }
  void prepare(float* query) const override {
    const int d = layout_.head_size;
    for (int k = 0; k < d; ++k) {
      float sum = 0;
      for (int i = 0; i < d; ++i) sum += sketch_[size_t(k) * size_t(d) + size_t(i)] * query[i];
      query[d + k] = sum;
    }
  }
  void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
             float* scores) const override {
    const int d = layout_.head_size;
    uint8_t codes[tq::kMaxRotationSize], signs[tq::kMaxRotationSize];
    const float factor = float(std::sqrt(M_PI / 2) / d);
    for (int j = 0; j < n; ++j) {
      const uint8_t* row = rows[j];
      tq::unpack_codes(row + layout_.codes_offset, d, layout_.code_bits, codes);
      tq::unpack_codes(row + layout_.sketch_offset, d, 1, signs);
      const float scale = tq::load_f16(row + layout_.scales_offset);
      const float weight = tq::load_f16(row + layout_.residual_norm_offset) * factor;
      for (int g = 0; g < count; ++g) {
        const float* q = queries + size_t(g) * size_t(stride);
        float mse = 0, sketch = 0;
        for (int i = 0; i < d; ++i) mse += q[i] * centroids_[codes[i]];
        for (int k = 0; k < d; ++k) sketch += signs[k] ? q[d + k] : -q[d + k];
        scores[size_t(g) * size_t(n) + size_t(j)] = scale * mse + weight * sketch;
      }
    }
  }

 private:
  RowLayout layout_;
  const float* centroids_;
  const float* sketch_;
};

// Each row decoded once by the codec's own decoder, then added to every query head's accumulator.
class DecodingValueKernel final : public ValueKernel {
 public:
  explicit DecodingValueKernel(const tq::Quantizer& quantizer) : quantizer_(quantizer) {}
  void accumulate(const uint8_t* const* rows, int n, const float* probs, int count, float* acc) const override {
    const int d = quantizer_.head_size();
    float decoded[tq::kMaxRotationSize];
    for (int j = 0; j < n; ++j) {
      quantizer_.decode(rows[j], decoded);
      for (int g = 0; g < count; ++g) {
        const float p = probs[size_t(g) * size_t(n) + size_t(j)];
        float* out = acc + size_t(g) * size_t(d);
        for (int i = 0; i < d; ++i) out[i] += p * decoded[i];
      }
    }
  }

 private:
  const tq::Quantizer& quantizer_;
};

}  // namespace

std::unique_ptr<KeyKernel> make_scalar_key_kernel(const tq::Quantizer& quantizer) {
  switch (quantizer.format().scheme) {
    case tq::Scheme::affine_block:
      return std::make_unique<AffineKeyKernel>(quantizer);
    case tq::Scheme::lloyd_max_block:
    case tq::Scheme::turboquant_mse:
      return std::make_unique<CodebookKeyKernel>(quantizer);
    case tq::Scheme::turboquant_prod:
      return std::make_unique<ProdKeyKernel>(quantizer);
    case tq::Scheme::plain:
      break;
  }
  return nullptr;
}

std::unique_ptr<ValueKernel> make_scalar_value_kernel(const tq::Quantizer& quantizer) {
  return std::make_unique<DecodingValueKernel>(quantizer);
}

}  // namespace atb::turboquant
