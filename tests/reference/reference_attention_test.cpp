// The reference backend against a plain f64 attention on fresh random serving schedules.
#include <gtest/gtest.h>

#include <atb/half.hpp>
#include <atb/struct_io.hpp>

#include <algorithm>
#include <cstring>
#include <random>

#include "../support/oracle_bounds.hpp"
#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb::test {
namespace {

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> choices) {
  return *(choices.begin() + std::uniform_int_distribution<size_t>(0, choices.size() - 1)(rng));
}

LayerShape random_shape(std::mt19937_64& rng) {
  LayerShape shape;
  shape.head_size_k = pick(rng, {64, 128, 256, 80, 96});
  shape.head_size_v = std::bernoulli_distribution(0.8)(rng) ? shape.head_size_k : pick(rng, {64, 128});
  shape.num_kv_heads = pick(rng, {1, 2});
  shape.num_query_heads = shape.num_kv_heads * pick(rng, {1, 4, 8});
  shape.block_size = pick(rng, {16, 32, 1, 5, 48, 128});  // pages that split the driver's 64-key spans too
  shape.sliding_window = std::bernoulli_distribution(0.3)(rng) ? pick(rng, {1, 7, 64, 500}) : 0;
  shape.soft_cap = std::bernoulli_distribution(0.3)(rng) ? pick(rng, {2.0f, 30.0f}) : 0.0f;
  shape.scale = std::bernoulli_distribution(0.3)(rng) ? pick(rng, {0.25f, 0.5f}) : 0.0f;
  shape.dtype = pick(rng, {ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16});
  return shape;
}

// Every `stride`-th token of each sequence plus its last one.
std::vector<int32_t> sample_tokens(const host::StepBatch& batch, int32_t stride) {
  std::vector<int32_t> tokens;
  for (int32_t s = 0; s < batch.num_seqs; ++s) {
    const int32_t begin = batch.query_start_loc[size_t(s)], end = batch.query_start_loc[size_t(s) + 1];
    for (int32_t t = begin; t < end; t += stride) tokens.push_back(t);
    if (end > begin && (end - 1 - begin) % stride != 0) tokens.push_back(end - 1);
  }
  return tokens;
}

void expect_within(const Scenario& scenario, const StepOutput& out, const char* what,
                   const std::vector<int32_t>& tokens = {}) {
  const Bound bound = bound_for(scenario.shape().dtype);
  const auto result = scenario.compare(out, bound.atol, bound.rtol, tokens);
  EXPECT_LE(result.worst_ratio, 1.0) << what << ": max |error| " << result.max_abs_error << " over "
                                     << result.checked_tokens << " tokens";
  EXPECT_GT(result.checked_tokens, 0) << what;
}

TEST(ReferenceAttention, RandomSchedulesMatchF64Oracle) {
  const uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  constexpr int kCases = 10;
  for (int c = 0; c < kCases; ++c) {
    const LayerShape shape = random_shape(rng);
    const std::string config = std::string("{\"threads\": ") + std::to_string(pick(rng, {1, 2, 3})) +
                               ", \"kernel\": \"" + pick<const char*>(rng, {"auto", "scalar"}) + "\"}";
    SCOPED_TRACE("seed " + std::to_string(seed) + " case " + std::to_string(c) + ": " + shape.describe() + " " +
                 config);
    auto backend = create_backend("reference", shape.layer_spec(), config);
    ASSERT_TRUE(backend) << backend.error().message();
    Scenario scenario(shape, *backend, pool_pages(shape, 512), rng(), rng());

    // 1. Mixed prefill of 1-8 sequences: one up to 2000 tokens (crossing many pages), the rest short.
    const int num_seqs = std::uniform_int_distribution<int>(1, 8)(rng);
    std::vector<host::PagedKvManager::SequenceStep> prefill;
    for (int s = 0; s < num_seqs; ++s) {
      const int max_len = s == 0 ? 2000 : 200;
      prefill.push_back({s, std::uniform_int_distribution<int32_t>(1, max_len)(rng)});
    }
    auto first = scenario.step(prefill);
    ASSERT_TRUE(first) << first.error().message();
    expect_within(scenario, *first, "prefill", sample_tokens(first->batch, 97));

    // 2. Decode, chunked prefill onto the cached prefix, and a new sequence, in one batch.
    std::vector<host::PagedKvManager::SequenceStep> mixed;
    for (int s = 0; s < num_seqs; ++s)
      mixed.push_back(
          {s, std::bernoulli_distribution(0.5)(rng) ? 1 : std::uniform_int_distribution<int32_t>(2, 48)(rng)});
    mixed.push_back({100, std::uniform_int_distribution<int32_t>(1, 40)(rng)});
    std::shuffle(mixed.begin(), mixed.end(), rng);
    auto second = scenario.step(mixed);
    ASSERT_TRUE(second) << second.error().message();
    expect_within(scenario, *second, "mixed decode / chunked prefill / new prefill");

    // 3. A sequence ends; a new one reuses its pages while the others decode.
    scenario.release(0);
    std::vector<host::PagedKvManager::SequenceStep> reuse{{200, std::uniform_int_distribution<int32_t>(1, 300)(rng)}};
    for (int s = 1; s < num_seqs; ++s) reuse.push_back({s, 1});
    auto third = scenario.step(reuse);
    ASSERT_TRUE(third) << third.error().message();
    expect_within(scenario, *third, "page reuse after a sequence ended", sample_tokens(third->batch, 13));
  }
}

