// One block of the affine K formats: its fp16 scale and zero from the block's range, and a value's
// code under them.  Compiled for the host encoder and the CUDA one alike.
//
// Unlike vllm-metal, the zero point is stored as an fp16 value rather than rounded to a whole
// number of steps, and the scale is rounded up to fp16 after the zero is fixed, so the block's range
// is covered exactly and no code clips: same bytes, lower error.
#pragma once

#include <tq/half_rounding.hpp>
#include <tq/host_device.hpp>

#include <cmath>
#include <cstdint>

namespace tq {

// The largest code: unsigned codes run over [0, top], signed ones over [-top, top].
TQ_HOST_DEVICE inline int affine_top(int bits, bool is_signed) {
  return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
}

struct AffineFields {
  uint16_t scale_bits = 0, zero_bits = 0;
};

// Unsigned codes put the zero at the block's minimum (rounded down), signed ones at its midpoint;
// the scale is then the smallest fp16 whose `top` steps reach the far end.
TQ_HOST_DEVICE inline AffineFields affine_fields(float low, float high, int top, bool is_signed) {
  low += 0.0f;  // -0 becomes +0, whichever zero a min/max pass found first
  high += 0.0f;
  AffineFields fields;
  if (is_signed) {
    fields.zero_bits = f16_nearest_finite(0.5f * (low + high));
    const float zero = f16_bits_value(fields.zero_bits);
    const float above = high - zero, below = zero - low;
    fields.scale_bits = f16_at_least((above < below ? below : above) / float(top));
  } else {
    fields.zero_bits = f16_at_most(low);
    fields.scale_bits = f16_at_least((high - f16_bits_value(fields.zero_bits)) / float(top));
  }
  return fields;
}

// 1 / scale, or 0 for a constant block (every code then 0).
TQ_HOST_DEVICE inline float affine_inverse(const AffineFields& fields) {
  const float scale = f16_bits_value(fields.scale_bits);
  return scale > 0 ? 1.0f / scale : 0.0f;
}

// The code of x, nearest-even and clamped to [low_code, top]; signed codes in two's complement.
// NaN (a block holding an infinity) gives low_code, as the AVX2 clamp does, never int(NaN).
TQ_HOST_DEVICE inline uint8_t affine_code(float x, float zero, float inverse, float low_code, float top) {
  const float q = rintf((x - zero) * inverse);
  return uint8_t(int(!(q >= low_code) ? low_code : (top < q ? top : q)));
}

}  // namespace tq
