// The nearest centroid of a scalar codebook and the lane combination of the encoder's sums:
// compiled for the host encoder and the CUDA one alike, so both choose the same codes and scales.
#pragma once

#include <tq/host_device.hpp>

namespace tq {

// Index of the nearest centroid given the codebook's `count` ascending boundaries (midpoints):
// the number of boundaries <= x, so ties go up.
TQ_HOST_DEVICE inline int nearest_code(const float* boundaries, int count, float x) {
  int low = 0, high = count;  // answer in [low, high]
  while (low < high) {
    const int mid = (low + high) / 2;
    if (x < boundaries[mid])
      high = mid;
    else
      low = mid + 1;
  }
  return low;
}

// Sums run in 8 interleaved f32 lanes (element i into lane i % 8, by fused multiply-add) and are
// combined in this order: the AVX2 path's, so scalar, AVX2 and CUDA rows are bit-identical.
TQ_HOST_DEVICE inline float combine_lanes(const float (&lanes)[8]) {
  return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
}

}  // namespace tq