TEST(ReferenceAttention, LongDecodeSplitsContextAndMatchesOracle) {
  // A context long enough to be split into several parts, then merged.
  const uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 1;
  shape.head_size_k = shape.head_size_v = 64;
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto backend = create_backend("reference", shape.layer_spec(), "{\"threads\": 2}");
  ASSERT_TRUE(backend) << backend.error().message();
  Scenario scenario(shape, *backend, 600, rng(), rng());
  ASSERT_TRUE(scenario.step({{0, 5000}, {1, 3000}}));
  auto decode = scenario.step({{0, 1}, {1, 1}});
  ASSERT_TRUE(decode) << decode.error().message();
  expect_within(scenario, *decode, "decode over 5000 / 3000 tokens");
}

// Runs the same schedule on a backend and returns every output byte.
std::vector<std::byte> run_schedule(const LayerShape& shape, const std::string& config, uint64_t seed) {
  auto backend = create_backend("reference", shape.layer_spec(), config);
  EXPECT_TRUE(backend) << backend.error().message();
  if (!backend) return {};
  Scenario scenario(shape, *backend, 400, seed, 7);
  std::vector<std::byte> bytes;
  for (const auto& steps : std::vector<std::vector<host::PagedKvManager::SequenceStep>>{
           {{0, 700}, {1, 3000}}, {{0, 1}, {1, 1}, {2, 33}}, {{0, 20}, {1, 1}}}) {
    auto out = scenario.step(steps);
    EXPECT_TRUE(out) << out.error().message();
    if (!out) return {};
    bytes.insert(bytes.end(), out->output.bytes(), out->output.bytes() + out->output.byte_size());
  }
  return bytes;
}

TEST(ReferenceAttention, OutputsAreBitIdenticalForAnyThreadCount) {
  LayerShape shape;
  shape.num_query_heads = 8;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 128;
  const uint64_t seed = test_seed();
  const auto one = run_schedule(shape, "{\"threads\": 1}", seed);
  ASSERT_FALSE(one.empty());
  for (int threads : {2, 3, 5}) {
    const auto many = run_schedule(shape, "{\"threads\": " + std::to_string(threads) + "}", seed);
    EXPECT_TRUE(one == many) << threads << " threads differ from 1 thread (seed " << seed << ")";
  }
}

TEST(ReferenceAttention, F16CacheForF32Inputs) {
  LayerShape shape;
  shape.num_query_heads = 8;
  shape.num_kv_heads = 2;
  const uint64_t seed = test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto backend = create_backend("reference", shape.layer_spec(), "{\"cache_dtype\": \"f16\"}");
  ASSERT_TRUE(backend) << backend.error().message();
  EXPECT_EQ(backend->kv_cache_spec()->k_bytes_per_token_per_head, 256u);
  Scenario scenario(shape, *backend, 64, seed);
  auto out = scenario.step({{0, 300}});
  ASSERT_TRUE(out);
  // K/V are rounded to f16 in the cache (relative 2^-11 each): the outputs move by ~1e-3 at most.
  const auto result = scenario.compare(*out, 3e-3, 3e-3);
  EXPECT_LE(result.worst_ratio, 1.0) << "max |error| " << result.max_abs_error;
}

TEST(ReferenceAttention, KvSharingReadsTheTargetLayersPages) {
  LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 64;
  const uint64_t seed = test_seed();
  auto owner = create_backend("reference", shape.layer_spec(0, 2), "{}");
  ASSERT_TRUE(owner);
  atb_layer_spec shared_spec = shape.layer_spec(1, 2);
  shared_spec.kv_shared_with_layer = 0;
  auto sharer = create_backend("reference", shared_spec, "{}");
  ASSERT_TRUE(sharer) << sharer.error().message();
  EXPECT_EQ(sharer->kv_cache_spec()->writes_kv, 0);

  Scenario scenario(shape, *owner, 64, seed);
  auto written = scenario.step({{0, 200}});
  ASSERT_TRUE(written);
  // Layer 1: new queries for the same 200 positions, no K/V, reading layer 0's pool.
  host::HostTensor query(shape.dtype, 200, shape.num_query_heads, shape.head_size_k);
  host::HostTensor output(shape.dtype, 200, shape.num_query_heads, shape.head_size_v);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<float> normal;
  for (int t = 0; t < 200; ++t)
    for (int h = 0; h < shape.num_query_heads; ++h)
      for (int d = 0; d < shape.head_size_k; ++d) query.set(t, h, d, normal(rng));
  const atb_forward_args args = host::make_forward_args(scenario.pool(), written->batch, query.descriptor(), nullptr,
                                                        nullptr, output.descriptor());
  const std::vector<std::byte> before(scenario.pool().data(),
                                      scenario.pool().data() + scenario.pool().stride_bytes() * 64);
  ASSERT_TRUE(sharer->forward(args));
  EXPECT_TRUE(std::equal(before.begin(), before.end(), scenario.pool().data())) << "a KV-sharing layer wrote pages";
  // Same K/V as layer 0, new queries: compare through the oracle by swapping the queries in.
  StepOutput shared{written->batch, std::move(query), std::move(output)};
  expect_within(scenario, shared, "KV-sharing layer");
}

TEST(ReferenceAttention, WriteKvOnlyFillsTheCacheWithoutAttention) {
  LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 64;
  const uint64_t seed = test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto backend = create_backend("reference", shape.layer_spec(), "{}");
  ASSERT_TRUE(backend);
  Scenario scenario(shape, *backend, 64, seed);
  scenario.set_write_kv_only(true);
  ASSERT_TRUE(scenario.step({{0, 300}, {1, 17}}));
  scenario.set_write_kv_only(false);
  auto decode = scenario.step({{0, 1}, {1, 2}});
  ASSERT_TRUE(decode) << decode.error().message();
  expect_within(scenario, *decode, "decode after a write-only prefill");
}

}  // namespace
}  // namespace atb::test
