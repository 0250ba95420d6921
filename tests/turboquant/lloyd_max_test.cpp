// The codebooks are derived, not pasted: checked against the published Lloyd–Max values for a unit
// normal and against the sphere-coordinate density's known limits.
#include <gtest/gtest.h>

#include <tq/lloyd_max.hpp>

#include <cmath>

namespace tq {
namespace {

TEST(LloydMax, ThreeBitUnitNormalCentroids) {
  const Codebook book = fit_lloyd_max(unit_normal_density(), 8);
  // To 4 decimals as the tables print them (the outermost is 2.151946, printed 2.1520 there).
  const double expected[4] = {0.2451, 0.7560, 1.3439, 2.1520};
  ASSERT_EQ(book.centroids.size(), 8u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(book.centroids[size_t(4 + i)], expected[i], 1e-4) << i;
    EXPECT_NEAR(book.centroids[size_t(3 - i)], -expected[i], 1e-4) << i;
  }
}

TEST(LloydMax, UnitNormalDistortionPerBitWidth) {
  const double expected[4] = {0.3634, 0.1175, 0.03455, 0.009497};
  for (int bits = 1; bits <= 4; ++bits) {
    const Codebook book = fit_lloyd_max(unit_normal_density(), 1 << bits);
    const double tolerance = bits == 4 ? 5e-6 : (bits == 3 ? 5e-6 : 5e-5);
    EXPECT_NEAR(book.distortion, expected[bits - 1], tolerance) << bits << " bits";
    for (size_t i = 1; i < book.centroids.size(); ++i) EXPECT_LT(book.centroids[i - 1], book.centroids[i]);
  }
}

TEST(LloydMax, OneBitCentroidIsTheHalfNormalMean) {
  const Codebook book = fit_lloyd_max(unit_normal_density(), 2);
  EXPECT_NEAR(book.centroids[1], std::sqrt(2 / M_PI), 1e-9);
  EXPECT_NEAR(book.distortion, 1 - 2 / M_PI, 1e-9);
}

TEST(LloydMax, SphereCoordinateApproachesTheNormalAsDimensionGrows) {
  // At d = 128 the scaled coordinate is close to N(0, 1); at d = 16 its tails are visibly lighter.
  const Codebook normal = fit_lloyd_max(unit_normal_density(), 8);
  const Codebook d128 = fit_lloyd_max(sphere_coordinate_density(128), 8);
  const Codebook d16 = fit_lloyd_max(sphere_coordinate_density(16), 8);
  EXPECT_NEAR(d128.centroids[7], normal.centroids[7], 0.03);
  EXPECT_LT(d16.centroids[7], d128.centroids[7]);
  EXPECT_LT(d128.distortion, normal.distortion);
  // One bit on the sphere: E|X| = sqrt(d) * Gamma(d/2) / (sqrt(pi) * Gamma((d+1)/2)).
  const int d = 64;
  const Codebook one_bit = fit_lloyd_max(sphere_coordinate_density(d), 2);
  const double mean_abs =
      std::sqrt(double(d)) * std::exp(std::lgamma(d / 2.0) - std::lgamma((d + 1) / 2.0)) / std::sqrt(M_PI);
  EXPECT_NEAR(one_bit.centroids[1], mean_abs, 1e-9);
}

}  // namespace
}  // namespace tq
