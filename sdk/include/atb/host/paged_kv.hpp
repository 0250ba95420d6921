// Host-side building blocks of a paged KV cache, as an engine needs them: a page pool sized from the
// plugin's spec, a page allocator with per-sequence block tables, the per-step batch arrays of
// atb_forward_args, and dense host tensors.  Used by the tools, the mock host, tests and benchmarks.
#pragma once

#include <atb/abi.h>
#include <atb/status.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace atb::host {

// One layer's pages: num_pages pages of spec.page_bytes, page i at data() + i * stride_bytes().
// The stride is page_bytes + guard_bytes rounded up to the alignment; the bytes between pages (and
// guard_bytes before page 0 and after the last page) are guard regions a plugin must never touch.
class PagePool {
 public:
  static Expected<PagePool> allocate(const atb_kv_cache_spec& spec, int64_t num_pages, uint64_t guard_bytes = 0,
                                     uint8_t fill = 0);

  std::byte* data() const { return base_.get() + leading_bytes_; }
  int64_t num_pages() const { return num_pages_; }
  uint64_t stride_bytes() const { return stride_; }
  uint64_t page_bytes() const { return page_bytes_; }
  // The whole allocation, guards included, for guard checks.
  std::byte* allocation() const { return base_.get(); }
  uint64_t allocation_bytes() const { return total_bytes_; }
  uint64_t leading_bytes() const { return leading_bytes_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> base_;
  int64_t num_pages_ = 0;
  uint64_t stride_ = 0;
  uint64_t page_bytes_ = 0;
  uint64_t leading_bytes_ = 0;
  uint64_t total_bytes_ = 0;
};

// How many pages fit in a byte budget (per layer), given the spec.
int64_t pages_for_budget(const atb_kv_cache_spec& spec, uint64_t budget_bytes);

// The integer arrays of one forward step, ready to point atb_forward_args at.
struct StepBatch {
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  int32_t block_table_stride = 1;
  std::vector<int64_t> slot_mapping;
  std::vector<int32_t> query_start_loc{0};
  std::vector<int32_t> seq_lens;
  std::vector<int32_t> block_tables;
  std::vector<int64_t> sequence_ids;  // the host's id of each sequence in the batch

  // Sets the batch fields of `args` (num_tokens .. block_table_stride); pointers stay valid while
  // this StepBatch lives and is not modified.
  void fill(atb_forward_args& args) const;
};

// Sequences, their block tables and a free list of pages (vLLM's block manager, minimally).
class PagedKvManager {
 public:
  // shuffle_seed != 0 hands out free pages in a shuffled order (to test non-contiguous tables).
  PagedKvManager(int32_t block_size, int64_t num_pages, uint64_t shuffle_seed = 0);

  struct SequenceStep {
    int64_t sequence_id;  // new ids start a sequence
    int32_t new_tokens;   // >= 0
  };
  // Appends new tokens to each sequence (allocating pages as needed) and returns the step's arrays.
  // Fails, changing nothing, when the pool has too few free pages.
  Expected<StepBatch> schedule(const std::vector<SequenceStep>& steps);

  // Ends a sequence; its pages return to the free list.
  void release(int64_t sequence_id);

  int32_t length(int64_t sequence_id) const;
  int64_t free_pages() const { return static_cast<int64_t>(free_.size()); }
  int32_t block_size() const { return block_size_; }

 private:
  struct Sequence {
    int32_t length = 0;
    std::vector<int32_t> pages;
  };
  int32_t block_size_;
  std::vector<int32_t> free_;  // popped from the back
  std::map<int64_t, Sequence> sequences_;
};

// The ABI descriptor of a contiguous tensor [d0, d1, d2] the caller owns: CPU memory, or CUDA
// device memory used on `stream`.
atb_tensor dense_tensor(void* data, int32_t dtype, int64_t d0, int64_t d1, int64_t d2,
                        int32_t device_type = ATB_DEVICE_CPU, void* stream = nullptr);

// A dense host tensor [d0, d1, d2] in f32/f16/bf16, contiguous, with its ABI descriptor.
class HostTensor {
 public:
  HostTensor(int32_t dtype, int64_t d0, int64_t d1, int64_t d2);
  HostTensor(const HostTensor&) = delete;  // the descriptor points into storage_
  HostTensor& operator=(const HostTensor&) = delete;
  HostTensor(HostTensor&&) = default;  // a moved vector keeps its buffer
  HostTensor& operator=(HostTensor&&) = default;

  const atb_tensor* descriptor() const { return &descriptor_; }
  atb_tensor* mutable_descriptor() { return &descriptor_; }
  float get(int64_t i, int64_t j, int64_t k) const;
  void set(int64_t i, int64_t j, int64_t k, float value);  // rounded to the dtype
  int64_t size(int d) const { return descriptor_.shape[d]; }
  int32_t dtype() const { return descriptor_.dtype; }
  std::byte* bytes() { return storage_.data(); }
  const std::byte* bytes() const { return storage_.data(); }
  size_t byte_size() const { return storage_.size(); }

 private:
  int64_t index(int64_t i, int64_t j, int64_t k) const;
  std::vector<std::byte> storage_;
  atb_tensor descriptor_;
};

// A standard-attention layer spec (MHA/GQA/MQA) on the CPU with every other field at its default:
// one layer of one, no window, no soft-cap, default scale, own cache, unsharded.
atb_layer_spec standard_layer_spec(int num_query_heads, int num_kv_heads, int head_size, int32_t dtype, int block_size);

// Forward arguments over a pool and a step's batch arrays; query/output may be null (write-only).
atb_forward_args make_forward_args(const PagePool& pool, const StepBatch& batch, const atb_tensor* query,
                                   const atb_tensor* key, const atb_tensor* value, const atb_tensor* output);

}  // namespace atb::host
