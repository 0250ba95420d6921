// The concrete quantizers, one file each; make_quantizer picks among them.
#pragma once

#include <tq/quantizer.hpp>

namespace tq {

std::unique_ptr<Quantizer> make_affine_block_quantizer(const Format& format, int head_size);
std::unique_ptr<Quantizer> make_scaled_codebook_quantizer(const Format& format, int head_size);
std::unique_ptr<Quantizer> make_turboquant_prod_quantizer(const Format& format, int head_size, uint64_t seed);
std::unique_ptr<Quantizer> make_plain_quantizer(const Format& format, int head_size);

}  // namespace tq
