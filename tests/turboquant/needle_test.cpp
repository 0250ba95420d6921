// Needle in a haystack: one key aligned with the query planted among N random keys.  With K at 3
// bits or more the needle keeps its attention weight (and so stays the top-weighted position) for
// every K format, up to N = 64K.
#include <gtest/gtest.h>

#include <tq/format.hpp>

#include <cmath>
#include <cstdio>
#include <random>

#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb::test {
namespace {

constexpr int kHeadSize = 128;
constexpr double kNeedleLogit = 14.0;  // random keys' logits are ~N(0, 1)

// The attention weight the needle gets: V is zero everywhere except the needle's, which is e_0, so
// output[0] is the needle's weight.  K/V and the query are the same for every backend (seeded).
double needle_weight(const std::string& backend_name, const std::string& config, int context, uint64_t seed) {
  LayerShape shape;
  shape.num_query_heads = shape.num_kv_heads = 1;
  shape.head_size_k = shape.head_size_v = kHeadSize;
  shape.dtype = ATB_DTYPE_F32;
  auto backend = create_backend(backend_name, shape.layer_spec(), config);
  EXPECT_TRUE(backend) << backend.error().message();
  if (!backend) return -1;
  const int64_t pages = (context + 1 + shape.block_size - 1) / shape.block_size;
  auto pool = host::PagePool::allocate(*backend->kv_cache_spec(), pages);
  host::PagedKvManager manager(shape.block_size, pages, seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> query(kHeadSize);
  double query_norm2 = 0;
  for (float& q : query) {
    q = normal(rng);
    query_norm2 += double(q) * q;
  }
  const int needle = std::uniform_int_distribution<int>(0, context - 1)(rng);
  const double needle_scale = kNeedleLogit * std::sqrt(double(kHeadSize)) / query_norm2;

  constexpr int kChunk = 4096;
  for (int done = 0; done < context; done += kChunk) {
    const int n = std::min(kChunk, context - done);
    auto batch = manager.schedule({{0, n}});
    host::HostTensor key(ATB_DTYPE_F32, n, 1, kHeadSize), value(ATB_DTYPE_F32, n, 1, kHeadSize);
    for (int t = 0; t < n; ++t) {
      const bool is_needle = done + t == needle;
      for (int d = 0; d < kHeadSize; ++d) {
        key.set(t, 0, d, is_needle ? float(needle_scale * query[size_t(d)]) : normal(rng));
        value.set(t, 0, d, is_needle && d == 0 ? 1.0f : 0.0f);
      }
    }
    atb_forward_args args =
        host::make_forward_args(*pool, *batch, nullptr, key.descriptor(), value.descriptor(), nullptr);
    args.flags = ATB_FORWARD_WRITE_KV_ONLY;
    EXPECT_TRUE(backend->forward(args));
  }
  // The decode token itself: a zero key (logit 0) and a zero value.
  auto batch = manager.schedule({{0, 1}});
  host::HostTensor q(ATB_DTYPE_F32, 1, 1, kHeadSize), key(ATB_DTYPE_F32, 1, 1, kHeadSize),
      value(ATB_DTYPE_F32, 1, 1, kHeadSize), out(ATB_DTYPE_F32, 1, 1, kHeadSize);
  for (int d = 0; d < kHeadSize; ++d) q.set(0, 0, d, query[size_t(d)]);
  EXPECT_TRUE(backend->forward(
      host::make_forward_args(*pool, *batch, q.descriptor(), key.descriptor(), value.descriptor(), out.descriptor())));
  return out.get(0, 0, 0);
}

TEST(Needle, KeysOfThreeBitsOrMoreKeepTheNeedleOnTop) {
  const uint64_t seed = test_seed();
  for (int context : {4096, 65536}) {
    const double exact = needle_weight("reference", "{}", context, seed);
    ASSERT_GT(exact, 0.5) << "the planted needle should dominate the uncompressed attention";
    std::printf("needle, %d keys: reference weight %.4f\n", context, exact);
    for (const tq::Format& format : tq::formats_for(tq::Role::key)) {
      if (format.bits < 3) continue;
      const std::string config = "{\"k_quant\": \"" + std::string(format.name) + "\", \"v_quant\": \"f16\"}";
      const double weight = needle_weight("turboquant", config, context, seed);
      std::printf("needle, %d keys: K %-5s weight %.4f\n", context, std::string(format.name).c_str(), weight);
      // Above one half it outweighs all other positions together, so it is the top-weighted one.  (How
      // much weight it keeps varies with the draw, most for the QJL sketch of tqp: it is printed.)
      EXPECT_GT(weight, 0.5) << format.name << " at " << context << " keys";
    }
  }
}

}  // namespace
}  // namespace atb::test
