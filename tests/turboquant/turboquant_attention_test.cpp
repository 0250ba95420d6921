// The turboquant backend, loaded through the SDK registry, against a plain f64 attention over the
// cache *as its codec decodes it*: proof that attention on the codes computes exactly the compressed
// model.  Also: uncompressed layers match the reference bit for bit, and tensor-parallel shards
// match the whole.
#include <gtest/gtest.h>

#include <tq/channel_maxima.hpp>
#include <tq/quantizer.hpp>
#include <tq/rotation.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>

#include "../support/decoded_cache.hpp"
#include "../support/oracle_bounds.hpp"
#include "../support/plugins.hpp"
#include "../support/scenario.hpp"
#include "../support/temp_file.hpp"

namespace atb::test {
namespace {

template <class T>
T pick(std::mt19937_64& rng, const std::vector<T>& choices) {
  return choices[std::uniform_int_distribution<size_t>(0, choices.size() - 1)(rng)];
}

LayerShape random_shape(std::mt19937_64& rng) {
  LayerShape shape;
  shape.head_size_k = pick(rng, std::vector<int>{64, 128, 80, 96});
  shape.head_size_v = std::bernoulli_distribution(0.8)(rng) ? shape.head_size_k : 64;
  shape.num_kv_heads = pick(rng, std::vector<int>{1, 2});
  shape.num_query_heads = shape.num_kv_heads * pick(rng, std::vector<int>{1, 4, 8});
  shape.block_size = pick(rng, std::vector<int>{16, 32, 1, 5, 48, 128});  // and pages splitting 64-key spans
  shape.sliding_window = std::bernoulli_distribution(0.3)(rng) ? pick(rng, std::vector<int>{1, 7, 64, 500}) : 0;
  shape.soft_cap = std::bernoulli_distribution(0.3)(rng) ? pick(rng, std::vector<float>{2.0f, 30.0f}) : 0.0f;
  shape.scale = std::bernoulli_distribution(0.3)(rng) ? 0.25f : 0.0f;
  shape.dtype = pick(rng, std::vector<int32_t>{ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16});
  return shape;
}

void expect_matches_decoded(const Scenario& scenario, const StepOutput& out, const std::string& what) {
  const Bound bound = bound_for(scenario.shape().dtype);
  const auto result = scenario.compare(out, bound.atol, bound.rtol);
  EXPECT_LE(result.worst_ratio, 1.0) << what << ": max |error| " << result.max_abs_error << " over "
                                     << result.checked_tokens << " tokens";
  EXPECT_GT(result.checked_tokens, 0) << what;
}

void run_pair(std::mt19937_64& rng, const std::string& k_name, const std::string& v_name, uint64_t seed) {
  const LayerShape shape = random_shape(rng);
  const std::string config = "{\"k_quant\": \"" + k_name + "\", \"v_quant\": \"" + v_name +
                             "\", \"threads\": " + std::to_string(pick(rng, std::vector<int>{1, 2, 3})) +
                             ", \"kernel\": \"" + pick(rng, std::vector<std::string>{"avx2", "scalar"}) + "\"}";
  SCOPED_TRACE("seed " + std::to_string(seed) + ": " + shape.describe() + " " + config);
  auto backend = create_backend("turboquant", shape.layer_spec(), config);
  ASSERT_TRUE(backend) << backend.error().message();
  DecodedCache decoded(shape, k_name, v_name, 0, 0);
  Scenario scenario(shape, *backend, pool_pages(shape, 256), rng(), rng());
  scenario.set_stored_row(decoded.stored_row());

  const int num_seqs = std::uniform_int_distribution<int>(1, 4)(rng);
  std::vector<host::PagedKvManager::SequenceStep> prefill;
  for (int s = 0; s < num_seqs; ++s)
    prefill.push_back({s, std::uniform_int_distribution<int32_t>(1, s == 0 ? 700 : 80)(rng)});
  auto first = scenario.step(prefill);
  ASSERT_TRUE(first) << first.error().message();
  expect_matches_decoded(scenario, *first, "prefill");

  std::vector<host::PagedKvManager::SequenceStep> mixed;
  for (int s = 0; s < num_seqs; ++s)
    mixed.push_back(
        {s, std::bernoulli_distribution(0.5)(rng) ? 1 : std::uniform_int_distribution<int32_t>(2, 40)(rng)});
  mixed.push_back({100, std::uniform_int_distribution<int32_t>(1, 30)(rng)});
  std::shuffle(mixed.begin(), mixed.end(), rng);
  auto second = scenario.step(mixed);
  ASSERT_TRUE(second) << second.error().message();
  expect_matches_decoded(scenario, *second, "decode / chunked prefill / new prefill");
}

TEST(TurboquantAttention, EveryKeyFormatMatchesF64OverTheDecodedCache) {
  const uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  std::vector<std::string> values;
  for (const auto& f : tq::formats_for(tq::Role::value)) values.emplace_back(f.name);
  for (const auto& k : tq::formats_for(tq::Role::key)) run_pair(rng, std::string(k.name), pick(rng, values), seed);
}

TEST(TurboquantAttention, EveryValueFormatMatchesF64OverTheDecodedCache) {
  const uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys;
  for (const auto& f : tq::formats_for(tq::Role::key)) keys.emplace_back(f.name);
  for (const auto& v : tq::formats_for(tq::Role::value)) run_pair(rng, pick(rng, keys), std::string(v.name), seed);
}

// Kernel "avx2_int8" (auto's choice where the CPU has AVX2) rounds the query to int8, a tile's
// weights to bytes and centroids to a 7-bit grid: no longer f32-exact, so its outputs are held to a
// relative L2 error against the same f64 oracle.  These random K/V give nearly flat attention over
// hundreds of rows, the worst case for relative error (the output is a small mean, each weight only
// ~16 bytes' worth; f16/bf16 outputs add their own rounding): measured 0.2-2.4% over 20 runs, held
// to 4%, against the formats' own 10-20% and errors of order 100% from a wrong byte order or scale.
TEST(TurboquantAttention, IntegerKernelsStayCloseToF64OverTheDecodedCache) {
  const uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  const std::vector<std::pair<std::string, std::string>> pairs = {{"q8_0", "q3_0"}, {"q4_0", "q3_0"}, {"tq4", "tq3"},
                                                                  {"tq3", "tq3"},   {"uint2", "tq4"}, {"tq2", "q4_0"}};
  for (const auto& [k_name, v_name] : pairs) {
    LayerShape shape = random_shape(rng);
    shape.head_size_k = shape.head_size_v = pick(rng, std::vector<int>{128, 256});
    const std::string config =
        "{\"k_quant\": \"" + k_name + "\", \"v_quant\": \"" + v_name + "\", \"kernel\": \"avx2_int8\", \"threads\": 2}";
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + shape.describe() + " " + config);
    auto backend = create_backend("turboquant", shape.layer_spec(), config);
    if (!backend && backend.error().code() == ATB_ERR_UNSUPPORTED)
      GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C, so kernel avx2_int8 is refused: " << backend.error().message();
    ASSERT_TRUE(backend) << backend.error().message();
    DecodedCache decoded(shape, k_name, v_name, 0, 0);
    Scenario scenario(shape, *backend, pool_pages(shape, 256), rng(), rng());
    scenario.set_stored_row(decoded.stored_row());
    auto prefill = scenario.step({{0, 600}, {1, 40}});
    ASSERT_TRUE(prefill) << prefill.error().message();
    const double prefill_error = scenario.relative_l2(*prefill);
    auto decode = scenario.step({{0, 1}, {1, 1}, {2, 25}});
    ASSERT_TRUE(decode) << decode.error().message();
    const double decode_error = scenario.relative_l2(*decode);
    std::printf("%s/%s: relative L2 %.4f (prefill), %.4f (decode and a new prompt)\n", k_name.c_str(), v_name.c_str(),
                prefill_error, decode_error);
    EXPECT_LT(prefill_error, 0.04);
    EXPECT_LT(decode_error, 0.04);
  }
}

// The same schedule through two backends; outputs compared byte for byte.
void expect_bit_identical(const LayerShape& shape, const std::string& reference_config, const atb_layer_spec& tq_spec,
                          const std::string& tq_config, uint64_t seed) {
  auto reference = create_backend("reference", shape.layer_spec(), reference_config);
  auto turboquant = create_backend("turboquant", tq_spec, tq_config);
  ASSERT_TRUE(reference && turboquant);
  Scenario a(shape, *reference, 128, seed, 7), b(shape, *turboquant, 128, seed, 7);
  for (const auto& steps : std::vector<std::vector<host::PagedKvManager::SequenceStep>>{
           {{0, 300}, {1, 17}}, {{0, 1}, {1, 9}, {2, 40}}, {{0, 1}, {2, 1}}}) {
    auto out_a = a.step(steps);
    auto out_b = b.step(steps);
    ASSERT_TRUE(out_a && out_b);
    ASSERT_EQ(out_a->output.byte_size(), out_b->output.byte_size());
    EXPECT_EQ(std::memcmp(out_a->output.bytes(), out_b->output.bytes(), out_a->output.byte_size()), 0) << tq_config;
  }
}

TEST(TurboquantAttention, UncompressedLayersMatchTheReferenceBitForBit) {
  const uint64_t seed = test_seed();
  for (int32_t dtype : {ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16}) {
    LayerShape shape;
    shape.dtype = dtype;
    shape.num_query_heads = 8;
    shape.num_kv_heads = 2;
    shape.head_size_k = shape.head_size_v = 80;
    // Layer 0 of 4 and layer 3 of 4 fall under layer-adaptive precision; turboquant: false too.
    expect_bit_identical(shape, "{}", shape.layer_spec(0, 4), R"({"uncompressed_first_layers": 1, "k_quant": "tq3"})",
                         seed);
    expect_bit_identical(shape, "{}", shape.layer_spec(3, 4), R"({"uncompressed_last_layers": 2, "v_quant": "q2_0"})",
                         seed);
    expect_bit_identical(shape, "{}", shape.layer_spec(1, 4), R"({"turboquant": false})", seed);
  }
  // f16 formats on an f16 layer are the reference's f16 cache.
  LayerShape shape;
  shape.dtype = ATB_DTYPE_F16;
  expect_bit_identical(shape, "{}", shape.layer_spec(), R"({"k_quant": "f16", "v_quant": "f16"})", seed);
  // f16 formats on an f32 layer equal the reference with an f16 cache.
  shape.dtype = ATB_DTYPE_F32;
  expect_bit_identical(shape, R"({"cache_dtype": "f16"})", shape.layer_spec(),
                       R"({"k_quant": "f16", "v_quant": "f16"})", seed);
}

// A layer sharing layer 1's cache decodes it with layer 1's rotations and formats, even where its own
// index would pick others (layer-adaptive precision).
TEST(TurboquantAttention, KvSharingLayersDecodeTheTargetLayersCache) {
  const uint64_t seed = test_seed();
  LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 64;
  for (const bool target_uncompressed : {false, true}) {
    const std::string config =
        std::string(R"({"k_quant": "tq4", "v_quant": "q3_0", "kernel": "avx2", "uncompressed_first_layers": )") +
        (target_uncompressed ? "2" : "0") + "}";
    SCOPED_TRACE(config);
    auto owner = create_backend("turboquant", shape.layer_spec(1, 4), config);
    atb_layer_spec shared_spec = shape.layer_spec(3, 4);
    shared_spec.kv_shared_with_layer = 1;
    auto sharer = create_backend("turboquant", shared_spec, config);
    ASSERT_TRUE(owner && sharer);
    EXPECT_EQ(sharer->kv_cache_spec()->writes_kv, 0);
    EXPECT_EQ(sharer->kv_cache_spec()->page_bytes, owner->kv_cache_spec()->page_bytes);
    Scenario scenario(shape, *owner, 64, seed);
    DecodedCache decoded(shape, "tq4", "q3_0", 1, 0);
    if (!target_uncompressed) scenario.set_stored_row(decoded.stored_row());
    auto written = scenario.step({{0, 150}});
    ASSERT_TRUE(written);
    host::HostTensor query(shape.dtype, 150, shape.num_query_heads, shape.head_size_k);
    host::HostTensor output(shape.dtype, 150, shape.num_query_heads, shape.head_size_v);
    std::mt19937_64 rng(seed + 1);
    std::normal_distribution<float> normal;
    for (int t = 0; t < 150; ++t)
      for (int h = 0; h < shape.num_query_heads; ++h)
        for (int d = 0; d < shape.head_size_k; ++d) query.set(t, h, d, normal(rng));
    ASSERT_TRUE(sharer->forward(host::make_forward_args(scenario.pool(), written->batch, query.descriptor(), nullptr,
                                                        nullptr, output.descriptor())));
    StepOutput shared{written->batch, std::move(query), std::move(output)};
    expect_matches_decoded(scenario, shared, "KV-sharing layer");
  }
}

// 8 KV heads (32 query heads) in one backend, and split over two backends holding global KV heads
// 0-3 and 4-7: each shard rotates (and smooths) its heads as the whole does, so outputs are identical.
void expect_shards_match_the_whole(const std::string& config, std::mt19937_64& rng) {
  SCOPED_TRACE(config);
  LayerShape whole;
  whole.num_query_heads = 32;
  whole.num_kv_heads = 8;
  whole.head_size_k = whole.head_size_v = 128;
  whole.dtype = ATB_DTYPE_F32;
  LayerShape half = whole;
  half.num_query_heads = 16;
  half.num_kv_heads = 4;
  auto full = create_backend("turboquant", whole.layer_spec(2, 4), config);
  atb_layer_spec shard_spec[2] = {half.layer_spec(2, 4), half.layer_spec(2, 4)};
  shard_spec[1].first_global_kv_head = 4;
  for (auto& spec : shard_spec) spec.num_global_kv_heads = 8;
  auto shard0 = create_backend("turboquant", shard_spec[0], config);
  auto shard1 = create_backend("turboquant", shard_spec[1], config);
  ASSERT_TRUE(full && shard0 && shard1);

  const int64_t pages = 64;
  host::PagedKvManager manager(whole.block_size, pages, 3);
  auto pool_full = host::PagePool::allocate(*full->kv_cache_spec(), pages);
  auto pool0 = host::PagePool::allocate(*shard0->kv_cache_spec(), pages);
  auto pool1 = host::PagePool::allocate(*shard1->kv_cache_spec(), pages);
  ASSERT_TRUE(pool_full && pool0 && pool1);
  std::normal_distribution<float> normal;
  for (const auto& steps :
       std::vector<std::vector<host::PagedKvManager::SequenceStep>>{{{0, 200}, {1, 33}}, {{0, 1}, {1, 5}}}) {
    auto batch = manager.schedule(steps);
    ASSERT_TRUE(batch);
    const int32_t tokens = batch->num_tokens;
    host::HostTensor q(ATB_DTYPE_F32, tokens, 32, 128), k(ATB_DTYPE_F32, tokens, 8, 128),
        v(ATB_DTYPE_F32, tokens, 8, 128);
    host::HostTensor out_full(ATB_DTYPE_F32, tokens, 32, 128), out_split(ATB_DTYPE_F32, tokens, 32, 128);
    for (auto* tensor : {&q, &k, &v})
      for (int32_t t = 0; t < tokens; ++t)
        for (int64_t h = 0; h < tensor->size(1); ++h)
          for (int d = 0; d < 128; ++d) tensor->set(t, h, d, normal(rng));
    ASSERT_TRUE(full->forward(host::make_forward_args(*pool_full, *batch, q.descriptor(), k.descriptor(),
                                                      v.descriptor(), out_full.descriptor())));
    // Shard s sees query heads 16s .. 16s+15 and KV heads 4s .. 4s+3 of the same tensors.
    for (int s = 0; s < 2; ++s) {
      auto slice = [&](const host::HostTensor& tensor, int64_t first_head, int64_t heads) {
        atb_tensor view = *tensor.descriptor();
        view.data = static_cast<float*>(view.data) + first_head * view.strides[1];
        view.shape[1] = heads;
        return view;
      };
      const atb_tensor qs = slice(q, 16 * s, 16), ks = slice(k, 4 * s, 4), vs = slice(v, 4 * s, 4),
                       os = slice(out_split, 16 * s, 16);
      auto& backend = s == 0 ? *shard0 : *shard1;
      ASSERT_TRUE(backend.forward(host::make_forward_args(s == 0 ? *pool0 : *pool1, *batch, &qs, &ks, &vs, &os)));
    }
    EXPECT_EQ(std::memcmp(out_full.bytes(), out_split.bytes(), out_full.byte_size()), 0);
  }
}

TEST(TurboquantAttention, TensorParallelShardsMatchTheWholeBitForBit) {
  std::mt19937_64 rng(test_seed());
  expect_shards_match_the_whole(R"({"k_quant": "q4_0", "v_quant": "tq3"})", rng);
  // Smoothing from a file of global KV heads, each with outlier channels of its own.
  tq::ChannelMaxima maxima(4, 8, 128);
  for (int l = 0; l < 4; ++l)
    for (int h = 0; h < 8; ++h)
      for (const tq::Role role : {tq::Role::key, tq::Role::value}) {
        float* row = maxima.row(role, l, h);
        std::fill(row, row + 128, 3.0f);
        for (int i = 0; i < 3; ++i) row[std::uniform_int_distribution<int>(0, 127)(rng)] = 60.0f;
      }
  const TempFile file("shards.json");
  std::ofstream(file.path()) << tq::channel_maxima_json(maxima, "shard test");
  expect_shards_match_the_whole(R"({"k_quant": "tq3", "v_quant": "tq3", "k_smoothing": "file",)"
                                R"( "v_smoothing": "file", "smoothing_file": ")" +
                                    file.string() + "\"}",
                                rng);
}

}  // namespace
}  // namespace atb::test
