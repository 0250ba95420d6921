// The mock engine's CUDA side: device mirrors of its pool and of each step's buffers, and the
// upload / forward / wait / download cycle that keeps the host copies the checks read current.
#pragma once

#include <atb/host/cuda_memory.hpp>
#include <atb/mock_host/mock_engine.hpp>

namespace atb::mock_host {

struct DeviceEngine {
  host::cuda::Stream stream;
  host::cuda::DeviceMemory pool;       // mirror of the host pool's whole allocation, guards included
  host::cuda::DeviceMemory workspace;  // spec.workspace_bytes

  // Uploads `pool` (its canaries included) to a new mirror on the current device.
  static Expected<std::shared_ptr<DeviceEngine>> create(const host::PagePool& pool, const atb_kv_cache_spec& spec);
};

struct DeviceStep {
  host::cuda::DeviceMemory query, key, value, output;  // output: the guarded buffer
  host::cuda::DeviceMemory slot_mapping, query_start_loc, seq_lens, block_tables;
  atb_tensor query_view{}, key_view{}, value_view{}, output_view{};
};

// Gives `step` device mirrors of its buffers and points step.args at them, the engine's pool
// mirror and its workspace.
Status mirror_on_device(DeviceEngine& engine, const host::PagePool& pool, PreparedStep& step);

// Uploads the step's inputs, output canaries and arrays, forwards, waits for the stream and
// downloads the pool and the output.  A device fault comes back as the status.
Status run_on_device(DeviceEngine& engine, const host::PagePool& pool, PreparedStep& step, host::Backend& backend);

}  // namespace atb::mock_host
