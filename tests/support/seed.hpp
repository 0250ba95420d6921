// The seed of randomized tests: ATB_TEST_SEED when set (to reproduce a failure), else fresh.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>

namespace atb::test {

inline uint64_t test_seed() {
  if (const char* env = std::getenv("ATB_TEST_SEED")) return std::strtoull(env, nullptr, 10);
  static const uint64_t seed = std::random_device{}() | (uint64_t(std::random_device{}()) << 32);
  return seed;
}

}  // namespace atb::test
