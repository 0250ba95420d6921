// The kernels of one layer, chosen once when the layer is created (FlashInfer's plan/run split):
// a plugin builds a LayerKernels for its row format, and each forward runs it on the host's stream.
// A forward only enqueues work: nothing is allocated and nothing synchronises, so it can be captured
// in a CUDA graph (the layer's tables are uploaded once, at create: DeviceBytes).
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/status.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace atb::plugin::cuda {

// A layer's pages: the CPU backend's layout.
struct CudaLayout {
  atb_kv_cache_spec cache;  // of the CPU backend; CudaBackend adds workspace_bytes
  uint64_t v_region_offset = 0;
};

// The layer's fields of the kernels' parameters, filled once at create: the planners read the
// first, and CudaBackend::forward starts each forward's parameters from both and adds the batch's.
AttentionParams layer_shape(const atb_layer_spec& spec, const CudaLayout& layout);
WriteParams layer_write_shape(const atb_layer_spec& spec, const CudaLayout& layout);

class LayerKernels {
 public:
  virtual ~LayerKernels() = default;
  // Writes every new token's K and V row into its slot.
  virtual Status write(const WriteParams& params, void* stream) const = 0;
  // Attention for every query token of the batch; reads the pages only.
  virtual Status attend(const AttentionParams& params, void* stream) const = 0;
  // Bytes the kernels read (layer_tables): rotation permutations, smoothing scales.  Empty for
  // most formats.
  virtual const std::vector<uint8_t>& tables() const = 0;
};

// A layer's own device memory holding bytes its kernels read, from create to destroy.  (Copied into
// the workspace before every forward instead, they cost a few store kernels in front of each step.)
class DeviceBytes {
 public:
  // `bytes` on device `device` (the current device is left as it was); empty bytes hold nothing.
  static Expected<DeviceBytes> upload(int device, const std::vector<uint8_t>& bytes);
  DeviceBytes() = default;
  DeviceBytes(DeviceBytes&& other) noexcept;
  DeviceBytes& operator=(DeviceBytes&& other) noexcept;
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  ~DeviceBytes();
  const uint8_t* data() const { return data_; }

 private:
  int device_ = 0;
  uint8_t* data_ = nullptr;
};

// Head sizes the CUDA kernels serve: 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256 (every size
// either plugin lists; the tiled and tensor-core kernels take 64, 128 and 256, the simple kernel all).
bool head_size_supported(int head_size);

// The workspace a layer asks for: partial states of up to this many tokens x query heads x splits.
uint64_t attention_workspace_bytes(int num_query_heads, int head_size);

// Whether a CUDA device can be used here (false on a machine without a driver or GPU).
bool device_available();

// Status of the last launch on this thread ("<what>: <CUDA error>" when it failed).
Status last_launch_status(const char* what);

constexpr bool is_power_of_two_size(int n) { return n > 0 && (n & (n - 1)) == 0; }

}  // namespace atb::plugin::cuda
