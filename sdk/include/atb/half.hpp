// Scalar IEEE binary16 and bfloat16 conversions (round to nearest even), used as the portable path
// and as the oracle for vectorised conversions.
#pragma once

#include <atb/abi.h>

#include <bit>
#include <cstdint>
#include <cstring>

namespace atb {

inline float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(uint32_t(bits) << 16); }

inline uint16_t f32_to_bf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal: value = mantissa * 2^-24.
  float magnitude = float(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

inline uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                                  // below the normal range
    // Subnormal or zero: round abs * 2^24 to an integer, nearest even.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // exact (power of two)
    uint32_t integer = uint32_t(scaled);
    const float remainder = scaled - float(integer);
    if (remainder > 0.5f || (remainder == 0.5f && (integer & 1u))) ++integer;
    return uint16_t(sign | integer);
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);  // round mantissa to 10 bits
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

inline size_t dtype_size(int32_t dtype) {
  switch (dtype) {
    case ATB_DTYPE_F32:
      return 4;
    case ATB_DTYPE_F16:
    case ATB_DTYPE_BF16:
      return 2;
    default:
      return 0;
  }
}

inline const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case ATB_DTYPE_F32:
      return "f32";
    case ATB_DTYPE_F16:
      return "f16";
    case ATB_DTYPE_BF16:
      return "bf16";
    default:
      return "unknown";
  }
}

// Element `index` of a buffer of `dtype`, as f32.
inline float load_as_f32(const void* data, int32_t dtype, int64_t index) {
  switch (dtype) {
    case ATB_DTYPE_F32:
      return static_cast<const float*>(data)[index];
    case ATB_DTYPE_F16:
      return f16_to_f32(static_cast<const uint16_t*>(data)[index]);
    default:
      return bf16_to_f32(static_cast<const uint16_t*>(data)[index]);
  }
}

inline void store_from_f32(void* data, int32_t dtype, int64_t index, float value) {
  switch (dtype) {
    case ATB_DTYPE_F32:
      static_cast<float*>(data)[index] = value;
      break;
    case ATB_DTYPE_F16:
      static_cast<uint16_t*>(data)[index] = f32_to_f16(value);
      break;
    default:
      static_cast<uint16_t*>(data)[index] = f32_to_bf16(value);
      break;
  }
}

// value rounded to what `dtype` can hold (identity for f32).
inline float round_to_dtype(float value, int32_t dtype) {
  switch (dtype) {
    case ATB_DTYPE_F16:
      return f16_to_f32(f32_to_f16(value));
    case ATB_DTYPE_BF16:
      return bf16_to_f32(f32_to_bf16(value));
    default:
      return value;
  }
}

}  // namespace atb
