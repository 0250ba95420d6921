// Per-channel smoothing (k_smoothing / v_smoothing): the scales it picks, and through the plugin that it
// shrinks the error of rows with outlier channels against f64 attention over the exact K/V, changes
// nothing where there are no outliers, and is refused where it cannot hold its promise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "../support/plugins.hpp"
#include "../support/scenario.hpp"
#include "channel_smoothing.hpp"

namespace atb::test {
namespace {

TEST(ChannelSmoothing, ScalesArePowersOfTwoThatBringOutliersTowardsTheMedian) {
  for (const double strength : {0.0, 0.5, 1.0}) {
    turboquant::ChannelSmoothing smoothing(2, 8, strength);
    const float row0[8] = {1, -1, 1, 1, 16, -1, 1, 0.5f};  // channel 4 at 16x the median
    const float row1[8] = {-1, 1, 2, -1, 1, 1, -64, 1};    // channel 6 at 64x; channel 2 at 2x
    smoothing.observe(0, row0);
    smoothing.observe(1, row1);
    smoothing.freeze();
    EXPECT_EQ(smoothing.scales(0)[4], float(std::ldexp(1.0, int(std::round(strength * 4)))));
    EXPECT_EQ(smoothing.scales(1)[6], float(std::ldexp(1.0, int(std::round(strength * 6)))));
    EXPECT_EQ(smoothing.scales(0)[0], 1.0f);
    EXPECT_EQ(smoothing.scales(0)[7], 1.0f);  // below the median: never enlarged
    float x[8] = {3, 3, 3, 3, 3, 3, 3, 3}, y[8];
    std::memcpy(y, x, sizeof(x));
    smoothing.shrink(1, y);
    smoothing.restore(1, y);
    EXPECT_EQ(std::memcmp(x, y, sizeof(x)), 0) << "powers of two: shrink then restore is exact";
  }
}

TEST(ChannelSmoothing, ZerosAndNonFiniteValuesLeaveScalesAtOne) {
  turboquant::ChannelSmoothing smoothing(1, 4, 1.0);
  const float zeros[4] = {0, 0, 0, 0};
  const float bad[4] = {NAN, INFINITY, 0, 0};
  smoothing.observe(0, zeros);
  smoothing.observe(0, bad);
  smoothing.freeze();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(smoothing.scales(0)[j], 1.0f);
}

// Random K/V where a few channels of each KV head are `k_factor` / `v_factor` times the rest (and the
// query's matching channels 1/k_factor, as a model with such keys has): relative L2 of the outputs
// against f64 over the exact K/V, with and without smoothing, on the same schedule.
struct Errors {
  double plain = 0, smoothed = 0;
};

Errors errors_with_outliers(const std::string& formats, const std::string& smoothing, float k_factor, float v_factor,
                            bool expect_identical = false) {
  LayerShape shape;
  shape.num_query_heads = 8;
  shape.num_kv_heads = 2;
  const std::set<int> outliers = {6, 7, 70, 71, 100, 101};
  auto generator = [&](std::mt19937_64& rng, int kind, int, int dim) {
    float x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    if (outliers.count(dim)) x *= kind == 0 ? 1.0f / k_factor : kind == 1 ? k_factor : v_factor;
    return x;
  };
  Errors errors;
  std::vector<std::vector<std::byte>> outputs;
  for (const bool smoothed : {false, true}) {
    const std::string config =
        "{" + formats + ", \"kernel\": \"avx2\"" + (smoothed ? ", " + smoothing : std::string()) + "}";
    auto backend = create_backend("turboquant", shape.layer_spec(), config);
    EXPECT_TRUE(backend) << backend.error().message();
    if (!backend) return errors;
    Scenario scenario(shape, *backend, 256, /*seed=*/42, 3);
    scenario.set_generator(generator);
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

TEST(Smoothing, IsRefusedWhereItsScalesCouldNotFollowThePages) {
  LayerShape shape;
  atb_layer_spec sharing = shape.layer_spec(1, 2);
  sharing.kv_shared_with_layer = 0;
  auto refused = create_backend("turboquant", sharing, R"({"k_smoothing": "online"})");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ATB_ERR_UNSUPPORTED);
  EXPECT_NE(refused.error().message().find("owner's scales"), std::string::npos) << refused.error().message();
  auto bad = create_backend("turboquant", shape.layer_spec(), R"({"smoothing_strength": 101})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("smoothing_strength"), std::string::npos) << bad.error().message();
}

}  // namespace
}  // namespace atb::test
