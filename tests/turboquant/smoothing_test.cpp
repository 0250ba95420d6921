// Per-channel smoothing (k_smoothing / v_smoothing): the scales it picks, and through the plugin that it
// shrinks the error of rows with outlier channels against f64 attention over the exact K/V, is exact
// over the cache it stores, changes nothing where there are no outliers, and is refused where it
// cannot hold its promise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include <tq/channel_maxima.hpp>

#include <fstream>

#include "../support/decoded_cache.hpp"
#include "../support/oracle_bounds.hpp"
#include "../support/plugins.hpp"
#include "../support/scenario.hpp"
#include "../support/temp_file.hpp"
#include "channel_smoothing.hpp"

namespace atb::test {
namespace {

TEST(ChannelSmoothing, ScalesArePowersOfTwoThatBringOutliersTowardsTheMedian) {
  for (const double strength : {0.0, 0.5, 0.75, 1.0}) {
    turboquant::ChannelSmoothing smoothing(2, 8, {strength, /*min_ratio=*/4});
    const float row0[8] = {1, -1, 1, 1, 16, -1, 1, 0.5f};  // channel 4 at 16x the median
    const float row1[8] = {-1, 1, 2, -1, 1, 1, -64, 1};    // channel 6 at 64x; channel 2 at 2x
    smoothing.observe(0, row0);
    smoothing.observe(1, row1);
    smoothing.freeze();
    EXPECT_EQ(smoothing.scales(0)[4], float(std::ldexp(1.0, int(std::round(strength * 4)))));
    EXPECT_EQ(smoothing.scales(1)[6], float(std::ldexp(1.0, int(std::round(strength * 6)))));
    EXPECT_EQ(smoothing.scales(1)[2], 1.0f);  // 2x the median: below min_ratio, no outlier
    EXPECT_EQ(smoothing.scales(0)[0], 1.0f);
    EXPECT_EQ(smoothing.scales(0)[7], 1.0f);  // below the median: never enlarged
    float x[8] = {3, 3, 3, 3, 3, 3, 3, 3}, y[8];
    std::memcpy(y, x, sizeof(x));
    smoothing.shrink(1, y);
    smoothing.restore(1, y);
    EXPECT_EQ(std::memcmp(x, y, sizeof(x)), 0) << "powers of two: shrink then restore is exact";
  }
}

TEST(ChannelSmoothing, MinRatioDecidesWhichChannelsAreOutliers) {
  const float row[8] = {1, 1, 1, 1, 2, 3, 5, 1};  // median 1
  for (const double min_ratio : {1.0, 2.0, 3.0, 4.0, 6.0}) {
    turboquant::ChannelSmoothing smoothing(1, 8, {1.0, min_ratio}, std::vector<float>(row, row + 8));
    for (int j = 4; j < 7; ++j) {
      const float expected = row[j] >= min_ratio ? float(std::ldexp(1.0, int(std::round(std::log2(row[j]))))) : 1.0f;
      EXPECT_EQ(smoothing.scales(0)[j], expected) << "channel " << j << ", min_ratio " << min_ratio;
    }
  }
}

TEST(ChannelSmoothing, ZerosAndNonFiniteValuesLeaveScalesAtOne) {
  turboquant::ChannelSmoothing smoothing(1, 4, {1.0, 1.0});
  const float zeros[4] = {0, 0, 0, 0};
  const float bad[4] = {NAN, INFINITY, 0, 0};
  smoothing.observe(0, zeros);
  smoothing.observe(0, bad);
  smoothing.freeze();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(smoothing.scales(0)[j], 1.0f);
}

// The balanced rule scales every K channel by sqrt(rms k / rms q), over the head's median, to the
// power of the strength; a channel with no query energy keeps scale 1; without queries the outliers
// rule decides.
TEST(ChannelSmoothing, BalancedScalesFollowKeyOverQueryEnergy) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr int kDim = 8;
  const float key_rms[kDim] = {1, 4, 1, 0.25f, 2, 1, 16, 1}, query_rms[kDim] = {1, 0.25f, 1, 4, 2, 1, 1, 0};
  for (const double strength : {0.5, 1.0}) {
    turboquant::ChannelSmoothing smoothing(1, kDim, {strength, 4, /*balanced=*/true, /*centered=*/false});
    std::vector<double> keys(kDim), queries(kDim);
    for (int token = 0; token < 64; ++token) {
      float k[kDim], q[kDim];
      for (int j = 0; j < kDim; ++j) {
        k[j] = key_rms[j] * normal(rng);
        q[j] = query_rms[j] * normal(rng);
        keys[size_t(j)] += double(k[j]) * k[j];
        queries[size_t(j)] += double(q[j]) * q[j];
      }
      smoothing.observe(0, k);
      smoothing.observe_query(0, q);
    }
    smoothing.freeze();
    std::vector<double> ratios(kDim);
    for (int j = 0; j < kDim; ++j)
      ratios[size_t(j)] = queries[size_t(j)] > 0 ? std::pow(keys[size_t(j)] / queries[size_t(j)], 0.25) : 0;
    std::vector<double> sorted = ratios;
    std::nth_element(sorted.begin(), sorted.begin() + kDim / 2, sorted.end());
    for (int j = 0; j < kDim; ++j) {
      const double expected = ratios[size_t(j)] > 0 ? std::pow(ratios[size_t(j)] / sorted[kDim / 2], strength) : 1.0;
      EXPECT_NEAR(smoothing.scales(0)[j], expected, 1e-6 * expected) << "channel " << j << ", strength " << strength;
    }
    EXPECT_GT(smoothing.scales(0)[1], 2.0f * smoothing.scales(0)[3]) << "big keys over small queries: larger scales";
  }
  turboquant::ChannelSmoothing keys_only(1, kDim, {1.0, 4, /*balanced=*/true, /*centered=*/false});
  const float row[kDim] = {1, 1, 1, 1, 1, 1, 16, 1};
  keys_only.observe(0, row);
  keys_only.freeze();
  EXPECT_EQ(keys_only.scales(0)[6], 16.0f) << "no queries seen: the outliers rule";
  EXPECT_EQ(keys_only.scales(0)[0], 1.0f);
}

// Centering stores x / s - mu with mu the mean of x / s over the observed rows; restore adds it back.
TEST(ChannelSmoothing, CenteringSubtractsTheChannelMeans) {
  for (const bool centered : {false, true}) {
    turboquant::ChannelSmoothing smoothing(2, 4, {1.0, 4, false, centered});
    const float rows[3][4] = {{1, 64, 3, -2}, {3, 64, 5, -2}, {2, 32, 4, -2}};
    for (const auto& row : rows) smoothing.observe(1, row);
    smoothing.observe(0, rows[0]);
    smoothing.freeze();
    const float scale = smoothing.scales(1)[1];
    ASSERT_GT(scale, 1.0f) << "channel 1 is an outlier";
    const float expected[4] = {2, 160.0f / 3.0f / scale, 4, -2};
    for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(smoothing.means(1)[j], centered ? expected[j] : 0.0f) << j;
    float x[4] = {2, 40, 4, -2};
    float y[4];
    std::memcpy(y, x, sizeof(x));
    smoothing.shrink(1, y);
    if (centered) {
      EXPECT_EQ(y[0], 0.0f);
      EXPECT_EQ(y[3], 0.0f);
    }
    smoothing.restore(1, y);
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(y[j], x[j], 1e-5f * std::fabs(x[j])) << j;
    float q[4] = {1, 1, 1, 1};
    smoothing.scale_query(1, q);
    EXPECT_EQ(q[1], scale) << "queries take the scales, never the means";
  }
}

// Random K/V where a few channels of each KV head are `k_factor` / `v_factor` times the rest (and the
// query's matching channels 1/k_factor, as a model with such keys has): relative L2 of the outputs
// against f64 over the exact K/V, with and without smoothing, on the same schedule.
struct Errors {
  double plain = 0, smoothed = 0;
};

const std::set<int> kOutlierChannels = {6, 7, 70, 71, 100, 101};

// N(0, 1) Q/K/V where kOutlierChannels are `k_factor` times larger in K (1 / k_factor in the query, as a
// model with such keys has) and `v_factor` in V, after K and V channels j % 5 == 0 are shifted by
// `k_v_mean`.
ValueGenerator outlier_channels(float k_factor, float v_factor, float k_v_mean = 0.0f) {
  return [=](std::mt19937_64& rng, int kind, int, int dim) {
    float x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    if (kind > 0 && dim % 5 == 0) x += k_v_mean;
    if (kOutlierChannels.count(dim)) x *= kind == 0 ? 1.0f / k_factor : kind == 1 ? k_factor : v_factor;
    return x;
  };
}

// What a smoothed cache holds of a row: shrunk, coded by `codec` (the decoded cache's), read back.
Scenario::StoredRow smoothed_rows(const turboquant::ChannelSmoothing& keys, const turboquant::ChannelSmoothing& values,
                                  Scenario::StoredRow codec) {
  return [&keys, &values, codec = std::move(codec)](bool is_key, int h, float* row) {
    const turboquant::ChannelSmoothing& smoothing = is_key ? keys : values;
    smoothing.shrink(h, row);
    codec(is_key, h, row);
    smoothing.restore(h, row);
  };
}

// A step's outputs match the f64 oracle over the stored rows within the layer dtype's bound.
void expect_matches_oracle(const Scenario& scenario, const StepOutput& out) {
  const Bound bound = bound_for(scenario.shape().dtype);
  const auto result = scenario.compare(out, bound.atol, bound.rtol);
  EXPECT_LE(result.worst_ratio, 1.0) << "max |error| " << result.max_abs_error;
  EXPECT_GT(result.checked_tokens, 0);
}

Errors errors_with_outliers(const std::string& formats, const std::string& smoothing, float k_factor, float v_factor,
                            bool expect_identical = false, float k_v_mean = 0.0f) {
  LayerShape shape;
  shape.num_query_heads = 8;
  shape.num_kv_heads = 2;
  Errors errors;
  std::vector<std::vector<std::byte>> outputs;
  for (const bool smoothed : {false, true}) {
    const std::string config =
        "{" + formats + ", \"kernel\": \"avx2\"" + (smoothed ? ", " + smoothing : std::string()) + "}";
    auto backend = create_backend("turboquant", shape.layer_spec(), config);
    EXPECT_TRUE(backend) << backend.error().message();
    if (!backend) return errors;
    Scenario scenario(shape, *backend, 256, /*seed=*/42, 3);
    scenario.set_generator(outlier_channels(k_factor, v_factor, k_v_mean));
    double error = 0;
    for (const auto& steps : std::vector<std::vector<host::PagedKvManager::SequenceStep>>{
             {{0, 400}, {1, 30}}, {{0, 1}, {1, 1}, {2, 50}}, {{0, 1}, {2, 1}}}) {
      auto out = scenario.step(steps);
      EXPECT_TRUE(out) << out.error().message();
      if (!out) return errors;
      error = std::max(error, scenario.relative_l2(*out));
      outputs.emplace_back(out->output.bytes(), out->output.bytes() + out->output.byte_size());
    }
    (smoothed ? errors.smoothed : errors.plain) = error;
  }
  if (expect_identical) {
    for (size_t i = 0; i < outputs.size() / 2; ++i) EXPECT_EQ(outputs[i], outputs[i + outputs.size() / 2]) << i;
  }
  std::printf("%s %s (K x%g, V x%g): relative L2 %.4f without, %.4f with\n", formats.c_str(), smoothing.c_str(),
              k_factor, v_factor, errors.plain, errors.smoothed);
  return errors;
}

TEST(Smoothing, ShrinksTheErrorOfKeyOutlierChannels) {
  const Errors errors =
      errors_with_outliers(R"("k_quant": "tq3", "v_quant": "q8_0")", R"("k_smoothing": "online")", 32.0f, 1.0f);
  EXPECT_LT(errors.smoothed, 0.7 * errors.plain);
}

TEST(Smoothing, ShrinksTheErrorOfValueOutlierChannels) {
  const Errors errors =
      errors_with_outliers(R"("k_quant": "q8_0", "v_quant": "tq3")", R"("v_smoothing": "online")", 1.0f, 32.0f);
  EXPECT_LT(errors.smoothed, 0.7 * errors.plain);
}

TEST(Smoothing, ChangesNothingWithoutOutliers) {
  errors_with_outliers(R"("k_quant": "tq4", "v_quant": "tq3")", R"("k_smoothing": "online", "v_smoothing": "online")",
                       1.0f, 1.0f, /*expect_identical=*/true);
}

// Channel maxima of `layers` layers x 2 KV heads x 128 channels: 3 in every channel, `k_factor` /
// `v_factor` times that in kOutlierChannels; and the file (tq calibrate's) that holds them.
tq::ChannelMaxima outlier_maxima(int layers, float k_factor, float v_factor) {
  tq::ChannelMaxima maxima(layers, 2, 128);
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 128; ++j) {
        maxima.row(tq::Role::key, l, h)[j] = kOutlierChannels.count(j) ? 3 * k_factor : 3;
        maxima.row(tq::Role::value, l, h)[j] = kOutlierChannels.count(j) ? 3 * v_factor : 3;
      }
  return maxima;
}

