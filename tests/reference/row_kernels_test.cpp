// The AVX2 row kernels against the scalar ones (the oracle) on fresh random inputs of many shapes.
#include <gtest/gtest.h>

#include <atb/half.hpp>
#include <atb/plugin/row_kernels.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "../support/seed.hpp"

namespace atb::plugin {
namespace {

std::vector<std::byte> random_rows(std::mt19937_64& rng, int32_t dtype, int n, int d) {
  std::vector<std::byte> rows(size_t(n) * d * dtype_size(dtype));
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < int64_t(n) * d; ++i) store_from_f32(rows.data(), dtype, i, normal(rng));
  return rows;
}

TEST(RowKernels, Avx2MatchesScalar) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C; only the scalar kernels run here";
  const uint64_t seed = test::test_seed();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int trial = 0; trial < 300; ++trial) {
    const int32_t dtype = std::uniform_int_distribution<int32_t>(1, 3)(rng);
    const int d = std::uniform_int_distribution<int>(1, 300)(rng);
    const int n = std::uniform_int_distribution<int>(1, 40)(rng);
    const int count = std::uniform_int_distribution<int>(1, 9)(rng);
    SCOPED_TRACE("seed " + std::to_string(seed) + " dtype " + dtype_name(dtype) + " d " + std::to_string(d) +
                 " n " + std::to_string(n) + " count " + std::to_string(count));
    const auto rows = random_rows(rng, dtype, n, d);
    std::vector<float> queries(size_t(count) * d), probs(size_t(count) * n);
    for (auto& q : queries) q = normal(rng);
    for (auto& p : probs) p = std::abs(normal(rng));
    const RowKernels scalar = scalar_row_kernels(dtype);
    const RowKernels fast = avx2_row_kernels(dtype);

    std::vector<float> want(size_t(count) * n), got(size_t(count) * n);
    scalar.dot(queries.data(), count, rows.data(), n, d, want.data());
    fast.dot(queries.data(), count, rows.data(), n, d, got.data());
    for (size_t i = 0; i < want.size(); ++i)  // sums of d products of N(0,1): |error| ~ d * 2^-24 * sqrt(d)
      ASSERT_NEAR(got[i], want[i], 1e-5 * d) << "dot " << i;

    std::vector<float> acc_want(size_t(count) * d), acc_got;
    for (auto& a : acc_want) a = normal(rng);
    acc_got = acc_want;
    scalar.accumulate(probs.data(), count, rows.data(), n, d, acc_want.data());
    fast.accumulate(probs.data(), count, rows.data(), n, d, acc_got.data());
    for (size_t i = 0; i < acc_want.size(); ++i) ASSERT_NEAR(acc_got[i], acc_want[i], 1e-5 * n) << "accumulate " << i;
  }
}

}  // namespace
}  // namespace atb::plugin
