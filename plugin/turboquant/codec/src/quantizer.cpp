#include "quantizers.hpp"

namespace tq {

atb::Expected<std::unique_ptr<Quantizer>> make_quantizer(const Format& format, int head_size, uint64_t seed) {
  if (std::string problem = check_head_size(format, head_size); !problem.empty())
    return atb::Status::unsupported(std::move(problem));
  switch (format.scheme) {
    case Scheme::affine_block:
      return make_affine_block_quantizer(format, head_size);
    case Scheme::lloyd_max_block:
    case Scheme::turboquant_mse:
      return make_scaled_codebook_quantizer(format, head_size);
    case Scheme::turboquant_prod:
      return make_turboquant_prod_quantizer(format, head_size, seed);
    case Scheme::plain:
      return make_plain_quantizer(format, head_size);
  }
  return atb::Status::internal("unknown scheme of format " + std::string(format.name));
}

void encode_vector(const Quantizer& quantizer, const Rotation& rotation, const float* x, uint8_t* row, float* scratch) {
  if (!is_rotated(quantizer.format())) {
    quantizer.encode(x, row);
    return;
  }
  for (int i = 0; i < quantizer.head_size(); ++i) scratch[i] = x[i];
  rotation.rotate(scratch);
  quantizer.encode(scratch, row);
}

void decode_vector(const Quantizer& quantizer, const Rotation& rotation, const uint8_t* row, float* x) {
  quantizer.decode(row, x);
  if (is_rotated(quantizer.format())) rotation.unrotate(x);
}

}  // namespace tq