TempFile maxima_file(const std::string& name, int layers, float k_factor, float v_factor) {
  TempFile file(name);
  std::ofstream(file.path()) << tq::channel_maxima_json(outlier_maxima(layers, k_factor, v_factor), "smoothing_test");
  return file;
}

std::string file_smoothing(const TempFile& file, const char* roles) {
  return std::string(roles) + R"(, "smoothing_file": ")" + file.string() + "\"";
}

TEST(Smoothing, FromACalibrationFileShrinksTheErrorOfOutlierChannels) {
  const TempFile file = maxima_file("outliers.json", 1, 32, 32);
  const Errors keys = errors_with_outliers(R"("k_quant": "tq3", "v_quant": "q8_0")",
                                           file_smoothing(file, R"("k_smoothing": "file")"), 32.0f, 1.0f);
  EXPECT_LT(keys.smoothed, 0.7 * keys.plain);
  const Errors values = errors_with_outliers(R"("k_quant": "q8_0", "v_quant": "tq3")",
                                             file_smoothing(file, R"("v_smoothing": "file")"), 1.0f, 32.0f);
  EXPECT_LT(values.smoothed, 0.7 * values.plain);
}

TEST(Smoothing, AFileOfEvenChannelsChangesNothing) {
  const TempFile file = maxima_file("even.json", 1, 1, 1);
  errors_with_outliers(R"("k_quant": "tq4", "v_quant": "tq3")",
                       file_smoothing(file, R"("k_smoothing": "file", "v_smoothing": "file")"), 8.0f, 8.0f,
                       /*expect_identical=*/true);
}

