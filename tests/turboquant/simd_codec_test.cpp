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
      for (int d : {8, 48, 64, 80, 96, 112, 128, 256}) {
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
  for (int d : {8, 16, 48, 64, 80, 96, 128, 256, 1024}) {
    const Rotation rotation(d, kDefaultRotationSeed, 1, 7);
    std::vector<float> fast(static_cast<size_t>(d)), slow(static_cast<size_t>(d));
    for (float& v : fast) v = normal(rng);
    slow = fast;
    rotation.rotate(fast.data());
    {
      ScopedScalarCodec scalar;
      rotation.rotate(slow.data());
    }
    ASSERT_EQ(std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)), 0) << "d=" << d;
  }
}

}  // namespace
}  // namespace tq
