// A codebook's centroids rounded to small integers for the integer kernels' vpshufb tables:
// centroid ~ step * integer, |integer| <= kCentroidGridMax, step = largest |centroid| / kCentroidGridMax.
#pragma once

#include <tq/codebooks.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace atb::turboquant {

inline constexpr int kCentroidGridMax = 63;

struct CentroidGrid {
  float step = 1;
  std::array<int, 16> integers{};  // the first 16 centroids (tables hold codes of up to 4 bits)
};

inline CentroidGrid centroid_grid(const tq::ScalarCodebook& codebook) {
  float largest = 0;
  for (float c : codebook.centroids) largest = std::max(largest, std::abs(c));
  CentroidGrid grid;
  if (largest > 0) grid.step = largest / float(kCentroidGridMax);
  for (size_t i = 0; i < codebook.centroids.size() && i < grid.integers.size(); ++i)
    grid.integers[i] = int(std::lround(codebook.centroids[i] / grid.step));
  return grid;
}

}  // namespace atb::turboquant