// Channels 3x the rest are a model's ordinary spread (the shared model's keys reach 3x): under the
// default min_ratio (4) they are no outliers and the pages are as without smoothing; at min_ratio 2
// they are smoothed.
TEST(Smoothing, ChannelsBelowTheMinRatioKeepScaleOne) {
  const TempFile file = maxima_file("ordinary.json", 1, 3, 3);
  const std::string formats = R"("k_quant": "tq3", "v_quant": "tq3")";
  errors_with_outliers(formats, file_smoothing(file, R"("k_smoothing": "file", "v_smoothing": "file")"), 3.0f, 3.0f,
                       /*expect_identical=*/true);
  const Errors smoothed = errors_with_outliers(formats,
                                               file_smoothing(file, R"("k_smoothing": "file", "v_smoothing": "file",)"
                                                                    R"( "smoothing_min_ratio": 2)"),
                                               3.0f, 3.0f);
  EXPECT_NE(smoothed.smoothed, smoothed.plain);
}

// Smoothed rows are stored as x / s, coded, and read back times s (the query times s for K, the
// output for V): the outputs match the f64 oracle over that cache to f32 rounding, for affine and
// codebook K, block and TurboQuant V, in prefill, decode and chunked prefill.
TEST(Smoothing, OutputsMatchF64OverTheSmoothedDecodedCache) {
  LayerShape shape;
  const float k_factor = 32.0f, v_factor = 16.0f;
  const TempFile file = maxima_file("exact.json", 1, k_factor, v_factor);
  const tq::ChannelMaxima maxima = outlier_maxima(1, k_factor, v_factor);
  const turboquant::ChannelSmoothing keys(2, 128, {}, maxima.key), values(2, 128, {}, maxima.value);
  ASSERT_GT(keys.scales(0)[6], 1.0f) << "channel 6 is an outlier: smoothed";
  ASSERT_GT(values.scales(1)[100], 1.0f);
  for (const auto& [k_name, v_name] : std::vector<std::pair<std::string, std::string>>{
           {"tq3", "tq3"}, {"q4_0", "q3_0"}, {"q8_0", "tq2"}, {"tq4", "q8_0"}}) {
    const std::string config = R"({"k_quant": ")" + k_name + R"(", "v_quant": ")" + v_name +
                               R"(", "kernel": "avx2", )" +
                               file_smoothing(file, R"("k_smoothing": "file", "v_smoothing": "file")") + "}";
    SCOPED_TRACE(config);
    auto backend = create_backend("turboquant", shape.layer_spec(), config);
    ASSERT_TRUE(backend) << backend.error().message();
    DecodedCache decoded(shape, k_name, v_name, 0, 0);
    Scenario scenario(shape, *backend, 256, /*seed=*/7, 3);
    scenario.set_generator(outlier_channels(k_factor, v_factor));
    scenario.set_stored_row(smoothed_rows(keys, values, decoded.stored_row()));
    for (const auto& steps : std::vector<std::vector<host::PagedKvManager::SequenceStep>>{
             {{0, 300}, {1, 17}}, {{0, 1}, {1, 1}, {2, 40}}, {{0, 9}, {2, 1}}}) {
      auto out = scenario.step(steps);
      ASSERT_TRUE(out) << out.error().message();
      expect_matches_oracle(scenario, *out);
    }
  }
}

