// This machine's memory read bandwidth, measured the way decode attention reads the KV cache: all
// threads streaming through a buffer far larger than the caches.
#pragma once

#include <cstddef>

namespace atb::cli {

// Best of `repeats` passes over a `bytes` buffer with `threads` threads, in GB/s (1e9 bytes/s).
double measure_read_bandwidth_gbps(size_t bytes, int threads, int repeats);

}  // namespace atb::cli
