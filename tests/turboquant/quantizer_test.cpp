// The scalar reference encoders and decoders of every format: exact byte footprint, error bounds
// per scheme, the MSE distortion against theory, and the unbiased inner products of TurboQuant-prod.
#include <gtest/gtest.h>

#include <tq/codebooks.hpp>
#include <tq/half_rounding.hpp>
#include <tq/quantizer.hpp>

#include <atb/half.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "../support/seed.hpp"

namespace tq {
namespace {

constexpr int kHeadSizes[] = {8, 48, 64, 80, 96, 112, 128, 256};

std::unique_ptr<Quantizer> quantizer(Role role, std::string_view name, int head_size,
                                     uint64_t seed = kDefaultRotationSeed) {
  auto made = make_quantizer(*find_format(role, name), head_size, seed);
  EXPECT_TRUE(made) << made.error().message();
  return std::move(*made);
}

// Random vectors of varied scale, offset and shape, so blocks see very different ranges.
std::vector<float> random_vector(std::mt19937_64& rng, int d) {
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform(-1, 1);
  const float scale = std::exp(3 * uniform(rng));
  const float offset = uniform(rng) < 0 ? 0 : 2 * uniform(rng);
  std::vector<float> x(static_cast<size_t>(d), 0.0f);
  for (float& v : x) v = offset + scale * normal(rng);
  if (uniform(rng) > 0.5f) x[size_t(rng() % size_t(d))] *= 20;  // an outlier
  return x;
}

double squared_error(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return sum;
}

TEST(Quantizer, EncodeWritesEveryByteOfItsRowAndNothingElse) {
  std::mt19937_64 rng(atb::test::test_seed());
  constexpr size_t kGuard = 64;
  for (Role role : {Role::key, Role::value})
    for (const Format& format : formats_for(role))
      for (int d : kHeadSizes) {
        const auto q = quantizer(role, format.name, d);
        const auto x = random_vector(rng, d);
        std::vector<uint8_t> zeros(q->row_bytes() + 2 * kGuard, 0x00), ones(q->row_bytes() + 2 * kGuard, 0xff);
        q->encode(x.data(), zeros.data() + kGuard);
        q->encode(x.data(), ones.data() + kGuard);
        for (size_t i = 0; i < kGuard; ++i) {
          ASSERT_EQ(zeros[i], 0x00) << format.name << " d=" << d << " wrote before its row";
          ASSERT_EQ(zeros[kGuard + q->row_bytes() + i], 0x00) << format.name << " d=" << d << " wrote past its row";
          ASSERT_EQ(ones[kGuard + q->row_bytes() + i], 0xff) << format.name << " d=" << d;
        }
        // Same row whatever the buffer held before: every byte of it was written.
        ASSERT_TRUE(std::equal(zeros.begin() + kGuard, zeros.end() - kGuard, ones.begin() + kGuard))
            << format.name << " d=" << d << " left a byte of its row unwritten";
      }
}

TEST(Quantizer, ZeroVectorsDecodeToZero) {
  for (Role role : {Role::key, Role::value})
    for (const Format& format : formats_for(role)) {
      const auto q = quantizer(role, format.name, 64);
      std::vector<float> x(64, 0.0f), y(64, 1.0f);
      std::vector<uint8_t> row(q->row_bytes());
      q->encode(x.data(), row.data());
      q->decode(row.data(), y.data());
      for (float v : y) ASSERT_EQ(v, 0.0f) << format.name;
    }
}

TEST(Quantizer, AffineErrorIsAtMostHalfAStepOfItsBlock) {
  std::mt19937_64 rng(atb::test::test_seed());
  for (const Format& format : formats_for(Role::key)) {
    if (format.scheme != Scheme::affine_block) continue;
    for (int d : kHeadSizes)
      for (int trial = 0; trial < 20; ++trial) {
        const auto q = quantizer(Role::key, format.name, d);
        const auto x = random_vector(rng, d);
        std::vector<uint8_t> row(q->row_bytes());
        std::vector<float> y(static_cast<size_t>(d), 0.0f);
        q->encode(x.data(), row.data());
        q->decode(row.data(), y.data());
        for (int i = 0; i < d; ++i) {
          const float step = load_f16(row.data() + q->layout().scales_offset + 4 * size_t(i / 32));
          ASSERT_LE(std::abs(x[size_t(i)] - y[size_t(i)]), 0.5f * step * (1 + 1e-3f) + 1e-6f * std::abs(x[size_t(i)]))
              << format.name << " d=" << d << " i=" << i;
        }
      }
  }
}

TEST(Quantizer, AffineCodesCoverTheFullRangeOfEachBlock) {
  // The block's extremes reconstruct to within half a step: the fp16 zero and scale never clip.
  const auto q = quantizer(Role::key, "uint2", 32);
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = -3.3f + 0.21f * float(i);
  std::vector<uint8_t> row(q->row_bytes());
  std::vector<float> y(32);
  q->encode(x.data(), row.data());
  q->decode(row.data(), y.data());
  const float step = load_f16(row.data() + q->layout().scales_offset);
  EXPECT_LE(std::abs(y[0] - x[0]), 0.5f * step);
  EXPECT_LE(std::abs(y[31] - x[31]), 0.5f * step * 1.001f);
}

// Plain RMS-normalised nearest-centroid quantisation of one block: what vllm-metal's V does.
double rms_quantisation_error(const float* x, int count, const ScalarCodebook& book) {
  double energy = 0;
  for (int i = 0; i < count; ++i) energy += double(x[i]) * x[i];
  const double rms = std::sqrt(energy / count);
  double error = 0;
  for (int i = 0; i < count; ++i) {
    const double r = rms * book.centroids[size_t(book.nearest(float(x[i] / rms)))];
    error += (x[i] - r) * (x[i] - r);
  }
  return error;
}

TEST(Quantizer, LloydMaxBlockIsNeverWorseThanRmsNormalisedQuantisation) {
  std::mt19937_64 rng(atb::test::test_seed());
  for (const Format& format : formats_for(Role::value)) {
    if (format.scheme != Scheme::lloyd_max_block) continue;
    const ScalarCodebook& book = unit_normal_codebook(format.bits);
    for (int d : {32, 64, 80, 128}) {
      const auto q = quantizer(Role::value, format.name, d);
      for (int trial = 0; trial < 50; ++trial) {
        const auto x = random_vector(rng, d);
        std::vector<uint8_t> row(q->row_bytes());
        std::vector<float> y(static_cast<size_t>(d));
        q->encode(x.data(), row.data());
        q->decode(row.data(), y.data());
        double baseline = 0, energy = 0;
        for (int begin = 0; begin < d; begin += 32)
          baseline += rms_quantisation_error(x.data() + begin, std::min(32, d - begin), book);
        for (float v : x) energy += double(v) * v;
        // Slack: the stored scale is rounded to fp16 (relative 2^-11).
        EXPECT_LE(squared_error(x, y), baseline + 2e-3 * energy + 1e-12) << format.name << " d=" << d;
      }
    }
  }
}

TEST(Quantizer, TurboQuantMseDistortionPerBitMatchesTheLloydMaxFigure) {
  // Per coordinate, for vectors normalised to unit RMS, the error is at most the codebook's
  // distortion (the least-squares scale can only lower it) and not far below it.
  std::mt19937_64 rng(atb::test::test_seed());
  std::normal_distribution<float> normal;
  for (int d : {64, 80, 128}) {
    const Rotation rotation(d, kDefaultRotationSeed, 0, 0);
    for (int bits = 1; bits <= 8; ++bits) {
      const auto q = quantizer(Role::key, "tq" + std::to_string(bits), d);
      double error = 0, energy = 0;
      std::vector<float> x(static_cast<size_t>(d)), y(static_cast<size_t>(d)), scratch(static_cast<size_t>(d));
      std::vector<uint8_t> row(q->row_bytes());
      for (int trial = 0; trial < 400; ++trial) {
        for (float& v : x) v = normal(rng);
        encode_vector(*q, rotation, x.data(), row.data(), scratch.data());
        decode_vector(*q, rotation, row.data(), y.data());
        error += squared_error(x, y);
        for (float v : x) energy += double(v) * v;
      }
      const double normalised = error / energy;
      const double theory = sphere_codebook(d, bits).distortion;
      EXPECT_LE(normalised, theory * 1.08 + 1e-6) << "tq" << bits << " d=" << d;
      EXPECT_GE(normalised, theory * 0.80) << "tq" << bits << " d=" << d;
    }
  }
}

TEST(Quantizer, TurboQuantProdInnerProductsAreUnbiasedOverTheSketch) {
  // For fixed x and q, the mean of <q, x_hat> over many sketch seeds approaches <q, x>; the MSE
  // format at the same bits keeps its systematic error for every seed.
  std::mt19937_64 rng(atb::test::test_seed());
  std::normal_distribution<float> normal;
  const int d = 64;
  const Rotation rotation(d, kDefaultRotationSeed, 1, 2);
  std::vector<float> x(static_cast<size_t>(d)), query(static_cast<size_t>(d)), y(static_cast<size_t>(d)),
      scratch(static_cast<size_t>(d));
  for (float& v : x) v = normal(rng);
  for (float& v : query) v = normal(rng);
  double exact = 0;
  for (int i = 0; i < d; ++i) exact += double(query[size_t(i)]) * x[size_t(i)];
  const int trials = 400;
  double sum = 0, sum_sq = 0;
  for (int t = 0; t < trials; ++t) {
    const auto q = quantizer(Role::key, "tqp2", d, 1000 + uint64_t(t) * 7919);
    std::vector<uint8_t> row(q->row_bytes());
    encode_vector(*q, rotation, x.data(), row.data(), scratch.data());
    decode_vector(*q, rotation, row.data(), y.data());
    double estimate = 0;
    for (int i = 0; i < d; ++i) estimate += double(query[size_t(i)]) * y[size_t(i)];
    sum += estimate - exact;
    sum_sq += (estimate - exact) * (estimate - exact);
  }
  const double mean = sum / trials;
  const double standard_error = std::sqrt((sum_sq / trials - mean * mean) / trials);
  EXPECT_LT(std::abs(mean), 4 * standard_error + 1e-3) << "bias " << mean << " vs standard error " << standard_error;
  EXPECT_GT(standard_error, 0);  // the sketch does vary with its seed
}

TEST(Quantizer, PlainFormatsRoundOnlyToTheirElementType) {
  std::mt19937_64 rng(atb::test::test_seed());
  for (const char* name : {"f16", "bf16", "f32"}) {
    const auto q = quantizer(Role::value, name, 96);
    const auto x = random_vector(rng, 96);
    std::vector<uint8_t> row(q->row_bytes());
    std::vector<float> y(96);
    q->encode(x.data(), row.data());
    q->decode(row.data(), y.data());
    for (int i = 0; i < 96; ++i)
      ASSERT_EQ(y[size_t(i)], atb::round_to_dtype(x[size_t(i)], q->format().plain_dtype)) << name << " " << i;
  }
}

TEST(Quantizer, EveryRotatedFormatReconstructsCloselyAtEightBits) {
  // A sanity bound across schemes: at 8 bits the relative error is small for every head size.
  std::mt19937_64 rng(atb::test::test_seed());
  for (const auto& [role, name] : {std::pair{Role::key, "q8_0"},
                                   {Role::key, "uint8"},
                                   {Role::key, "tq8"},
                                   {Role::key, "tqp8"},
                                   {Role::value, "q8_0"},
                                   {Role::value, "tq8"}})
    for (int d : kHeadSizes) {
      const auto q = quantizer(role, name, d);
      const Rotation rotation(d, kDefaultRotationSeed, 2, 3);
      const auto x = random_vector(rng, d);
      std::vector<uint8_t> row(q->row_bytes());
      std::vector<float> y(static_cast<size_t>(d)), scratch(static_cast<size_t>(d));
      encode_vector(*q, rotation, x.data(), row.data(), scratch.data());
      decode_vector(*q, rotation, row.data(), y.data());
      double energy = 0;
      for (float v : x) energy += double(v) * v;
      EXPECT_LT(squared_error(x, y) / energy, 2e-3) << name << " d=" << d;
    }
}

TEST(Quantizer, APageOfEncodedRowsFillsItsLayoutAndNothingBeyond) {
  // Every (head, slot) row of K and V encoded into one page between guard regions: the rows tile the
  // page (apart from the alignment padding after each region) and no byte past page_bytes changes.
  std::mt19937_64 rng(atb::test::test_seed());
  for (const auto& [k_name, v_name] : {std::pair{"q4_0", "q3_0"}, {"tq3", "tq4"}, {"tqp4", "f16"}, {"uint2", "q2_0"}})
    for (int d : {48, 80, 128}) {
      const auto k = quantizer(Role::key, k_name, d);
      const auto v = quantizer(Role::value, v_name, d);
      const PageLayout page = page_layout(k->format(), v->format(), d, d, 3, 5);
      constexpr size_t kGuard = 128;
      std::vector<uint8_t> buffer(page.page_bytes + 2 * kGuard, 0x5a);
      std::vector<int> writes(page.page_bytes, 0);
      for (int head = 0; head < 3; ++head)
        for (int slot = 0; slot < 5; ++slot) {
          const auto x = random_vector(rng, d);
          k->encode(x.data(), buffer.data() + kGuard + page.k_row_offset(head, slot));
          v->encode(x.data(), buffer.data() + kGuard + page.v_row_offset(head, slot));
          for (size_t i = 0; i < k->row_bytes(); ++i) ++writes[page.k_row_offset(head, slot) + i];
          for (size_t i = 0; i < v->row_bytes(); ++i) ++writes[page.v_row_offset(head, slot) + i];
        }
      for (size_t i = 0; i < kGuard; ++i) {
        ASSERT_EQ(buffer[i], 0x5a) << k_name << "/" << v_name << " d=" << d;
        ASSERT_EQ(buffer[kGuard + page.page_bytes + i], 0x5a) << k_name << "/" << v_name << " d=" << d;
      }
      const size_t k_end = 15 * page.k_row_bytes, v_end = page.v_region_offset + 15 * page.v_row_bytes;
      for (size_t i = 0; i < page.page_bytes; ++i) {
        const bool in_rows = i < k_end || (i >= page.v_region_offset && i < v_end);
        ASSERT_EQ(writes[i], in_rows ? 1 : 0)
            << "byte " << i << " of a " << k_name << "/" << v_name << " page, d=" << d;
      }
      EXPECT_LT(page.page_bytes - 15 * (page.k_row_bytes + page.v_row_bytes), 2 * kPageRegionAlignment);
    }
}

TEST(Quantizer, UnsupportedHeadSizeIsAnErrorNotARefusalWithoutWords) {
  auto made = make_quantizer(*find_format(Role::key, "tq4"), 100);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), ATB_ERR_UNSUPPORTED);
  EXPECT_NE(made.error().message().find("head size 100"), std::string::npos) << made.error().message();
}

}  // namespace
}  // namespace tq