// Balanced K scales and centering, estimated online from the first write: the test replays that
// estimation (the first step's rows and queries), rewrites those rows as the backend then stored them,
// and the outputs of that step and later ones match the f64 oracle over the decoded cache to f32
// rounding.  K and V have channel means and outlier channels (the query's matching ones small), in
// f32, bf16 and f16 layers.
TEST(Smoothing, OnlineBalancedCenteredOutputsMatchF64OverTheDecodedCache) {
  const std::string online = R"("k_smoothing": "online", "v_smoothing": "online", "smoothing_strength": 100, )"
                             R"("k_smoothing_rule": "balanced", "k_centering": true, "v_centering": true)";
  const auto channel_mean = [](int kind, int dim) {
    return kind == 0 ? 0.0f : (dim % 5 == 0 ? 3.0f : -0.5f) * float(kind);
  };
  for (const int32_t dtype : {ATB_DTYPE_F32, ATB_DTYPE_BF16, ATB_DTYPE_F16})
    for (const auto& [k_name, v_name] :
         std::vector<std::pair<std::string, std::string>>{{"tq3", "tq2"}, {"q4_0", "q3_0"}, {"tq4", "q8_0"}}) {
      LayerShape shape;
      shape.dtype = dtype;
      const std::string config =
          R"({"k_quant": ")" + k_name + R"(", "v_quant": ")" + v_name + R"(", "kernel": "avx2", )" + online + "}";
      SCOPED_TRACE(config + " dtype " + std::to_string(dtype));
      auto backend = create_backend("turboquant", shape.layer_spec(), config);
      ASSERT_TRUE(backend) << backend.error().message();
      DecodedCache decoded(shape, k_name, v_name, 0, 0);
      Scenario scenario(shape, *backend, 256, /*seed=*/11, 3);
      scenario.set_generator([&](std::mt19937_64& rng, int kind, int, int dim) {
        float x = std::normal_distribution<float>(0.0f, 1.0f)(rng) + channel_mean(kind, dim);
        if (kOutlierChannels.count(dim)) x *= kind == 0 ? 1.0f / 16 : kind == 1 ? 16.0f : 8.0f;
        return x;
      });
      turboquant::ChannelSmoothing keys(shape.num_kv_heads, 128, {1.0, 4, true, true});
      turboquant::ChannelSmoothing values(shape.num_kv_heads, 128, {1.0, 4, false, true});
      scenario.set_stored_row([&](bool is_key, int h, float* row) { (is_key ? keys : values).observe(h, row); });
      auto first = scenario.step({{0, 300}, {1, 17}});
      ASSERT_TRUE(first) << first.error().message();
      const int group = shape.num_query_heads / shape.num_kv_heads;
      float query[128];
      for (int32_t t = 0; t < first->batch.num_tokens; ++t)
        for (int h = 0; h < shape.num_query_heads; ++h) {
          for (int d = 0; d < 128; ++d) query[d] = first->query.get(t, h, d);
          keys.observe_query(h / group, query);
        }
      keys.freeze();
      values.freeze();
      ASSERT_NE(keys.means(0)[5], 0.0f);
      ASSERT_GT(keys.scales(1)[100], 4.0f) << "an outlier K channel with a small query channel";
      const Scenario::StoredRow stored = smoothed_rows(keys, values, decoded.stored_row());
      scenario.rewrite_history(stored);
      scenario.set_stored_row(stored);
      expect_matches_oracle(scenario, *first);
      for (const auto& steps :
           std::vector<std::vector<host::PagedKvManager::SequenceStep>>{{{0, 1}, {1, 1}, {2, 40}}, {{0, 9}, {2, 1}}}) {
        auto out = scenario.step(steps);
        ASSERT_TRUE(out) << out.error().message();
        expect_matches_oracle(scenario, *out);
      }
    }
}

