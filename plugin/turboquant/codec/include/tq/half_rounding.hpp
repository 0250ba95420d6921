// fp16 fields of a row: directed rounding (so a block's range stays covered after its scale is
// rounded) and unaligned loads and stores (rows are packed, so fields can sit at any byte).
// The rounding is compiled for the device too (the CUDA encoder); there the plain conversions are
// cuda_fp16's, on the host atb/half.hpp's, both IEEE round-to-nearest-even.
#pragma once

#include <tq/host_device.hpp>

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#else
#include <atb/half.hpp>
#endif

namespace tq {

inline constexpr uint16_t kF16MaxFinite = 0x7bff;  // 65504

TQ_HOST_DEVICE inline uint16_t f16_bits_nearest(float value) {
#if defined(__CUDACC__)
  return __half_as_ushort(__float2half_rn(value));
#else
  return atb::f32_to_f16(value);
#endif
}
TQ_HOST_DEVICE inline float f16_bits_value(uint16_t h) {
#if defined(__CUDACC__)
  return __half2float(__ushort_as_half(h));
#else
  return atb::f16_to_f32(h);
#endif
}

TQ_HOST_DEVICE inline uint16_t f16_next_up(uint16_t h) {
  if (h == 0x8000) return 0x0001;
  return (h & 0x8000) ? uint16_t(h - 1) : uint16_t(h + 1);
}
TQ_HOST_DEVICE inline uint16_t f16_next_down(uint16_t h) {
  if (h == 0x0000) return 0x8001;
  return (h & 0x8000) ? uint16_t(h + 1) : uint16_t(h - 1);
}

// The smallest finite fp16 >= value (clamped to the largest finite one).
TQ_HOST_DEVICE inline uint16_t f16_at_least(float value) {
  if (!(value < 65504.0f)) return kF16MaxFinite;
  uint16_t h = f16_bits_nearest(value);
  if (f16_bits_value(h) < value) h = f16_next_up(h);
  return h;
}
// The largest finite fp16 <= value (clamped to the most negative finite one).
TQ_HOST_DEVICE inline uint16_t f16_at_most(float value) {
  if (!(value > -65504.0f)) return uint16_t(0x8000 | kF16MaxFinite);
  uint16_t h = f16_bits_nearest(value);
  if (f16_bits_value(h) > value) h = f16_next_down(h);
  return h;
}
// Nearest fp16, clamped to the finite range.
TQ_HOST_DEVICE inline uint16_t f16_nearest_finite(float value) {
  if (value >= 65504.0f) return kF16MaxFinite;
  if (value <= -65504.0f) return uint16_t(0x8000 | kF16MaxFinite);
  return f16_bits_nearest(value);
}

inline void store_f16(uint8_t* at, uint16_t h) { std::memcpy(at, &h, 2); }
inline uint16_t load_f16_bits(const uint8_t* at) {
  uint16_t h;
  std::memcpy(&h, at, 2);
  return h;
}
inline float load_f16(const uint8_t* at) { return f16_bits_value(load_f16_bits(at)); }

}  // namespace tq
