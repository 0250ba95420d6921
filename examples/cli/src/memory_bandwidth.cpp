#include <atb/cli/memory_bandwidth.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace atb::cli {
namespace {

// Sums 64-bit words with four independent accumulators so the loop is bound by loads.
uint64_t sum_words(const uint64_t* words, size_t count) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    a += words[i];
    b += words[i + 1];
    c += words[i + 2];
    d += words[i + 3];
  }
  for (; i < count; ++i) a += words[i];
  return a + b + c + d;
}

}  // namespace

double measure_read_bandwidth_gbps(size_t bytes, int threads, int repeats) {
  threads = std::max(1, threads);
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  for (size_t i = 0; i < words; ++i) buffer[i] = i;  // touch every page before timing
  double best_seconds = 1e30;
  std::vector<uint64_t> sums(static_cast<size_t>(threads), 0);
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t begin = words * size_t(t) / size_t(threads), end = words * size_t(t + 1) / size_t(threads);
        sums[size_t(t)] = sum_words(buffer.get() + begin, end - begin);
      });
    }
    for (auto& worker : workers) worker.join();
    best_seconds =
        std::min(best_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  volatile uint64_t sink = 0;
  for (auto s : sums) sink = sink + s;  // keep the sums alive
  return double(words * sizeof(uint64_t)) / best_seconds / 1e9;
}

}  // namespace atb::cli