// Centering and the balanced rule, online, cut the error of K/V with channel means and outliers
// against f64 over the exact K/V, beyond what the outliers rule alone gives.
TEST(Smoothing, CenteringAndBalancedScalesShrinkTheErrorOfMeansAndOutliers) {
  const std::string formats = R"("k_quant": "tq3", "v_quant": "tq2")";
  const std::string outliers = R"("k_smoothing": "online", "v_smoothing": "online")";
  const Errors before = errors_with_outliers(formats, outliers, 16.0f, 8.0f, false, 2.0f);
  const Errors after = errors_with_outliers(
      formats, outliers + R"(, "k_smoothing_rule": "balanced", "k_centering": true, "v_centering": true)", 16.0f, 8.0f,
      false, 2.0f);
  EXPECT_LT(after.smoothed, 0.9 * before.smoothed);
}

// Centering from a calibration file: the file's means (of the raw rows) are subtracted after the
// scales; the outputs match the f64 oracle over that cache, and a file without means is refused for it.
TEST(Smoothing, CenteringFromAFileMatchesF64OverTheDecodedCache) {
  LayerShape shape;
  tq::ChannelMaxima maxima = outlier_maxima(1, 16, 8);
  maxima.key_mean.assign(maxima.key.size(), 0.0f);
  maxima.value_mean.assign(maxima.key.size(), 0.0f);
  for (size_t i = 0; i < maxima.key.size(); ++i) {
    maxima.key_mean[i] = i % 5 == 0 ? 2.5f : -0.25f;
    maxima.value_mean[i] = i % 5 == 0 ? -1.5f : 0.5f;
  }
  const TempFile file("centering.json");
  std::ofstream(file.path()) << tq::channel_maxima_json(maxima, "smoothing_test");
  const turboquant::SmoothingRule rule{0.75, 4, false, true};
  const turboquant::ChannelSmoothing keys(2, 128, rule, maxima.key, maxima.key_mean);
  const turboquant::ChannelSmoothing values(2, 128, rule, maxima.value, maxima.value_mean);
  ASSERT_EQ(keys.means(0)[5], 2.5f);
  ASSERT_EQ(values.means(1)[100], 0.5f / values.scales(1)[100]) << "means in the scaled domain";
  for (const auto& [k_name, v_name] :
       std::vector<std::pair<std::string, std::string>>{{"tq3", "tq2"}, {"q4_0", "q3_0"}, {"tq4", "q8_0"}}) {
    const std::string config =
        R"({"k_quant": ")" + k_name + R"(", "v_quant": ")" + v_name + R"(", "kernel": "avx2", )" +
        file_smoothing(file,
                       R"("k_smoothing": "file", "v_smoothing": "file", "k_centering": true, "v_centering": true)") +
        "}";
    SCOPED_TRACE(config);
    auto backend = create_backend("turboquant", shape.layer_spec(), config);
    ASSERT_TRUE(backend) << backend.error().message();
    DecodedCache decoded(shape, k_name, v_name, 0, 0);
    Scenario scenario(shape, *backend, 256, /*seed=*/13, 3);
    scenario.set_generator(outlier_channels(16.0f, 8.0f, 2.0f));
    scenario.set_stored_row(smoothed_rows(keys, values, decoded.stored_row()));
    for (const auto& steps :
         std::vector<std::vector<host::PagedKvManager::SequenceStep>>{{{0, 200}, {1, 17}}, {{0, 1}, {1, 1}, {2, 40}}}) {
      auto out = scenario.step(steps);
      ASSERT_TRUE(out) << out.error().message();
      expect_matches_oracle(scenario, *out);
    }
  }
  const TempFile old_file = maxima_file("no_means.json", 1, 16, 8);
  auto refused = create_backend("turboquant", shape.layer_spec(),
                                "{" + file_smoothing(old_file, R"("v_smoothing": "file", "v_centering": true)") + "}");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("has no value_mean"), std::string::npos) << refused.error().message();
}

