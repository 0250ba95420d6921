// How far a backend's outputs may lie from the f64 oracle (Scenario::compare): |out - f64| <= atol +
// rtol * |f64|.  The oracle reads the inputs exactly as the layer stores them (the dtype's values,
// or the turboquant cache as its codec decodes it); what remains is f32 arithmetic and the final
// rounding of the output to the dtype.
#pragma once

#include <atb/abi.h>

#include <cstdint>

namespace atb::test {

struct Bound {
  double atol, rtol;
};

inline Bound bound_for(int32_t dtype) {
  switch (dtype) {
    // Half an ulp of the output is 2^-11 (f16) and 2^-8 (bf16) relative; outputs are averages of
    // N(0,1) values, so |out| < ~4.
    case ATB_DTYPE_F16:
      return {2e-3, 1e-3};
    case ATB_DTYPE_BF16:
      return {1.6e-2, 8e-3};
    // f32: the logits' own rounding (2^-24 relative per operation) passes to the weights through
    // exp, and with scale 0.5 at head size 256 logits are tens: the reference backend, seed
    // 4421056258851968709 of RandomSchedulesMatchF64Oracle, case 2, erred by 2.6e-5 in an output
    // (past the 2e-5 + 1e-5 |out| its test allowed before); turboquant adds f32 rotations of the
    // queries and outputs.
    default:
      return {5e-5, 2e-5};
  }
}

}  // namespace atb::test
