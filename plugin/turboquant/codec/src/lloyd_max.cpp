#include <tq/lloyd_max.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace tq {
namespace {

// 8-point Gauss–Legendre nodes and weights on [-1, 1].
constexpr std::array<double, 8> kNodes = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                                          -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                                          0.7966664774136267,  0.9602898564975363};
constexpr std::array<double, 8> kWeights = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                                            0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                                            0.2223810344533745, 0.1012285362903763};

// Moments of the density on [a, b]: mass, first moment, second moment, by composite Gauss–Legendre
// over `panels` equal panels.
struct Moments {
  double m0 = 0, m1 = 0, m2 = 0;
};

Moments integrate(const Density& density, double a, double b, int panels = 64) {
  Moments moments;
  if (!(b > a)) return moments;
  const double width = (b - a) / panels;
  for (int p = 0; p < panels; ++p) {
    const double center = a + (p + 0.5) * width, half = 0.5 * width;
    for (size_t k = 0; k < kNodes.size(); ++k) {
      const double x = center + half * kNodes[k];
      const double w = kWeights[k] * half * density.pdf(x);
      moments.m0 += w;
      moments.m1 += w * x;
      moments.m2 += w * x * x;
    }
  }
  return moments;
}

}  // namespace

Density unit_normal_density() {
  return {[](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }, -12.0, 12.0};
}

Density sphere_coordinate_density(int dimension) {
  const double d = dimension;
  const double limit = std::sqrt(d);
  const double power = (d - 3) / 2;
  return {[d, power](double x) {
            const double u = 1 - x * x / d;
            return u <= 0 ? 0.0 : std::pow(u, power);
          },
          -limit, limit};
}

Codebook fit_lloyd_max(const Density& density, int levels, double tolerance, int max_iterations) {
  Codebook book;
  const Moments total = integrate(density, density.lower, density.upper, 4096);
  // Start from the centroids of equal-probability cells.
  std::vector<double> cuts{density.lower};
  {
    const int steps = 1 << 16;
    const double width = (density.upper - density.lower) / steps;
    double mass = 0;
    int next = 1;
    for (int i = 0; i < steps && next < levels; ++i) {
      const double x = density.lower + (i + 1) * width;
      mass += integrate(density, x - width, x, 1).m0;
      if (mass >= total.m0 * next / levels) {
        cuts.push_back(x);
        ++next;
      }
    }
    while (int(cuts.size()) < levels) cuts.push_back(density.upper);
    cuts.push_back(density.upper);
  }
  book.centroids.resize(size_t(levels));
  for (int i = 0; i < levels; ++i) {
    const Moments cell = integrate(density, cuts[size_t(i)], cuts[size_t(i) + 1]);
    book.centroids[size_t(i)] = cell.m0 > 0 ? cell.m1 / cell.m0 : 0.5 * (cuts[size_t(i)] + cuts[size_t(i) + 1]);
  }
  book.boundaries.resize(size_t(levels - 1));
  // Cell i of the current codebook: [boundary i-1, boundary i], the support's ends outside.
  auto cell_moments = [&](int i) {
    const double a = i == 0 ? density.lower : book.boundaries[size_t(i) - 1];
    const double b = i + 1 == levels ? density.upper : book.boundaries[size_t(i)];
    return integrate(density, a, b);
  };
  for (book.iterations = 0; book.iterations < max_iterations; ++book.iterations) {
    for (int i = 0; i + 1 < levels; ++i)
      book.boundaries[size_t(i)] = 0.5 * (book.centroids[size_t(i)] + book.centroids[size_t(i) + 1]);
    double moved = 0;
    for (int i = 0; i < levels; ++i) {
      const Moments cell = cell_moments(i);
      if (cell.m0 <= 0) continue;
      const double updated = cell.m1 / cell.m0;
      moved = std::max(moved, std::abs(updated - book.centroids[size_t(i)]));
      book.centroids[size_t(i)] = updated;
    }
    if (moved < tolerance) break;
  }
  for (int i = 0; i + 1 < levels; ++i)
    book.boundaries[size_t(i)] = 0.5 * (book.centroids[size_t(i)] + book.centroids[size_t(i) + 1]);
  double error = 0;
  for (int i = 0; i < levels; ++i) {
    const Moments cell = cell_moments(i);
    const double c = book.centroids[size_t(i)];
    error += cell.m2 - 2 * c * cell.m1 + c * c * cell.m0;  // integral of (x - c)^2
  }
  book.distortion = error / total.m0;
  return book;
}

}  // namespace tq
