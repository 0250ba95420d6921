// A decode workload on one layer of one backend: B sequences holding `context` cached tokens each,
// then decode steps of one new token per sequence.  Backends are reached only through the SDK.
#pragma once

#include <atb/host/paged_kv.hpp>
#include <atb/host/plugin.hpp>
#include <atb/cli/synthetic_kv.hpp>

#include <functional>
#include <optional>
#include <string>

namespace atb::cli {

struct WorkloadShape {
  int num_query_heads = 32;
  int num_kv_heads = 8;
  int head_size = 128;
  int block_size = 16;
  int32_t dtype = ATB_DTYPE_F16;
  int batch = 1;
  int context = 1024;
  int step_tokens = 1;  // new tokens per sequence in each step: 1 for decode, a chunk for prefill
};

class DecodeWorkload {
 public:
  static Expected<DecodeWorkload> create(const host::Plugin& plugin, const std::string& config_json,
                                         const WorkloadShape& shape, uint64_t seed);

  // Writes `context` tokens of N(0,1) K/V into every sequence (write-only forwards, in chunks; one
  // chunk of values repeated, which is all a timing needs).
  Status fill();
  // Writes the synthetic data set instead: every token of every sequence distinct and the same for
  // every backend given the same seed (sequences placed by generator_slot, as layer 0); for the llm
  // set, the queries' large-key channels divided by the keys' factors.
  Status fill(KvData data, uint64_t data_seed);
  // The output of the last decode_step, [batch][query heads][head size].
  const host::HostTensor& output() const { return *decode_output_; }
  // One forward: step_tokens new tokens for every sequence at positions context .. (repeatable: it
  // rewrites the same slots).  `write_only` stores the new K/V without attending (encode only).
  Status decode_step(bool write_only = false);

  // KV-cache bytes a decode step must read: every cached token of every sequence and KV head.
  uint64_t kv_bytes_per_step() const;
  const atb_kv_cache_spec& spec() const { return spec_; }
  const WorkloadShape& shape() const { return shape_; }

 private:
  DecodeWorkload(const WorkloadShape& shape, host::Backend backend, atb_kv_cache_spec spec, host::PagePool pool,
                 uint64_t seed);
  using ChunkWriter =
      std::function<void(int sequence, int64_t first_token, host::HostTensor& key, host::HostTensor& value)>;
  Status fill_with(const ChunkWriter& write_chunk);
  // The llm set's queries, as make_outlier_model.py scales W_q: scores stay those of unscaled keys.
  void divide_queries_by_key_factors(uint64_t data_seed);
  Status run(const host::StepBatch& batch, const host::HostTensor* query, const host::HostTensor& key,
             const host::HostTensor& value, host::HostTensor* output, bool write_only);

  WorkloadShape shape_;
  host::Backend backend_;
  atb_kv_cache_spec spec_;
  host::PagePool pool_;
  host::PagedKvManager manager_;
  uint64_t seed_;
  std::optional<host::StepBatch> decode_batch_;
  std::optional<host::HostTensor> decode_query_, decode_key_, decode_value_, decode_output_;
};

// Fills a tensor with N(0,1) values from `seed`.
void fill_normal(host::HostTensor& tensor, uint64_t seed);

}  // namespace atb::cli