// A layer reading layer 0's cache takes layer 0's entries of the file, as its owner does: with the
// owner's queries it gives the owner's outputs exactly (without smoothing it would not).
TEST(Smoothing, AFileServesAKvSharingLayerWithItsOwnersScales) {
  LayerShape shape;
  const TempFile file = maxima_file("sharing.json", 2, 32, 32);
  std::string config = R"({"k_quant": "tq3", "v_quant": "tq3", )";
  config.append(file_smoothing(file, R"("k_smoothing": "file", "v_smoothing": "file")")).append("}");
  auto owner = create_backend("turboquant", shape.layer_spec(0, 2), config);
  ASSERT_TRUE(owner) << owner.error().message();
  atb_layer_spec sharing = shape.layer_spec(1, 2);
  sharing.kv_shared_with_layer = 0;
  auto sharer = create_backend("turboquant", sharing, config);
  ASSERT_TRUE(sharer) << sharer.error().message();
  auto unsmoothed = create_backend("turboquant", sharing, R"({"k_quant": "tq3", "v_quant": "tq3"})");
  ASSERT_TRUE(unsmoothed);
  Scenario scenario(shape, *owner, 64, 5);
  scenario.set_generator(outlier_channels(32.0f, 32.0f));
  auto written = scenario.step({{0, 120}, {1, 40}});
  ASSERT_TRUE(written) << written.error().message();
  const auto read_with = [&](host::Backend& backend) {
    host::HostTensor output(shape.dtype, written->batch.num_tokens, shape.num_query_heads, shape.head_size_v);
    const atb_forward_args args = host::make_forward_args(scenario.pool(), written->batch, written->query.descriptor(),
                                                          nullptr, nullptr, output.descriptor());
    const Status status = backend.forward(args);
    EXPECT_TRUE(status) << status.message();
    return std::vector<std::byte>(output.bytes(), output.bytes() + output.byte_size());
  };
  const std::vector<std::byte> owners(written->output.bytes(), written->output.bytes() + written->output.byte_size());
  EXPECT_EQ(read_with(*sharer), owners);
  EXPECT_NE(read_with(*unsmoothed), owners);
}

