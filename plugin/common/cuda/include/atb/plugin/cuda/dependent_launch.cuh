// Launching a kernel that may start before the kernel ahead of it on the stream has completed
// (programmatic dependent launch, Hopper): it runs once the one ahead has called
// allow_dependent_launch() in every block (or completed), and must call wait_for_previous_kernel()
// before it reads anything that kernel writes.  CUDA graphs capture the dependency as it is.
#pragma once

#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <string>
#include <utility>

namespace atb::plugin::cuda {

template <class... Parameters, class... Arguments>
Status launch_dependent(void (*kernel)(Parameters...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                        const char* what, Arguments&&... arguments) {
  cudaLaunchAttribute early{};
  early.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  early.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &early;
  config.numAttrs = 1;
  const cudaError_t launched = cudaLaunchKernelEx(&config, kernel, std::forward<Arguments>(arguments)...);
  (void)cudaGetLastError();  // reported here, not by a later launch's check
  if (launched != cudaSuccess) return Status::internal(std::string(what) + ": " + cudaGetErrorString(launched));
  return Status::ok();
}

}  // namespace atb::plugin::cuda
