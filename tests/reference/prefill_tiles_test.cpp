// The shared CPU driver scores and accumulates the tokens of a prefill several at a time, so a
// backend decodes each key and value tile once for all of them.  Each token must still get bit for
// bit what it gets alone: a chunk of new tokens against the same tokens given one step at a time,
// on both plugins built on the driver, with causal masks inside the shared tiles, sliding windows
// and soft caps.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb::test {
namespace {

struct Backend {
  const char* name;
  const char* config;
};

LayerShape random_shape(std::mt19937_64& rng) {
  const auto pick = [&](std::vector<int> choices) {
    return choices[std::uniform_int_distribution<size_t>(0, choices.size() - 1)(rng)];
  };
  LayerShape shape;
  shape.head_size_k = shape.head_size_v = pick({64, 80, 128});
  shape.num_kv_heads = pick({1, 2});
  shape.num_query_heads = shape.num_kv_heads * pick({1, 4, 8});
  shape.block_size = pick({16, 32, 1, 5, 48, 128});  // pages that split the driver's 64-key spans too
  shape.sliding_window = std::bernoulli_distribution(0.4)(rng) ? pick({1, 5, 40, 300}) : 0;
  shape.soft_cap = std::bernoulli_distribution(0.3)(rng) ? 30.0f : 0.0f;
  shape.dtype = pick({ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16});
  return shape;
}

// Whether token `a` of one step's output and token `b` of another's hold the same bytes.
bool same_output(const StepOutput& one, int32_t a, const StepOutput& other, int32_t b) {
  const size_t row = one.output.byte_size() / size_t(one.batch.num_tokens);
  return row == other.output.byte_size() / size_t(other.batch.num_tokens) &&
         std::memcmp(one.output.bytes() + row * size_t(a), other.output.bytes() + row * size_t(b), row) == 0;
}

TEST(SharedDriver, PrefillTokensSharingTilesMatchOneTokenStepsBitForBit) {
  const uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  const std::vector<Backend> backends = {
      {"reference", R"({"threads": 2})"},
      {"reference", R"({"kernel": "scalar"})"},
      {"turboquant", R"({"k_quant": "q4_0", "v_quant": "q3_0", "threads": 2})"},
      {"turboquant", R"({"k_quant": "tq4", "v_quant": "tq3"})"},
      {"turboquant", R"({"k_quant": "q8_0", "v_quant": "tq4", "kernel": "avx2"})"},
      {"turboquant", R"({"k_quant": "tq3", "v_quant": "tq2", "kernel": "scalar"})"},
  };
  for (const Backend& backend : backends) {
    for (int c = 0; c < 3; ++c) {
      const LayerShape shape = random_shape(rng);
      const int32_t prefix = std::uniform_int_distribution<int32_t>(0, 300)(rng);
      const int32_t chunk = std::uniform_int_distribution<int32_t>(17, 70)(rng);
      const uint64_t values_seed = rng();
      SCOPED_TRACE("seed " + std::to_string(seed) + ": " + backend.name + " " + backend.config + " " +
                   shape.describe() + ", " + std::to_string(chunk) + " tokens after " + std::to_string(prefix));
      auto chunked = create_backend(backend.name, shape.layer_spec(), backend.config);
      auto stepped = create_backend(backend.name, shape.layer_spec(), backend.config);
      ASSERT_TRUE(chunked && stepped);
      // Both draw the same tokens in the same order: the scenario draws token by token.
      Scenario whole(shape, *chunked, pool_pages(shape, 64), values_seed, 3);
      Scenario single(shape, *stepped, pool_pages(shape, 64), values_seed, 3);
      if (prefix > 0) {
        ASSERT_TRUE(whole.step({{0, prefix}}));
        ASSERT_TRUE(single.step({{0, prefix}}));
      }
      auto together = whole.step({{0, chunk}});
      ASSERT_TRUE(together) << together.error().message();
      int32_t differing = 0, first_differing = -1;
      for (int32_t t = 0; t < chunk; ++t) {
        auto alone = single.step({{0, 1}});
        ASSERT_TRUE(alone) << alone.error().message();
        if (!same_output(*alone, 0, *together, t) && differing++ == 0) first_differing = t;
      }
      EXPECT_EQ(differing, 0) << "tokens differ, the first at " << first_differing;
    }
  }
}

}  // namespace
}  // namespace atb::test
