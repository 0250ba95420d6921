// The read floor of a step: how long one bare kernel takes to read as many bytes as the step reads,
// on the same device and timed the same way (tq cuda-bench prints each row's ratio to it).
#pragma once

#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <cstddef>

namespace atb::tool {

// Median ms of single CUDA-event-timed launches of a kernel streaming `bytes` once with 16-byte
// loads (the fastest of a few grid sizes), over buffers used in turn so that no launch finds its
// bytes in L2.
Expected<double> read_floor_ms(size_t bytes, int runs, cudaStream_t stream);

}  // namespace atb::tool
