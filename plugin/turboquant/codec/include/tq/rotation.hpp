// The random orthogonal rotation of TurboQuant: a normalised Walsh–Hadamard transform with seeded
// random signs.  Signs derive only from (seed, layer index, global KV head index), so every process,
// machine, thread count and tensor-parallel shard layout rotates a head identically.
//
// Head sizes that are powers of two:  R = H_d S / sqrt(d)  (S: diagonal of +-1 signs).
// Other head sizes (48, 80, 96, 112, ...): d is split into power-of-two blocks, largest first
// (80 = 64 + 16), and two rounds of  "signs, seeded permutation, block-diagonal normalised
// Hadamard"  are applied:  R = B P2 S2 B P1 S1.  Each factor is orthogonal, so R is; the second
// permutation mixes coordinates across blocks.
#pragma once

#include <tq/rotation_seed.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tq {

// The default rotation seed ("TurboQua" in ASCII); the config can override it.
inline constexpr uint64_t kDefaultRotationSeed = 0x5475726271756174ull;

// The largest head size a rotation supports.
inline constexpr int kMaxRotationSize = 1024;

class Rotation {
 public:
  // An error message when `dimension` is outside [2, kMaxRotationSize]; empty when fine.
  static std::string check_dimension(int dimension);

  // Precondition: check_dimension(dimension) is empty.
  Rotation(int dimension, uint64_t seed, int layer_index, int global_kv_head);

  int dimension() const { return dimension_; }
  bool is_power_of_two() const { return rounds_.size() == 1 && rounds_[0].permutation.empty(); }

  // The seeded permutation of round 0 or 1 (new[i] = old[perm[i]]); empty for a power-of-two size.
  const std::vector<int32_t>& permutation(int round) const { return rounds_[size_t(round)].permutation; }

  // In place: x <- R x, and x <- R^T x.
  void rotate(float* x) const;
  void unrotate(float* x) const;

 private:
  struct Round {
    std::vector<float> signs;          // +-1 per coordinate
    std::vector<int32_t> permutation;  // empty for a power-of-two size; else new[i] = old[perm[i]]
  };
  void apply_blocks(float* x) const;

  int dimension_;
  std::vector<int> blocks_;  // power-of-two block sizes summing to dimension_, largest first
  std::vector<Round> rounds_;
};

}  // namespace tq
