// The codec's AVX2 encode paths against its scalar reference: bit-identical rows and rotations for
// every format and head size, on fresh random vectors.
#include <gtest/gtest.h>

#include <tq/quantizer.hpp>
#include <tq/simd.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "../support/seed.hpp"

namespace tq {
namespace {

TEST(SimdCodec, EncodeIsBitIdenticalToTheScalarReference) {
  if (!simd_enabled()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the scalar codec runs here";
  std::mt19937_64 rng(atb::test::test_seed());
  std::normal_distribution<float> normal;
  for (Role role : {Role::key, Role::value})
    for (const Format& format : formats_for(role))
      for (int d : {8, 32, 48, 64, 80, 96, 112, 128, 256}) {
        auto quantizer = std::move(*make_quantizer(format, d));
        const Rotation rotation(d, kDefaultRotationSeed, 5, 3);
        std::vector<float> x(static_cast<size_t>(d)), scratch(static_cast<size_t>(d));
        std::vector<uint8_t> fast(quantizer->row_bytes()), slow(quantizer->row_bytes());
        for (int trial = 0; trial < 30; ++trial) {
          const float scale = std::exp(2 * normal(rng));
          for (float& v : x) v = scale * normal(rng);
          if (trial % 5 == 0) x[size_t(trial) % size_t(d)] *= 30;  // an outlier
          encode_vector(*quantizer, rotation, x.data(), fast.data(), scratch.data());
          {
            ScopedScalarCodec scalar;
            encode_vector(*quantizer, rotation, x.data(), slow.data(), scratch.data());
          }
          ASSERT_EQ(std::memcmp(fast.data(), slow.data(), fast.size()), 0)
              << format.name << " d=" << d << " trial " << trial;
        }
      }
}

TEST(SimdCodec, RotationIsBitIdenticalToTheScalarReference) {
  if (!simd_enabled()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the scalar codec runs here";
  std::mt19937_64 rng(atb::test::test_seed());
  std::normal_distribution<float> normal;
  for (int d : {8, 16, 32, 40, 48, 64, 80, 96, 128, 200, 256, 1024}) {
    const Rotation rotation(d, kDefaultRotationSeed, 1, 7);
    std::vector<float> fast(static_cast<size_t>(d)), slow(static_cast<size_t>(d));
    for (int trial = 0; trial < 4; ++trial) {
      for (float& v : fast) v = std::exp(normal(rng)) * normal(rng);
      slow = fast;
      rotation.rotate(fast.data());
      {
        ScopedScalarCodec scalar;
        rotation.rotate(slow.data());
      }
      ASSERT_EQ(std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)), 0) << "rotate, d=" << d;
      rotation.unrotate(fast.data());
      {
        ScopedScalarCodec scalar;
        rotation.unrotate(slow.data());
      }
      ASSERT_EQ(std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)), 0) << "unrotate, d=" << d;
    }
  }
}

// Blocks whose fp16 scale and zero sit at the edges of fp16 (zeros, -0, constants, values past
// 65504, subnormal ranges, infinities): the AVX2 fields (F16C, four blocks at a time) and codes
// match the scalar ones.
TEST(SimdCodec, AffineFieldsAtTheEdgesOfFp16AreBitIdentical) {
  if (!simd_enabled()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the scalar codec runs here";
  std::mt19937_64 rng(atb::test::test_seed());
  std::normal_distribution<float> normal;
  const float magnitudes[] = {0.0f, 1e-8f, 3e-6f, 6e-5f, 1.0f, 3e4f, 65504.0f, 65519.0f, 7e4f, 1e6f, 1e30f, INFINITY};
  for (const Format& format : formats_for(Role::key)) {
    if (format.scheme != Scheme::affine_block) continue;
    for (int d : {64, 128, 256}) {
      auto quantizer = std::move(*make_quantizer(format, d));
      std::vector<float> x(static_cast<size_t>(d));
      std::vector<uint8_t> fast(quantizer->row_bytes()), slow(quantizer->row_bytes());
      for (int trial = 0; trial < 200; ++trial) {
        for (size_t begin = 0; begin < x.size(); begin += 32) {  // each block its own kind
          const float magnitude = magnitudes[rng() % std::size(magnitudes)];
          const int kind = int(rng() % 4);
          for (size_t i = begin; i < begin + 32 && i < x.size(); ++i)
            x[i] = kind == 0   ? magnitude                                  // constant
                   : kind == 1 ? -0.0f                                      // negative zeros
                   : kind == 2 ? magnitude * normal(rng)                    // centred
                               : magnitude * (1.0f + 0.01f * normal(rng));  // narrow, off zero
        }
        quantizer->encode(x.data(), fast.data());
        {
          ScopedScalarCodec scalar;
          quantizer->encode(x.data(), slow.data());
        }
        ASSERT_EQ(std::memcmp(fast.data(), slow.data(), fast.size()), 0)
            << format.name << " d=" << d << " trial " << trial;
      }
    }
  }
}

}  // namespace
}  // namespace tq
