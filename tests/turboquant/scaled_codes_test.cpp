// The scaled-codebook fit: a row's blocks fitted together give what one fit per block gives, and
// the fit is never worse than plain RMS-normalised nearest codes (the header's promise), on both the
// scalar and the AVX2 path.
#include <gtest/gtest.h>

#include <tq/codebooks.hpp>
#include <tq/half_rounding.hpp>
#include <tq/scaled_codes.hpp>
#include <tq/simd.hpp>

#include <atb/half.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "../support/seed.hpp"

namespace tq {
namespace {

// Blocks of mixed scales, some zero, some with one outlier: each block takes its own path.
std::vector<float> mixed_blocks(std::mt19937_64& rng, int count, int block_size) {
  std::normal_distribution<float> normal;
  std::vector<float> x(size_t(count), 0.0f);
  for (int begin = 0; begin < count; begin += block_size) {
    const int kind = int(rng() % 5);
    if (kind == 0) continue;                                                 // a zero block
    const float scale = std::clamp(std::exp(2 * normal(rng)), 1e-2f, 1e3f);  // clear of fp16's edges
    for (int i = begin; i < std::min(count, begin + block_size); ++i) x[size_t(i)] = scale * normal(rng);
    if (kind == 1) x[size_t(begin)] *= 40;
  }
  return x;
}

double squared_error(const float* x, int count, const ScalarCodebook& codebook, const uint8_t* codes, float scale) {
  double error = 0;
  for (int i = 0; i < count; ++i) {
    const double difference = double(x[i]) - double(scale) * codebook.centroids[codes[i]];
    error += difference * difference;
  }
  return error;
}

void expect_blocks_match_single_fits(bool scalar) {
  std::unique_ptr<ScopedScalarCodec> forced = scalar ? std::make_unique<ScopedScalarCodec>() : nullptr;
  std::mt19937_64 rng(atb::test::test_seed());
  for (int bits : {1, 2, 3, 4, 8})
    for (int count : {8, 32, 48, 80, 128, 256})
      for (int block_size : {32, count}) {
        const ScalarCodebook& codebook = unit_normal_codebook(bits);
        for (int trial = 0; trial < 10; ++trial) {
          const int refinements = trial % 3;
          const std::vector<float> x = mixed_blocks(rng, count, block_size);
          std::vector<uint8_t> together(static_cast<size_t>(count)), alone(static_cast<size_t>(count));
          std::vector<uint16_t> scales(size_t((count + block_size - 1) / block_size));
          fit_scaled_blocks(x.data(), count, block_size, codebook, refinements, together.data(), scales.data());
          for (int b = 0, begin = 0; begin < count; ++b, begin += block_size) {
            const int length = std::min(block_size, count - begin);
            const uint16_t alone_scale =
                fit_scaled_codes(x.data() + begin, length, codebook, refinements, alone.data() + begin);
            ASSERT_EQ(scales[size_t(b)], alone_scale) << "bits " << bits << " count " << count << " block " << b;
            // Never worse than the RMS start, up to the fp16 rounding of the stored scale: a relative
            // error of at most 2^-11 in the scale adds up to 2^-22 of the energy at the fitted optimum.
            float rms_codes_scale = 0;
            double energy = 0;
            for (int i = begin; i < begin + length; ++i) energy += double(x[size_t(i)]) * x[size_t(i)];
            if (energy > 0) rms_codes_scale = float(std::sqrt(energy / length));
            std::vector<uint8_t> rms_codes(static_cast<size_t>(length));
            for (int i = 0; i < length; ++i)
              rms_codes[size_t(i)] =
                  uint8_t(codebook.nearest(rms_codes_scale > 0 ? x[size_t(begin + i)] / rms_codes_scale : 0));
            const double fitted = squared_error(x.data() + begin, length, codebook, together.data() + begin,
                                                atb::f16_to_f32(scales[size_t(b)]));
            const double plain = squared_error(x.data() + begin, length, codebook, rms_codes.data(), rms_codes_scale);
            EXPECT_LE(fitted, plain * 1.0001 + energy * 0x1p-22)
                << "bits " << bits << " count " << count << " block " << b;
          }
          ASSERT_EQ(together, alone) << "bits " << bits << " count " << count << " block size " << block_size;
        }
      }
}

TEST(ScaledCodes, BlocksFittedTogetherMatchOneFitPerBlockScalar) { expect_blocks_match_single_fits(true); }

TEST(ScaledCodes, BlocksFittedTogetherMatchOneFitPerBlockSimd) {
  if (!simd_enabled()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the scalar codec runs here";
  expect_blocks_match_single_fits(false);
}

// Many fits per codebook size, AVX2 against scalar: where the rounds' improvements are tiny (5 and 6
// bits), one rounding that differs (an FMA contracted by the compiler, say) flips a decision in about
// one fit in 300.
TEST(ScaledCodes, SimdFitsMatchScalarFitsForEveryCodebookSize) {
  if (!simd_enabled()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: only the scalar codec runs here";
  std::mt19937_64 rng(atb::test::test_seed());
  std::normal_distribution<float> normal;
  for (int bits = 1; bits <= 8; ++bits)
    for (int count : {64, 128}) {
      const ScalarCodebook& codebook = sphere_codebook(count, bits);
      for (int trial = 0; trial < 600; ++trial) {
        std::vector<float> x(static_cast<size_t>(count));
        const float scale = std::exp(2 * normal(rng));
        for (float& v : x) v = scale * normal(rng);
        std::vector<uint8_t> fast(x.size()), slow(x.size());
        const int refinements = trial % 3;
        const uint16_t fast_scale = fit_scaled_codes(x.data(), count, codebook, refinements, fast.data());
        uint16_t slow_scale;
        {
          ScopedScalarCodec scalar;
          slow_scale = fit_scaled_codes(x.data(), count, codebook, refinements, slow.data());
        }
        ASSERT_EQ(fast_scale, slow_scale) << "bits " << bits << " count " << count << " trial " << trial;
        ASSERT_EQ(fast, slow) << "bits " << bits << " count " << count << " trial " << trial;
      }
    }
}

}  // namespace
}  // namespace tq
