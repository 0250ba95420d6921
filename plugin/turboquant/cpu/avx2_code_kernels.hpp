// AVX2 kernels for the affine and codebook schemes (nullptr for a format they do not cover, or in a
// build without AVX2: callers then use the scalar kernels).
#pragma once

#include "code_kernels.hpp"

namespace atb::turboquant {

std::unique_ptr<KeyKernel> make_avx2_key_kernel(const tq::Quantizer& quantizer);
std::unique_ptr<ValueKernel> make_avx2_value_kernel(const tq::Quantizer& quantizer);

}  // namespace atb::turboquant
