// SplitMix64 (Steele, Lea, Flood 2014): the documented random stream behind the rotations' signs and
// permutations and the QJL sketch, so other implementations can reproduce them bit for bit.
#pragma once

#include <tq/host_device.hpp>

#include <cstdint>

namespace tq {

// Also compiled for the device: the CUDA kernels derive the same rotation signs.
TQ_HOST_DEVICE inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace tq
