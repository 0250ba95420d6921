// The seed of randomized tests: ATB_TEST_SEED when set (to reproduce a failure), else fresh.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace atb::test {

// Printed once per process, so that a failure's output names the seed that reproduces it.
inline uint64_t test_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("ATB_TEST_SEED");
    const uint64_t chosen =
        env ? std::strtoull(env, nullptr, 10) : std::random_device{}() | (uint64_t(std::random_device{}()) << 32);
    std::fprintf(stderr, "randomized test inputs from seed %llu (ATB_TEST_SEED=%llu reproduces them)\n",
                 static_cast<unsigned long long>(chosen), static_cast<unsigned long long>(chosen));
    return chosen;
  }();
  return seed;
}

}  // namespace atb::test
