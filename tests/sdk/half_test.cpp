// The scalar f16/bf16 conversions: exact round trips and round-to-nearest-even.
#include <gtest/gtest.h>

#include <atb/half.hpp>

#include <bit>
#include <cmath>
#include <random>

#include "../support/seed.hpp"

namespace atb {
namespace {

TEST(Half, EveryF16RoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t h = uint16_t(bits);
    const float f = f16_to_f32(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << bits;
  }
}

TEST(Half, EveryBf16RoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float f = bf16_to_f32(uint16_t(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), uint16_t(bits)) << std::hex << bits;
  }
}

// The nearest representable value, ties to the even code, found by brute force over neighbours.
template <class ToF32>
uint16_t nearest(float value, uint16_t candidate, ToF32 to_f32) {
  uint16_t best = candidate;
  for (int delta : {-1, 1}) {
    const uint16_t other = uint16_t(candidate + delta);
    const double d_best = std::abs(double(to_f32(best)) - value), d_other = std::abs(double(to_f32(other)) - value);
    if (d_other < d_best || (d_other == d_best && (other & 1) == 0 && (best & 1) != 0)) best = other;
  }
  return best;
}

TEST(Half, RandomValuesRoundToNearestEven) {
  const uint64_t seed = test::test_seed();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> exponent(-20.0f, 15.9f);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) {
    float value = std::ldexp(mantissa(rng), int(exponent(rng)));
    if (i % 2) value = -value;
    const uint16_t h = f32_to_f16(value);
    if ((h & 0x7fff) < 0x7bff && (h & 0x7fff) > 0) {
      ASSERT_EQ(h, nearest(value, h, f16_to_f32)) << value << " seed " << seed;
    }
    const uint16_t b = f32_to_bf16(value);
    ASSERT_EQ(b, nearest(value, b, bf16_to_f32)) << value << " seed " << seed;
  }
}

TEST(Half, OverflowAndSpecials) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(5.9604644775390625e-8f), 0x0001);
  EXPECT_EQ(f32_to_f16(2.9802322387695312e-8f), 0x0000);  // a tie rounds to even zero
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

}  // namespace
}  // namespace atb
