// The scalar kernel of each scheme (plain formats excepted: they use the shared row kernels).
#pragma once

#include "code_kernels.hpp"

namespace atb::turboquant {

std::unique_ptr<KeyKernel> make_scalar_key_kernel(const tq::Quantizer& quantizer);
std::unique_ptr<ValueKernel> make_scalar_value_kernel(const tq::Quantizer& quantizer);

}  // namespace atb::turboquant
