// The AVX2 kernels over encoded rows against the scalar ones (their oracle), for every format they
// cover, on fresh random rows, for head sizes with short last blocks and GQA groups of 1 to 9 heads.
#include <gtest/gtest.h>

#include <atb/plugin/row_kernels.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "../support/scattered_rows.hpp"
#include "../support/seed.hpp"
#include "avx2_code_kernels.hpp"
#include "avx2_int8_key_kernel.hpp"
#include "avx2_int8_value_kernel.hpp"
#include "scalar_code_kernels.hpp"

namespace atb::turboquant {
namespace {

// n encoded rows, and the kernels' list of them in a shuffled order (row j of the list: list[j]).
struct Rows {
  std::vector<uint8_t> bytes;
  int n;
  std::vector<const uint8_t*> list;
};

Rows encode_rows(const tq::Quantizer& quantizer, int n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  Rows rows{std::vector<uint8_t>(quantizer.row_bytes() * size_t(n)), n, {}};
  std::vector<float> x(static_cast<size_t>(quantizer.head_size()));
  for (int j = 0; j < n; ++j) {
    const float scale = std::exp(normal(rng));
    for (float& v : x) v = scale * normal(rng);
    quantizer.encode(x.data(), rows.bytes.data() + size_t(j) * quantizer.row_bytes());
  }
  rows.list = test::scattered_rows(rows.bytes, n, quantizer.row_bytes(), rng);
  return rows;
}

// The kernels sum the same products in another order: the rounding difference scales with the
// products' magnitudes, not with the sum (a small score of large rows cancels), so the bound is
// relative to the largest value of the call.
void expect_close(const std::vector<float>& fast, const std::vector<float>& slow, const std::string& what) {
  float largest = 0;
  for (float value : slow) largest = std::max(largest, std::abs(value));
  for (size_t i = 0; i < slow.size(); ++i) ASSERT_NEAR(fast[i], slow[i], 1e-4f * (1 + largest)) << what << " at " << i;
}

TEST(CodeKernels, Avx2MatchesScalarForEveryCoveredFormat) {
  if (!plugin::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: the AVX2 kernels cannot run here";
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal;
  int covered = 0;
  for (tq::Role role : {tq::Role::key, tq::Role::value})
    for (const tq::Format& format : tq::formats_for(role))
      for (int d : {48, 64, 80, 96, 128, 256}) {
        auto quantizer = std::move(*tq::make_quantizer(format, d));
        auto fast_key = role == tq::Role::key ? make_avx2_key_kernel(*quantizer) : nullptr;
        auto fast_value = role == tq::Role::value ? make_avx2_value_kernel(*quantizer) : nullptr;
        if (!fast_key && !fast_value) continue;
        ++covered;
        const auto slow_key = make_scalar_key_kernel(*quantizer);
        const auto slow_value = make_scalar_value_kernel(*quantizer);
        for (int count : {1, 2, 3, 4, 5, 8, 9})
          for (int n : {1, 2, 7, 16, 33}) {
            const std::string what = std::string(format.name) + " d=" + std::to_string(d) +
                                     " heads=" + std::to_string(count) + " rows=" + std::to_string(n);
            const Rows rows = encode_rows(*quantizer, n, rng);
            if (fast_key) {
              const int stride = d + slow_key->extra_floats();
              std::vector<float> queries(size_t(count) * size_t(stride));
              for (int g = 0; g < count; ++g) {
                for (int i = 0; i < d; ++i) queries[size_t(g) * stride + i] = normal(rng);
                slow_key->prepare(queries.data() + size_t(g) * stride);
              }
              std::vector<float> fast(size_t(count) * n), slow(size_t(count) * n);
              fast_key->score(rows.list.data(), n, queries.data(), count, stride, fast.data());
              slow_key->score(rows.list.data(), n, queries.data(), count, stride, slow.data());
              expect_close(fast, slow, "score " + what);
            } else {
              std::vector<float> probs(size_t(count) * n), start(size_t(count) * d);
              for (float& p : probs) p = std::abs(normal(rng));
              for (float& a : start) a = normal(rng);
              std::vector<float> fast = start, slow = start;
              fast_value->accumulate(rows.list.data(), n, probs.data(), count, fast.data());
              slow_value->accumulate(rows.list.data(), n, probs.data(), count, slow.data());
              expect_close(fast, slow, "accumulate " + what);
            }
          }
      }
  EXPECT_GT(covered, 60);  // affine and codebook formats of both roles at six head sizes
}

// The integer key kernel computes <q~, k~> (an int8 query, centroids on an 8-bit grid): every score
// within the error bound it documents of the scalar oracle's, for every format it covers, with
// queries whose blocks differ in scale by orders of magnitude.
TEST(CodeKernels, Int8KeyKernelStaysWithinItsBoundOfTheScalarKernel) {
  if (!plugin::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: the integer kernel cannot run here";
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal;
  int covered = 0;
  for (const tq::Format& format : tq::formats_for(tq::Role::key))
    for (int d : {64, 128, 256, 384}) {
      auto quantizer = std::move(*tq::make_quantizer(format, d));
      const auto fast = make_avx2_int8_key_kernel(*quantizer);
      if (!fast) continue;
      ++covered;
      const auto slow = make_scalar_key_kernel(*quantizer);
      // Up to a prefill item's 8 tokens x a GQA group of 4 query rows, and whole 64-key spans.
      for (int count : {1, 2, 3, 4, 5, 8, 9, 16, 19, 32})
        for (int n : {1, 2, 7, 16, 33, 64, 71}) {
          const std::string what = std::string(format.name) + " d=" + std::to_string(d) +
                                   " heads=" + std::to_string(count) + " rows=" + std::to_string(n);
          const Rows rows = encode_rows(*quantizer, n, rng);
          const int stride = d + fast->extra_floats(), slow_stride = d + slow->extra_floats();
          std::vector<float> raw(size_t(count) * d), prepared(size_t(count) * stride);
          std::vector<float> slow_prepared(size_t(count) * slow_stride);
          for (int g = 0; g < count; ++g) {
            float block_scale = 1;
            for (int i = 0; i < d; ++i) {
              if (i % 32 == 0) block_scale = std::exp(2 * normal(rng));
              raw[size_t(g) * d + i] = prepared[size_t(g) * stride + i] = slow_prepared[size_t(g) * slow_stride + i] =
                  block_scale * normal(rng);
            }
            fast->prepare(prepared.data() + size_t(g) * stride);
            slow->prepare(slow_prepared.data() + size_t(g) * slow_stride);
          }
          std::vector<float> integer(size_t(count) * n), exact(size_t(count) * n);
          fast->score(rows.list.data(), n, prepared.data(), count, stride, integer.data());
          slow->score(rows.list.data(), n, slow_prepared.data(), count, slow_stride, exact.data());
          std::vector<float> key(static_cast<size_t>(d));
          for (int g = 0; g < count; ++g)
            for (int j = 0; j < n; ++j) {
              const uint8_t* row = rows.list[size_t(j)];
              const float* query = raw.data() + size_t(g) * d;
              const double bound = int8_score_error_bound(*quantizer, query, row);
              quantizer->decode(row, key.data());
              double magnitude = 0;
              for (int i = 0; i < d; ++i) magnitude += std::abs(double(query[i]) * key[size_t(i)]);
              ASSERT_LT(bound, 0.1 * magnitude) << "the bound says nothing: " << what;
              const size_t at = size_t(g) * n + size_t(j);
              ASSERT_LE(std::abs(double(integer[at]) - exact[at]), bound) << what << " head " << g << " row " << j;
            }
        }
    }
  EXPECT_EQ(covered, 33);  // q8_0 int8 uint8 q4_0 int4 uint4 int2 uint2 tq2 tq3 tq4 at d = 128, 256, 384
}

// The integer value kernel sums weights rounded to their tile's byte grid times centroids on the
// table's grid: every output within the bound it documents of the scalar oracle's, for every format
// it covers, with tiles longer than its 32 rows and probabilities spanning orders of magnitude.
TEST(CodeKernels, Int8ValueKernelStaysWithinItsBoundOfTheScalarKernel) {
  if (!plugin::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2/FMA/F16C: the integer kernel cannot run here";
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal;
  int covered = 0;
  for (const tq::Format& format : tq::formats_for(tq::Role::value))
    for (int d : {32, 64, 96, 128, 256}) {
      auto quantizer = std::move(*tq::make_quantizer(format, d));
      const auto fast = make_avx2_int8_value_kernel(*quantizer);
      if (!fast) continue;
      ++covered;
      const auto slow = make_scalar_value_kernel(*quantizer);
      for (int count : {1, 2, 3, 4, 5, 8, 9, 32})
        for (int n : {1, 2, 7, 16, 33, 70}) {
          const std::string what = std::string(format.name) + " d=" + std::to_string(d) +
                                   " heads=" + std::to_string(count) + " rows=" + std::to_string(n);
          const Rows rows = encode_rows(*quantizer, n, rng);
          std::vector<float> decoded(size_t(n) * d);
          for (int j = 0; j < n; ++j) quantizer->decode(rows.list[size_t(j)], decoded.data() + size_t(j) * d);
          std::vector<float> probs(size_t(count) * n), start(size_t(count) * d);
          for (float& p : probs) p = std::exp(3 * normal(rng));
          for (float& a : start) a = normal(rng);
          std::vector<float> integer = start, exact = start;
          fast->accumulate(rows.list.data(), n, probs.data(), count, integer.data());
          slow->accumulate(rows.list.data(), n, probs.data(), count, exact.data());
          for (int g = 0; g < count; ++g) {
            const float* p = probs.data() + size_t(g) * n;
            const std::vector<double> bound = int8_accumulate_error_bound(*quantizer, rows.list.data(), n, p);
            double bounds = 0, magnitude = 0;
            for (int i = 0; i < d; ++i) {
              bounds += bound[size_t(i)];
              for (int j = 0; j < n; ++j) magnitude += std::abs(double(p[j]) * decoded[size_t(j) * d + i]);
            }
            // Worst case: half a byte of a tile's weight for each of its rows, up to 32 / 2 / 500 of it.
            ASSERT_LT(bounds, 0.25 * magnitude) << "the bound says nothing: " << what;
            for (int i = 0; i < d; ++i) {
              const size_t at = size_t(g) * d + size_t(i);
              ASSERT_LE(std::abs(double(integer[at]) - exact[at]), bound[size_t(i)] + 1e-6 * std::abs(start[at]))
                  << what << " head " << g << " coordinate " << i;
            }
          }
        }
    }
  EXPECT_EQ(covered, 20);  // q3_0 q4_0 tq3 tq4 at d = 32, 64, 96, 128, 256
}

}  // namespace
}  // namespace atb::turboquant
