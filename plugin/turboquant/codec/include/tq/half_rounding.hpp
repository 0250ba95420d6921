// fp16 fields of a row: directed rounding (so a block's range stays covered after its scale is
// rounded) and unaligned loads and stores (rows are packed, so fields can sit at any byte).
#pragma once

#include <atb/half.hpp>

#include <cstdint>
#include <cstring>

namespace tq {

inline constexpr uint16_t kF16MaxFinite = 0x7bff;  // 65504

inline uint16_t f16_next_up(uint16_t h) {
  if (h == 0x8000) return 0x0001;
  return (h & 0x8000) ? uint16_t(h - 1) : uint16_t(h + 1);
}
inline uint16_t f16_next_down(uint16_t h) {
  if (h == 0x0000) return 0x8001;
  return (h & 0x8000) ? uint16_t(h + 1) : uint16_t(h - 1);
}

// The smallest finite fp16 >= value (clamped to the largest finite one).
inline uint16_t f16_at_least(float value) {
  if (!(value < 65504.0f)) return kF16MaxFinite;
  uint16_t h = atb::f32_to_f16(value);
  if (atb::f16_to_f32(h) < value) h = f16_next_up(h);
  return h;
}
// The largest finite fp16 <= value (clamped to the most negative finite one).
inline uint16_t f16_at_most(float value) {
  if (!(value > -65504.0f)) return uint16_t(0x8000 | kF16MaxFinite);
  uint16_t h = atb::f32_to_f16(value);
  if (atb::f16_to_f32(h) > value) h = f16_next_down(h);
  return h;
}
// Nearest fp16, clamped to the finite range.
inline uint16_t f16_nearest_finite(float value) {
  if (value >= 65504.0f) return kF16MaxFinite;
  if (value <= -65504.0f) return uint16_t(0x8000 | kF16MaxFinite);
  return atb::f32_to_f16(value);
}

inline void store_f16(uint8_t* at, uint16_t h) { std::memcpy(at, &h, 2); }
inline uint16_t load_f16_bits(const uint8_t* at) {
  uint16_t h;
  std::memcpy(&h, at, 2);
  return h;
}
inline float load_f16(const uint8_t* at) { return atb::f16_to_f32(load_f16_bits(at)); }

}  // namespace tq
