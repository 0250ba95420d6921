// The AVX2 row kernels against the scalar ones (the oracle) on fresh random inputs of many shapes.
#include <gtest/gtest.h>

#include <atb/half.hpp>
#include <atb/plugin/row_kernels.hpp>
#include <atb/plugin/vector_math.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "../support/scattered_rows.hpp"
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
    SCOPED_TRACE("seed " + std::to_string(seed) + " dtype " + dtype_name(dtype) + " d " + std::to_string(d) + " n " +
                 std::to_string(n) + " count " + std::to_string(count));
    const auto buffer = random_rows(rng, dtype, n, d);
    std::vector<const void*> rows;
    for (const std::byte* row : test::scattered_rows(buffer, n, size_t(d) * dtype_size(dtype), rng))
      rows.push_back(row);
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

TEST(VectorMath, Avx2MatchesScalar) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C; only the scalar math runs here";
  const uint64_t seed = test::test_seed();
  std::mt19937_64 rng(seed);
  const VectorMath scalar = scalar_vector_math();
  const VectorMath fast = avx2_vector_math();
  for (int trial = 0; trial < 2000; ++trial) {
    const int n = std::uniform_int_distribution<int>(1, 70)(rng);
    const float spread = std::uniform_real_distribution<float>(0.1f, 120.0f)(rng);
    std::vector<float> values(static_cast<size_t>(n));
    for (auto& v : values) v = std::uniform_real_distribution<float>(-spread, spread)(rng);
    SCOPED_TRACE("seed " + std::to_string(seed) + " n " + std::to_string(n) + " spread " + std::to_string(spread));
    const float max_want = scalar.max(values.data(), n);
    ASSERT_EQ(fast.max(values.data(), n), max_want);
    std::vector<float> want = values, got = values;
    const float sum_want = scalar.exp_shifted_sum(want.data(), n, max_want);
    const float sum_got = fast.exp_shifted_sum(got.data(), n, max_want);
    for (int i = 0; i < n; ++i) {
      // Relative 4e-7 where exp is a normal f32; below that both are ~0 (the AVX2 version flushes).
      ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 4e-7 * want[size_t(i)] + 1e-37)
          << "x - max = " << values[size_t(i)] - max_want;
    }
    ASSERT_NEAR(sum_got, sum_want, 1e-6 * sum_want);
    const float factor = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    scalar.scale(want.data(), n, factor);
    fast.scale(got.data(), n, factor);
    for (int i = 0; i < n; ++i) ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 4e-7 * want[size_t(i)] + 1e-37);
  }
}

}  // namespace
}  // namespace atb::plugin
