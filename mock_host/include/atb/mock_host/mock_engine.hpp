// A mock engine: one layer of one backend, its paged pool sized from the plugin's spec entry point
// and surrounded by guard regions, driven through scripted serving schedules (prefill, decode,
// chunked prefill, mixed batches, sequences ending and their pages reused).  Every output buffer
// has guard rows before and after it.  Reached only through the SDK (host::Plugin).
//
// On a CUDA device (EngineShape::device_type) every buffer keeps a host copy, where inputs are made
// and checks read: the plugin gets device mirrors of them (pool and output guards included, on a
// stream of the engine's own), inputs are uploaded before each forward, and after it the engine waits
// for the stream and downloads the whole pool and output back.
#pragma once

#include <atb/host/paged_kv.hpp>
#include <atb/host/plugin.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace atb::mock_host {

inline constexpr uint64_t kGuardBytes = 256;
inline constexpr uint8_t kCanary = 0xa5;

struct EngineShape {
  int num_query_heads = 4;
  int num_kv_heads = 2;
  int head_size = 128;
  int block_size = 16;
  int32_t dtype = ATB_DTYPE_F32;
  int32_t device_type = ATB_DEVICE_CPU;  // atb_device_type of the forward's tensors, pages and arrays
  int layer_index = 0;
  int num_layers = 1;
  int sliding_window = 0;  // the layer spec's: 0 none
  float soft_cap = 0.0f;   // 0: none
  float scale = 0.0f;      // 0: 1/sqrt(head_size)
  int kv_shared_with_layer = -1;
  // Pages in the order the block manager hands them out: 0 in pool order (contiguous tables), any
  // other value a shuffle of that seed; unset: the engine's seed.
  std::optional<uint64_t> page_shuffle_seed;

  atb_layer_spec layer_spec() const;
};

// One step of a script: sequences to end first, then the new tokens of each sequence.
struct ScriptStep {
  std::vector<int64_t> release;
  std::vector<host::PagedKvManager::SequenceStep> tokens;
};

// Prefill of two sequences, decode, chunked prefill with a new sequence, a sequence ending and a new
// one reusing its pages: every kind of step a serving engine sends.
std::vector<ScriptStep> standard_script();

struct DeviceStep;    // a step's device mirrors (mock_engine_device.hpp)
struct DeviceEngine;  // an engine's stream, pool mirror and workspace

// The buffers of one prepared forward; `args` points into them, so it lives where it was made.
// Checks edit `batch`'s arrays and `args` before running it; on a device the arrays are uploaded
// at run time, so edits to either reach the plugin.
struct PreparedStep {
  PreparedStep(host::StepBatch step_batch, host::HostTensor guarded_output)
      : batch(std::move(step_batch)), output(std::move(guarded_output)) {}
  PreparedStep(const PreparedStep&) = delete;
  PreparedStep& operator=(const PreparedStep&) = delete;

  host::StepBatch batch;
  std::optional<host::HostTensor> query, key, value;
  host::HostTensor output;             // kGuardRows rows of canary before and after the output rows
  atb_tensor output_view{};            // the output rows in `output` (host memory)
  atb_forward_args args{};             // what the plugin gets: host or device pointers
  std::shared_ptr<DeviceStep> device;  // null on the CPU
};

class MockEngine {
 public:
  // The pool's guards and pages start as kCanary bytes; `page_fill` makes the pages start as other
  // bytes (a host need not zero a new pool: outputs must not depend on them).
  static Expected<MockEngine> create(const host::Plugin& plugin, const EngineShape& shape, const std::string& config,
                                     int64_t num_pages = 64, uint64_t seed = 1, uint8_t page_fill = kCanary);

  // Schedules a step and fills its inputs (from the engine's seeded stream) without running it.
  Expected<std::unique_ptr<PreparedStep>> prepare(const ScriptStep& step);
  // Forwards the step; on a device also uploads its inputs first and downloads pool and output after.
  Status run(PreparedStep& step);
  // prepare + run; returns the output rows' bytes (guards excluded).
  Expected<std::vector<std::byte>> step(const ScriptStep& step);
  // Runs a whole script; the outputs of every step, concatenated.
  Expected<std::vector<std::byte>> run_script(const std::vector<ScriptStep>& script);
  // Forwards a prepared step through another backend over this engine's pool (a layer sharing this
  // one's cache): the same queries and arrays, no K/V; the output rows start as canary again.
  Status run_through(host::Backend& other, PreparedStep& step);

  // Empty when every guard byte of the pool and of `step`'s output is intact; else what changed.
  std::string check_guards(const PreparedStep* step = nullptr) const;

  const atb_kv_cache_spec& spec() const { return spec_; }
  const host::PagePool& pool() const { return pool_; }
  host::Backend& backend() { return backend_; }

 private:
  MockEngine(const EngineShape& shape, host::Backend backend, atb_kv_cache_spec spec, host::PagePool pool,
             uint64_t seed);

  EngineShape shape_;
  host::Backend backend_;
  atb_kv_cache_spec spec_;
  host::PagePool pool_;
  host::PagedKvManager manager_;
  uint64_t stream_;
  std::shared_ptr<DeviceEngine> device_;  // null on the CPU
};

inline constexpr int kGuardRows = 1;

}  // namespace atb::mock_host
