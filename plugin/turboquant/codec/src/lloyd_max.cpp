#include <tq/lloyd_max.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>

namespace tq {
namespace {

// 8-point Gauss–Legendre nodes and weights on [-1, 1].
constexpr std::array<double, 8> kNodes = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                                          -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                                          0.7966664774136267,  0.9602898564975363};
constexpr std::array<double, 8> kWeights = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                                            0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                                            0.2223810344533745, 0.1012285362903763};

struct Moments {
  double m0 = 0, m1 = 0, m2 = 0;
  Moments operator-(const Moments& o) const { return {m0 - o.m0, m1 - o.m1, m2 - o.m2}; }
};

// Mass, first and second moment of the density on [a, b] by one Gauss–Legendre rule, weighted by
// pdf^power (power 1 for the moments, 1/3 for the high-resolution starting point).
Moments gauss_legendre(const Density& density, double a, double b, double power = 1) {
  Moments moments;
  const double center = 0.5 * (a + b), half = 0.5 * (b - a);
  for (size_t k = 0; k < kNodes.size(); ++k) {
    const double x = center + half * kNodes[k];
    const double p = density.pdf(x);
    const double w = kWeights[k] * half * (power == 1 ? p : std::pow(p, power));
    moments.m0 += w;
    moments.m1 += w * x;
    moments.m2 += w * x * x;
  }
  return moments;
}

// Cumulative moments of the density on a fine grid of panels, so the moments of any cell cost two
// table look-ups and two short quadratures instead of a full integration: Lloyd–Max at 8 bits needs
// thousands of iterations over 256 cells.
class CumulativeMoments {
 public:
  CumulativeMoments(const Density& density, int panels, double power = 1)
      : density_(density), power_(power), width_((density.upper - density.lower) / panels) {
    edges_.resize(size_t(panels) + 1);
    for (int p = 0; p < panels; ++p) {
      const double a = density.lower + p * width_;
      const Moments panel = gauss_legendre(density, a, a + width_, power);
      const Moments& before = edges_[size_t(p)];
      edges_[size_t(p) + 1] = {before.m0 + panel.m0, before.m1 + panel.m1, before.m2 + panel.m2};
    }
  }

  // Moments over [lower, x].
  Moments upto(double x) const {
    if (x <= density_.lower) return {};
    const int panels = int(edges_.size()) - 1;
    const int p = std::min(panels - 1, int((x - density_.lower) / width_));
    const double start = density_.lower + p * width_;
    const Moments partial = gauss_legendre(density_, start, std::min(x, density_.upper), power_);
    const Moments& before = edges_[size_t(p)];
    return {before.m0 + partial.m0, before.m1 + partial.m1, before.m2 + partial.m2};
  }
  Moments between(double a, double b) const { return upto(b) - upto(a); }
  double total_mass() const { return edges_.back().m0; }