TEST(Smoothing, FileRefusalsNameTheKeyAndWhatIsAllowed) {
  LayerShape shape;
  const TempFile one_layer = maxima_file("one_layer.json", 1, 4, 4);
  const TempFile garbage("garbage.json");
  std::ofstream(garbage.path()) << "{\"format\": \"atb-channel-maxima\", \"version\": 1, \"layers\": -3}";
  const struct {
    std::string config, message;
    int layer = 0;
  } cases[] = {
      {R"({"k_smoothing": "file"})", "k_smoothing/v_smoothing = file needs smoothing_file"},
      {R"({"smoothing_file": "/tmp/x.json"})", "is read only with k_smoothing or v_smoothing = file"},
      {R"({"k_smoothing": "file", "smoothing_file": "/nonexistent/m.json"})", "/nonexistent/m.json: cannot be read"},
      {R"({"k_smoothing": "file", "smoothing_file": 7})", "config key 'smoothing_file': 7 is not allowed"},
      {"{\"v_smoothing\": \"file\", \"smoothing_file\": \"" + garbage.string() + "\"}",
       "layers = -3; allowed: an integer from 1 to"},
      {"{\"k_smoothing\": \"file\", \"smoothing_file\": \"" + one_layer.string() + "\"}",
       "holds 1 layers; this layer's cache is layer 1", 1},
  };
  for (const auto& c : cases) {
    auto refused = create_backend("turboquant", shape.layer_spec(c.layer, 2), c.config);
    ASSERT_FALSE(refused) << c.config;
    EXPECT_EQ(refused.error().code(), ATB_ERR_INVALID_ARGUMENT) << c.config;
    EXPECT_NE(refused.error().message().find(c.message), std::string::npos) << refused.error().message();
  }
}

