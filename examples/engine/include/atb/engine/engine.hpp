// A compact CPU inference engine for llama2.c checkpoints whose attention runs only through the plugin
// ABI: one backend per layer created through the SDK registry, a paged pool per layer sized from the
// backend's spec entry point within a KV memory budget, and forward() for prefill and decode of
// several sequences batched together.
#pragma once

#include <atb/engine/checkpoint.hpp>
#include <atb/host/paged_kv.hpp>
#include <atb/host/plugin.hpp>

#include <functional>
#include <vector>

namespace atb::engine {

struct SequenceInput {
  int64_t id;               // a new id starts a sequence
  std::vector<int> tokens;  // the new tokens of this step
};

class Engine {
 public:
  // `kv_memory` bytes are shared out over the layers' pools.
  static Expected<Engine> create(Checkpoint checkpoint, const host::Plugin& plugin, const std::string& config,
                                 uint64_t kv_memory, int threads);

  // Appends each sequence's tokens and returns the logits of every new token, [tokens][vocab], in
  // the order of `inputs`.
  Expected<std::vector<float>> forward(const std::vector<SequenceInput>& inputs);
  void release(int64_t id) { manager_.release(id); }

  // Called with each layer's new K and V rows (after RoPE, [tokens][KV heads][head size], f32) just
  // before they go to the backend: what `tq calibrate` measures.  Empty: nothing is called.
  using KvObserver = std::function<void(int layer, int tokens, const float* key, const float* value)>;
  void observe_kv(KvObserver observer) { kv_observer_ = std::move(observer); }

  const ModelConfig& config() const { return checkpoint_.config; }
  // K + V bytes one token takes in every layer's cache (the backend's spec).
  uint64_t kv_bytes_per_token() const { return kv_bytes_per_token_; }
  uint64_t kv_bytes_per_token_per_head() const {
    return kv_bytes_per_token_ / uint64_t(config().n_layers * config().n_kv_heads);
  }
  int64_t pages_per_layer() const { return pools_.front().num_pages(); }

 private:
  Engine(Checkpoint checkpoint, std::vector<host::Backend> layers, std::vector<host::PagePool> pools, int threads,
         uint64_t kv_bytes_per_token);

  Checkpoint checkpoint_;
  std::vector<host::Backend> layers_;
  std::vector<host::PagePool> pools_;
  host::PagedKvManager manager_;
  int threads_;
  uint64_t kv_bytes_per_token_;
  KvObserver kv_observer_;
};

inline constexpr int kEngineBlockSize = 16;

}  // namespace atb::engine