  // The x at which the cumulative mass reaches `mass` (bisection; the mass is monotone).
  double quantile(double mass) const {
    double lo = density_.lower, hi = density_.upper;
    for (int i = 0; i < 100; ++i) {
      const double mid = 0.5 * (lo + hi);
      (upto(mid).m0 < mass ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
  }

 private:
  const Density& density_;
  double power_;
  double width_;
  std::vector<Moments> edges_;
};

constexpr int kPanels = 8192;

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
  const CumulativeMoments moments(density, kPanels);
  Codebook book;
  book.centroids.resize(size_t(levels));
  book.boundaries.resize(size_t(levels - 1));
  // Start from the high-resolution optimum (Panter–Dite): cells of equal mass under pdf^(1/3).  It
  // is within a few iterations of the fixed point even at 8 bits, where uniform quantiles are not.
  {
    const CumulativeMoments companded(density, kPanels, 1.0 / 3.0);
    for (int i = 0; i + 1 < levels; ++i)
      book.boundaries[size_t(i)] = companded.quantile(companded.total_mass() * (i + 1) / levels);
  }
  auto cell = [&](int i) {
    const double a = i == 0 ? density.lower : book.boundaries[size_t(i) - 1];
    const double b = i + 1 == levels ? density.upper : book.boundaries[size_t(i)];
    return moments.between(a, b);
  };
  for (int i = 0; i < levels; ++i) {
    const Moments m = cell(i);
    book.centroids[size_t(i)] = m.m1 / m.m0;
  }
  // The Lloyd–Max conditions say c = T(c), T mapping centroids to the means of their cells.  Plain
  // Lloyd iteration converges linearly and needs tens of thousands of steps at 7–8 bits; Newton's
  // method on c - T(c) = 0 needs a handful, because the Jacobian of T is tridiagonal (a cell's mean
  // depends only on its two boundaries, and a boundary only on its two neighbouring centroids).
  const size_t count = book.centroids.size();
  std::vector<double> mean(count), lower(count), diagonal(count), upper(count), step(count);
  const auto set_boundaries = [&] {
    for (int i = 0; i + 1 < levels; ++i)
      book.boundaries[size_t(i)] = 0.5 * (book.centroids[size_t(i)] + book.centroids[size_t(i) + 1]);
  };
  for (book.iterations = 0; book.iterations < max_iterations; ++book.iterations) {
    set_boundaries();
    double residual = 0;
    for (int i = 0; i < levels; ++i) {
      const Moments m = cell(i);
      const double c = m.m0 > 0 ? m.m1 / m.m0 : book.centroids[size_t(i)];
      mean[size_t(i)] = c;
      residual = std::max(residual, std::abs(c - book.centroids[size_t(i)]));
      // d mean / d boundary, times d boundary / d centroid = 1/2.
      const double d_low = i == 0 || m.m0 <= 0 ? 0
                                               : -0.5 * density.pdf(book.boundaries[size_t(i) - 1]) *
                                                     (book.boundaries[size_t(i) - 1] - c) / m.m0;
      const double d_high = i + 1 == levels || m.m0 <= 0 ? 0
                                                         : 0.5 * density.pdf(book.boundaries[size_t(i)]) *
                                                               (book.boundaries[size_t(i)] - c) / m.m0;
      // Row i of (I - J):  -d_low * step[i-1] + (1 - d_low - d_high) * step[i] - d_high * step[i+1].
      lower[size_t(i)] = -d_low;
      diagonal[size_t(i)] = 1 - d_low - d_high;
      upper[size_t(i)] = -d_high;
      step[size_t(i)] = c - book.centroids[size_t(i)];
    }
    if (residual < tolerance) break;
    for (int i = 1; i < levels; ++i) {  // Thomas algorithm
      const double factor = lower[size_t(i)] / diagonal[size_t(i) - 1];
      diagonal[size_t(i)] -= factor * upper[size_t(i) - 1];
      step[size_t(i)] -= factor * step[size_t(i) - 1];
    }
    step[size_t(levels) - 1] /= diagonal[size_t(levels) - 1];
    for (int i = levels - 2; i >= 0; --i)
      step[size_t(i)] = (step[size_t(i)] - upper[size_t(i)] * step[size_t(i) + 1]) / diagonal[size_t(i)];
    // Keep the centroids ordered: halve the Newton step until they are, else take the Lloyd step.
    std::vector<double> trial(book.centroids.size());
    bool ordered = false;
    for (double fraction = 1; fraction > 1e-3 && !ordered; fraction *= 0.5) {
      for (int i = 0; i < levels; ++i) trial[size_t(i)] = book.centroids[size_t(i)] + fraction * step[size_t(i)];
      ordered = std::is_sorted(trial.begin(), trial.end(), std::less_equal<>());
    }
    book.centroids = ordered ? trial : mean;
  }
  for (int i = 0; i + 1 < levels; ++i)
    book.boundaries[size_t(i)] = 0.5 * (book.centroids[size_t(i)] + book.centroids[size_t(i) + 1]);
  double error = 0;
  for (int i = 0; i < levels; ++i) {
    const Moments m = cell(i);
    const double c = book.centroids[size_t(i)];
    error += m.m2 - 2 * c * m.m1 + c * c * m.m0;  // integral of (x - c)^2 over the cell
  }
  book.distortion = error / moments.total_mass();
  return book;
}

}  // namespace tq
