// What the CUDA kernels of a forward are handed: the batch's tensors, pages and device arrays, and
// the layer's shape.  Plain host types, filled by CudaBackend from the ABI's forward arguments and
// passed to the kernels by value.
#pragma once

#include <atb/abi.h>

#include <cstddef>
#include <cstdint>

namespace atb::plugin::cuda {

struct AttentionParams {
  const void* query = nullptr;  // [tokens, query heads, head_size], io_dtype
  int64_t query_token_stride = 0, query_head_stride = 0;
  void* output = nullptr;  // [tokens, query heads, head_size], io_dtype
  int64_t output_token_stride = 0, output_head_stride = 0;
  int32_t io_dtype = 0;  // atb_dtype
  const uint8_t* pages = nullptr;
  uint64_t page_stride = 0;
  int64_t num_pages = 0;
  const int32_t* query_start_loc = nullptr;
  const int32_t* seq_lens = nullptr;
  const int32_t* block_tables = nullptr;
  int32_t block_table_stride = 0;
  int32_t num_seqs = 0, num_tokens = 0;
  int32_t num_query_heads = 0, num_kv_heads = 0, first_global_kv_head = 0;
  int32_t head_size = 0, block_size = 0;
  int32_t sliding_window = 0;
  float soft_cap = 0, scale = 1;
  uint64_t k_row_bytes = 0, v_row_bytes = 0, v_region_offset = 0;
  void* workspace = nullptr;  // partial softmax states of split contexts
  uint64_t workspace_bytes = 0;
  const uint8_t* layer_tables = nullptr;  // the format's per-layer tables (LayerKernels::tables, uploaded at create)
  int32_t decode_tokens_only = 0;  // set by the dispatch: sequences with several new tokens are the prefill kernel's
  // 1: the write kernel of this forward was launched just before on the same stream.  The
  // tensor-core kernel then starts while it runs (programmatic dependent launch) and waits for it
  // only before it reads rows of a sequence's new positions (seq_len - q_len and on): a token's slot
  // is the one its sequence's block table gives for its position, so no other row is written.
  int32_t overlaps_write = 0;
  // 1: the split blocks make more than one wave (set by the dispatch), and the tiled kernels give the
  // first half of the splits the larger share of each context (split_range).
  int32_t uneven_splits = 0;
};

struct WriteParams {
  const void* key = nullptr;  // [tokens, KV heads, head_size], dtype
  int64_t key_token_stride = 0, key_head_stride = 0;
  const void* value = nullptr;  // [tokens, KV heads, head_size], dtype
  int64_t value_token_stride = 0, value_head_stride = 0;
  int32_t dtype = 0;
  const int64_t* slot_mapping = nullptr;  // [tokens]; -1 (or outside the pool): not written
  uint8_t* pages = nullptr;
  uint64_t page_stride = 0;
  int64_t num_pages = 0;
  int32_t num_tokens = 0, num_kv_heads = 0, first_global_kv_head = 0, head_size = 0, block_size = 0;
  uint64_t k_row_bytes = 0, v_row_bytes = 0, v_region_offset = 0;
  const uint8_t* layer_tables = nullptr;  // as AttentionParams::layer_tables
};

}  // namespace atb::plugin::cuda
