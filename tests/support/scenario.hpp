// Drives one backend through steps of a random serving schedule (prefill, decode, chunked prefill,
// mixed batches, sequences ending) and keeps every sequence's K/V history, as the dtype stored it,
// for the oracle.
#pragma once

#include <atb/host/paged_kv.hpp>
#include <atb/host/plugin.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <vector>

#include "attention_oracle.hpp"
#include "seed.hpp"

namespace atb::test {

struct LayerShape {
  int num_query_heads = 8;
  int num_kv_heads = 2;
  int head_size_k = 128;
  int head_size_v = 128;
  int block_size = 16;
  int sliding_window = 0;
  float soft_cap = 0;
  float scale = 0;  // 0: 1/sqrt(head_size_k)
  int32_t dtype = ATB_DTYPE_F32;

  atb_layer_spec layer_spec(int layer_index = 0, int num_layers = 1) const;
  OracleShape oracle_shape() const;
  std::string describe() const;
};

// Pages of a pool holding what `pages_of_16` pages of 16 tokens hold, for pages of any size (a
// schedule's last pages are partial, so larger pages never get fewer).
inline int64_t pool_pages(const LayerShape& shape, int64_t pages_of_16) {
  return pages_of_16 * std::max(1, (16 + shape.block_size - 1) / shape.block_size);
}

// Draws the K/V/Q of one new token; default N(0,1).
using ValueGenerator = std::function<float(std::mt19937_64&, int kind /*0 q, 1 k, 2 v*/, int head, int dim)>;

struct StepOutput {
  host::StepBatch batch;
  host::HostTensor query;
  host::HostTensor output;
};

class Scenario {
 public:
  Scenario(const LayerShape& shape, host::Backend& backend, int64_t num_pages, uint64_t seed,
           uint64_t page_shuffle_seed = 1);

  // Runs one forward with `steps` (new sequence ids start sequences).  Returns the batch, queries
  // and outputs; K/V are appended to the histories.
  Expected<StepOutput> step(const std::vector<host::PagedKvManager::SequenceStep>& steps);
  void release(int64_t sequence_id);

  // The oracle's answer for token `token` of a step's output.
  std::vector<double> expected(const StepOutput& out, int32_t token) const;

  // Largest |out - oracle| over the listed tokens (all when empty), with the tolerance check
  // atol + rtol * |oracle| reported as the worst ratio (<= 1 passes).
  struct Comparison {
    double max_abs_error = 0;
    double worst_ratio = 0;
    int32_t checked_tokens = 0;
  };
  Comparison compare(const StepOutput& out, double atol, double rtol, const std::vector<int32_t>& tokens = {}) const;
  // ||out - oracle|| / ||oracle|| over every output of a step.
  double relative_l2(const StepOutput& out) const;

  host::PagePool& pool() { return pool_; }
  std::mt19937_64& rng() { return rng_; }
  void set_generator(ValueGenerator generator) { generator_ = std::move(generator); }
  // What the backend's cache holds of each K/V row (default: the row as the dtype stored it), for
  // the oracle: a compressed backend's tests pass its codec's encode-then-decode here.
  using StoredRow = std::function<void(bool is_key, int kv_head, float* row)>;
  void set_stored_row(StoredRow stored_row) { stored_row_ = std::move(stored_row); }
  // Passes every row stored so far through `stored_row` (what a backend learned from its first write
  // decides how it holds those rows too).
  void rewrite_history(const StoredRow& stored_row);
  // Steps pass ATB_FORWARD_WRITE_KV_ONLY with NULL query and output.
  void set_write_kv_only(bool write_only) { write_kv_only_ = write_only; }
  const LayerShape& shape() const { return shape_; }

 private:
  LayerShape shape_;
  host::Backend& backend_;
  host::PagePool pool_;
  host::PagedKvManager manager_;
  std::mt19937_64 rng_;
  ValueGenerator generator_;
  StoredRow stored_row_;
  bool write_kv_only_ = false;
  struct History {
    std::vector<float> keys, values;  // [position][kv_head][d]
  };
  std::map<int64_t, History> histories_;
};

}  // namespace atb::test
