// Lloyd–Max scalar quantizers fitted to a known density by numerical integration (never by
// sampling): the codebooks of TurboQuant.  After a random rotation every coordinate of a vector
// follows one known distribution, so one codebook per bit width is near-optimal for all of them.
#pragma once

#include <functional>
#include <vector>

namespace tq {

// A probability density on [lower, upper] (it need not be normalised).
struct Density {
  std::function<double(double)> pdf;
  double lower;
  double upper;
};

// The unit normal, truncated at +-12 (the mass beyond is below 1e-32).
Density unit_normal_density();

// One coordinate of a uniformly random point on the unit sphere in R^d, scaled by sqrt(d) so its
// variance is 1: density proportional to (1 - x^2/d)^((d-3)/2) on [-sqrt(d), sqrt(d)].  This is the
// exact distribution of a rotated, normalised head vector's coordinates (d >= 2).
Density sphere_coordinate_density(int dimension);

struct Codebook {
  std::vector<double> centroids;   // ascending, 2^bits of them
  std::vector<double> boundaries;  // the 2^bits - 1 decision thresholds (midpoints of centroids)
  double distortion = 0;           // E[(X - Q(X))^2] under the density, normalised
  int iterations = 0;
};

// The Lloyd–Max fixed point (every centroid the mean of its cell, every boundary the midpoint of its
// centroids), solved by Newton iteration from the high-resolution (Panter–Dite) start until no
// centroid moves by more than `tolerance`.
// Integrals use composite Gauss–Legendre quadrature on each cell.
Codebook fit_lloyd_max(const Density& density, int levels, double tolerance = 1e-10, int max_iterations = 200);

}  // namespace tq