// The balanced rule learns from queries, which a calibration file does not hold; centering needs the
// role's smoothing; a logit soft cap would not ignore the shift K centering gives every score of a query.
TEST(Smoothing, BalancedAndCenteringAreRefusedWhereTheyCannotHold) {
  LayerShape shape;
  const TempFile file = maxima_file("balanced.json", 1, 4, 4);
  const struct {
    std::string config, message;
    int32_t code;
  } cases[] = {
      {R"({"k_smoothing_rule": "balanced"})", "k_smoothing_rule = balanced needs k_smoothing = online (it is \"none\"",
       ATB_ERR_INVALID_ARGUMENT},
      {"{\"k_smoothing\": \"file\", \"k_smoothing_rule\": \"balanced\", \"smoothing_file\": \"" + file.string() + "\"}",
       "the rule learns from queries, which a smoothing_file does not hold", ATB_ERR_INVALID_ARGUMENT},
      {R"({"v_centering": true, "k_smoothing": "online"})", "v_centering = true needs v_smoothing = online or file",
       ATB_ERR_INVALID_ARGUMENT},
      {R"({"k_centering": 1})", "config key 'k_centering'", ATB_ERR_INVALID_ARGUMENT},
      {R"({"k_smoothing_rule": "even"})", "allowed: outliers, balanced", ATB_ERR_INVALID_ARGUMENT},
  };
  for (const auto& c : cases) {
    auto refused = create_backend("turboquant", shape.layer_spec(), c.config);
    ASSERT_FALSE(refused) << c.config;
    EXPECT_EQ(refused.error().code(), c.code) << c.config;
    EXPECT_NE(refused.error().message().find(c.message), std::string::npos) << refused.error().message();
  }
  LayerShape capped;
  capped.soft_cap = 30.0f;
  auto refused = create_backend("turboquant", capped.layer_spec(), R"({"k_smoothing": "online", "k_centering": true})");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ATB_ERR_UNSUPPORTED);
  EXPECT_NE(refused.error().message().find("k_centering = true with logits_soft_cap"), std::string::npos)
      << refused.error().message();
  EXPECT_TRUE(create_backend("turboquant", capped.layer_spec(), R"({"v_smoothing": "online", "v_centering": true})"))
      << "V centering needs no shift-free softmax";
}

TEST(Smoothing, IsRefusedWhereItsScalesCouldNotFollowThePages) {
  LayerShape shape;
  atb_layer_spec sharing = shape.layer_spec(1, 2);
  sharing.kv_shared_with_layer = 0;
  auto refused = create_backend("turboquant", sharing, R"({"k_smoothing": "online"})");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ATB_ERR_UNSUPPORTED);
  EXPECT_NE(refused.error().message().find("owner's scales"), std::string::npos) << refused.error().message();
  EXPECT_NE(refused.error().message().find("allowed here: none, file"), std::string::npos);
  auto ratio = create_backend("turboquant", shape.layer_spec(), R"({"smoothing_min_ratio": 0})");
  ASSERT_FALSE(ratio);
  EXPECT_NE(ratio.error().message().find("smoothing_min_ratio"), std::string::npos) << ratio.error().message();
  auto bad = create_backend("turboquant", shape.layer_spec(), R"({"smoothing_strength": 101})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("smoothing_strength"), std::string::npos) << bad.error().message();
}

}  // namespace
}  // namespace atb::test
