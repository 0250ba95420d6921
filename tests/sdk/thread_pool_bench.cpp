// What kit::parallel_for costs a call beside the work it runs: a decode step calls it a few times a
// layer (the write, the items, the merges), so its wake-up latency is a fixed cost of every step.
// Timed with tasks that do (almost) nothing, on 1 and 2 threads, called back to back and with a pause
// between calls as an engine's other work (the MLP) would leave.
//
//   build/release/bin/thread-pool-bench
#include <benchmark/benchmark.h>

#include <atb/kit/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>

namespace {

void dispatch(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto pause = std::chrono::microseconds(state.range(1));
  std::atomic<int64_t> sink{0};
  const std::function<void(int64_t)> task = [&](int64_t i) { sink.fetch_add(i, std::memory_order_relaxed); };
  for (auto _ : state) {
    const auto until = std::chrono::steady_clock::now() + pause;
    while (std::chrono::steady_clock::now() < until) {
    }
    const auto start = std::chrono::steady_clock::now();
    atb::kit::parallel_for(2 * threads, threads, task);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  benchmark::DoNotOptimize(sink.load());
}

BENCHMARK(dispatch)
    ->ArgNames({"threads", "pause_us"})
    ->ArgsProduct({{1, 2}, {0, 20, 200}})
    ->UseManualTime()
    ->Iterations(20000);

}  // namespace

BENCHMARK_MAIN();
