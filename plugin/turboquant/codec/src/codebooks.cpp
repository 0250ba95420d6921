#include <tq/codebooks.hpp>
#include <tq/lloyd_max.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace tq {
namespace {

ScalarCodebook to_scalar(const Codebook& book, int bits) {
  ScalarCodebook scalar;
  scalar.bits = bits;
  scalar.centroids.assign(book.centroids.begin(), book.centroids.end());
  scalar.boundaries.assign(book.boundaries.begin(), book.boundaries.end());
  scalar.distortion = book.distortion;
  for (size_t i = 0; i < 16 && i < scalar.centroids.size(); ++i) scalar.first16[i] = scalar.centroids[i];
  if (bits <= 4)
    for (int level = 0; level < bits; ++level) {
      const int span = 1 << (bits - level);  // codes per interval at this level
      for (int prefix = 0; prefix < (1 << level); ++prefix)
        scalar.search_levels[level][prefix] = scalar.boundaries[size_t(prefix * span + span / 2 - 1)];
    }
  return scalar;
}

// dimension 0 stands for the unit normal.
const ScalarCodebook& cached(int dimension, int bits) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, std::unique_ptr<ScalarCodebook>> cache;
  std::lock_guard lock(mutex);
  auto& slot = cache[{dimension, bits}];
  if (!slot) {
    const Density density = dimension == 0 ? unit_normal_density() : sphere_coordinate_density(dimension);
    slot = std::make_unique<ScalarCodebook>(to_scalar(fit_lloyd_max(density, 1 << bits), bits));
  }
  return *slot;
}

}  // namespace

const ScalarCodebook& unit_normal_codebook(int bits) { return cached(0, bits); }
const ScalarCodebook& sphere_codebook(int dimension, int bits) { return cached(dimension, bits); }

}  // namespace tq
