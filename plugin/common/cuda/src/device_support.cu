// The host side of the shared CUDA kernels that no row format enters: the split planner, kernel
// facts, a layer's device bytes, and the device checks.
#include <atb/plugin/cuda/launch_schedule.hpp>
#include <atb/plugin/cuda/layer_kernels.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace atb::plugin::cuda {
namespace {

// Makes `device` current for its lifetime, then restores the device that was.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != device)
      changed_ = cudaSetDevice(device) == cudaSuccess;
  }
  ~DeviceScope() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::ok();
  cudaGetLastError();
  return error == cudaErrorMemoryAllocation
             ? Status(ATB_ERR_OUT_OF_MEMORY, std::string(what) + ": " + cudaGetErrorString(error))
             : Status::internal(std::string(what) + ": " + cudaGetErrorString(error));
}

}  // namespace

Expected<DeviceBytes> DeviceBytes::upload(int device, const std::vector<uint8_t>& bytes) {
  DeviceBytes held;
  if (bytes.empty()) return Expected<DeviceBytes>(std::move(held));
  const DeviceScope scope(device);
  held.device_ = device;
  void* data = nullptr;
  ATB_RETURN_IF_ERROR(cuda_status(cudaMalloc(&data, bytes.size()), "cudaMalloc of the layer's tables"));
  held.data_ = static_cast<uint8_t*>(data);
  ATB_RETURN_IF_ERROR(cuda_status(cudaMemcpy(data, bytes.data(), bytes.size(), cudaMemcpyHostToDevice),
                                  "cudaMemcpy of the layer's tables"));
  return Expected<DeviceBytes>(std::move(held));
}

DeviceBytes::DeviceBytes(DeviceBytes&& other) noexcept : device_(other.device_), data_(other.data_) {
  other.data_ = nullptr;
}

DeviceBytes& DeviceBytes::operator=(DeviceBytes&& other) noexcept {
  std::swap(device_, other.device_);
  std::swap(data_, other.data_);
  return *this;
}

DeviceBytes::~DeviceBytes() {
  if (data_ == nullptr) return;
  const DeviceScope scope(device_);
  cudaFree(data_);  // fails only where the context is already gone (process exit): nothing to free
}

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
