// The seed of one rotation round's random stream, from (seed, layer, global KV head, round).
// Host and device: the CUDA kernels derive the same signs as tq::Rotation.
#pragma once

#include <tq/splitmix64.hpp>

#include <cstdint>

namespace tq {

TQ_HOST_DEVICE inline uint64_t rotation_stream_seed(uint64_t seed, int layer_index, int global_kv_head, int round) {
  uint64_t state = seed;
  uint64_t mixed = splitmix64(state);
  state = mixed ^ (uint64_t(uint32_t(layer_index)) << 32 | uint32_t(global_kv_head));
  mixed = splitmix64(state);
  state = mixed ^ uint64_t(round);
  return splitmix64(state);
}

// Sign bit i of a round's stream: the (i / 64 + 1)-th splitmix64 output, bit i % 64 (1 means -1).
TQ_HOST_DEVICE inline bool rotation_sign_bit(uint64_t stream_seed, int i) {
  uint64_t state = stream_seed + uint64_t(i / 64) * 0x9e3779b97f4a7c15ull;
  return (splitmix64(state) >> (i % 64)) & 1;
}

}  // namespace tq
