// f16 / bf16 / f32 rows: the vector as it is, no rotation (for layer-adaptive precision and for
// compressing K only or V only).
#include "quantizers.hpp"

#include <atb/half.hpp>

namespace tq {
namespace {

class PlainQuantizer final : public Quantizer {
 public:
  PlainQuantizer(const Format& format, int head_size) : Quantizer(format, head_size) {}

  void encode(const float* x, uint8_t* row) const override {
    for (int i = 0; i < head_size(); ++i) atb::store_from_f32(row, format().plain_dtype, i, x[i]);
  }
  void decode(const uint8_t* row, float* x) const override {
    for (int i = 0; i < head_size(); ++i) x[i] = atb::load_as_f32(row, format().plain_dtype, i);
  }
};

}  // namespace

std::unique_ptr<Quantizer> make_plain_quantizer(const Format& format, int head_size) {
  return std::make_unique<PlainQuantizer>(format, head_size);
}

}  // namespace tq
