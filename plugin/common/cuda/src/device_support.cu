// The host side of the shared CUDA kernels that no row format enters: the split planner, kernel
// facts, the byte store that carries a layer's tables, and the device checks.
#include <atb/plugin/cuda/launch_schedule.hpp>
#include <atb/plugin/cuda/layer_kernels.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace atb::plugin::cuda {
namespace {

// Kernel parameters carrying host bytes to device memory.
struct ByteChunk {
  uint8_t bytes[3072];
};

__global__ void store_bytes_kernel(uint8_t* to, const __grid_constant__ ByteChunk chunk, int count) {
  for (int i = threadIdx.x; i < count; i += blockDim.x) to[i] = chunk.bytes[i];
}

}  // namespace

int multiprocessors() {
  static const int count = [] {
    int device = 0, value = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return 1;
    if (cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 1;
    return std::max(value, 1);
  }();
  return count;
}

int splits_filling_waves(int blocks, int slots, bool uneven_ranges) {
  blocks = std::max(blocks, 1);
  if (double(blocks) / slots >= (uneven_ranges ? 1.85 : 0.85)) return 1;
  for (int splits = 2; splits < kMaxSplits; ++splits) {
    const double waves = double(blocks) * splits / slots;
    if (waves >= 1.85 && waves / std::ceil(waves) >= 0.85) return splits;
  }
  return kMaxSplits;
}

int blocks_per_split(const AttentionParams& p, int heads_per_block) {
  const int group = p.num_query_heads / p.num_kv_heads;
  return p.num_tokens * p.num_kv_heads * ((group + heads_per_block - 1) / heads_per_block);
}

Expected<int> prepare_kernel(const void* kernel, int threads, size_t shared_limit, size_t shared_bytes) {
  const cudaError_t raised =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_limit));
  if (raised != cudaSuccess)
    return Status::internal(std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(raised));
  int blocks = 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared_bytes) != cudaSuccess) blocks = 1;
  return std::max(blocks, 1);
}

bool head_size_supported(int head_size) {
  switch (head_size) {
    case 16:
    case 32:
    case 48:
    case 64:
    case 80:
    case 96:
    case 112:
    case 128:
    case 160:
    case 192:
    case 256:
      return true;
    default:
      return false;
  }
}

Status launch_store_bytes(void* to, const uint8_t* bytes, size_t count, void* stream) {
  ByteChunk chunk;
  for (size_t done = 0; done < count; done += sizeof chunk.bytes) {
    const size_t here = std::min(count - done, sizeof chunk.bytes);
    std::copy(bytes + done, bytes + done + here, chunk.bytes);
    store_bytes_kernel<<<1, 256, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<uint8_t*>(to) + done, chunk,
                                                                         int(here));
    ATB_RETURN_IF_ERROR(last_launch_status("store-bytes kernel"));
  }
  return Status::ok();
}

uint64_t attention_workspace_bytes(int num_query_heads, int head_size) {
  return uint64_t(kTokenSplitCapacity) * uint64_t(num_query_heads) * uint64_t(head_size + 2) * sizeof(float);
}

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

Status last_launch_status(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return Status::ok();
  return Status::internal(std::string(what) + ": " + cudaGetErrorString(error));
}

}  // namespace atb::plugin::cuda
