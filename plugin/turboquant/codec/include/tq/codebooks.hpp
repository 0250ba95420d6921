// The codebooks the formats use, computed once per process from their density (never pasted in)
// and cached.  Thread-safe; the references stay valid for the life of the process.
#pragma once

#include <tq/nearest_code.hpp>

#include <cstddef>
#include <vector>

namespace tq {

// A codebook in the single precision the kernels use.
struct ScalarCodebook {
  int bits = 0;
  std::vector<float> centroids;   // 2^bits, ascending
  std::vector<float> boundaries;  // 2^bits - 1 midpoints
  double distortion = 0;          // E[(X - Q(X))^2] of the density it was fitted to
  float first16[16] = {};         // the first 16 centroids, zero-padded: permute tables for SIMD look-ups
  // Binary-search tables of codebooks of up to 16 codes (SIMD look-ups): level l holds the middle
  // boundary of each of the 2^l intervals the levels above leave, zero-padded.
  float search_levels[4][8] = {};

  // Index of the nearest centroid (ties go up).
  int nearest(float x) const { return nearest_code(boundaries.data(), int(boundaries.size()), x); }
};

// Lloyd–Max for a unit normal: vllm-metal's V codebook (per-block RMS normalised coordinates).
const ScalarCodebook& unit_normal_codebook(int bits);

// Lloyd–Max for one coordinate of a uniform point on the sphere in R^dimension, scaled by
// sqrt(dimension): the exact distribution of a rotated, norm-scaled head vector's coordinates.
const ScalarCodebook& sphere_codebook(int dimension, int bits);

}  // namespace tq
