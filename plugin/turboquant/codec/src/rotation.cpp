#include <tq/rotation.hpp>
#include <tq/splitmix64.hpp>
#include <tq/simd.hpp>

#include "simd_kernels.hpp"

#include <cmath>
#include <utility>

namespace tq {
namespace {

// Unnormalised in-place Walsh–Hadamard transform of n = 2^k values.
void hadamard(float* x, int n) {
  for (int half = 1; half < n; half *= 2)
    for (int start = 0; start < n; start += 2 * half)
      for (int i = start; i < start + half; ++i) {
        const float a = x[i], b = x[i + half];
        x[i] = a + b;
        x[i + half] = a - b;
      }
}

}  // namespace

std::string Rotation::check_dimension(int dimension) {
  if (dimension < 2 || dimension > kMaxRotationSize)
    return "head size " + std::to_string(dimension) + " cannot be rotated; allowed: 2 .. " +
           std::to_string(kMaxRotationSize);
  return {};
}

Rotation::Rotation(int dimension, uint64_t seed, int layer_index, int global_kv_head) : dimension_(dimension) {
  for (int rest = dimension, block = 1 << 30; rest > 0; block /= 2)
    if (block <= rest) {
      blocks_.push_back(block);
      rest -= block;
    }
  const bool power_of_two = blocks_.size() == 1;
  const int round_count = power_of_two ? 1 : 2;
  for (int r = 0; r < round_count; ++r) {
    uint64_t state = rotation_stream_seed(seed, layer_index, global_kv_head, r);
    Round round;
    round.signs.resize(size_t(dimension));
    uint64_t bits = 0;
    for (int i = 0; i < dimension; ++i) {
      if (i % 64 == 0) bits = splitmix64(state);
      round.signs[size_t(i)] = (bits >> (i % 64)) & 1 ? -1.0f : 1.0f;
    }
    if (!power_of_two) {  // Fisher–Yates with the same stream
      round.permutation.resize(size_t(dimension));
      for (int i = 0; i < dimension; ++i) round.permutation[size_t(i)] = i;
      for (int i = dimension - 1; i > 0; --i)
        std::swap(round.permutation[size_t(i)], round.permutation[splitmix64(state) % uint64_t(i + 1)]);
    }
    rounds_.push_back(std::move(round));
  }
}

void Rotation::apply_blocks(float* x) const {
  int offset = 0;
  const bool vectorised = simd_enabled();
  for (int block : blocks_) {
    const float norm = 1.0f / std::sqrt(float(block));
    if (vectorised && avx2::rotate_block(x + offset, nullptr, block, norm)) {
      offset += block;
      continue;
    }
    if (vectorised && block >= 8)
      avx2::hadamard(x + offset, block);
    else
      hadamard(x + offset, block);
    if (vectorised)
      avx2::scale(x + offset, block, norm);
    else
      for (int i = 0; i < block; ++i) x[offset + i] *= norm;
    offset += block;
  }
}

void Rotation::rotate(float* x) const {
  if (is_power_of_two() && simd_enabled() &&
      avx2::rotate_block(x, rounds_[0].signs.data(), dimension_, 1.0f / std::sqrt(float(dimension_))))
    return;
  std::vector<float> scratch;
  for (const Round& round : rounds_) {
    if (simd_enabled())
      avx2::multiply(x, round.signs.data(), dimension_);
    else
      for (int i = 0; i < dimension_; ++i) x[i] *= round.signs[size_t(i)];
    if (!round.permutation.empty()) {
      scratch.assign(x, x + dimension_);
      for (int i = 0; i < dimension_; ++i) x[i] = scratch[size_t(round.permutation[size_t(i)])];
    }
    apply_blocks(x);
  }
}

void Rotation::unrotate(float* x) const {
  std::vector<float> scratch;
  for (auto round = rounds_.rbegin(); round != rounds_.rend(); ++round) {
    apply_blocks(x);  // each normalised block Hadamard is its own inverse
    if (!round->permutation.empty()) {
      scratch.assign(x, x + dimension_);
      for (int i = 0; i < dimension_; ++i) x[round->permutation[size_t(i)]] = scratch[size_t(i)];
    }
    for (int i = 0; i < dimension_; ++i) x[i] *= round->signs[size_t(i)];
  }
}

}  // namespace tq
