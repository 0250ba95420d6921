// The CUDA path shared by the plugins: paged attention over rows that a RowCodec describes (plain
// f32/f16/bf16 rows for `reference`, packed codes for `turboquant`), split over the context with a
// merge of partial softmax states.  Everything here only enqueues work on the caller's stream:
// nothing is allocated and nothing synchronises, so a forward can be captured in a CUDA graph.
//
// Plain host types only, so the plugins' C++ sources can fill them; the kernels live in
// paged_attention_cuda.cu.
#pragma once

#include <atb/abi.h>
#include <atb/status.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace atb::plugin::cuda {

// How one K or V row of head_size coordinates is stored.
enum RowKind : int32_t {
  kPlainF32 = 0,
  kPlainF16 = 1,
  kPlainBf16 = 2,
  kAffineUnsigned = 3,  // x = zero + scale * code, fp16 (scale, zero) per block
  kAffineSigned = 4,    // the same with two's-complement 8-bit codes
  kCodebook = 5,        // x = scale * table[code], one fp16 scale per block
};

// The plain row kind storing `dtype` (an atb_dtype: f32, f16 or bf16).
inline RowKind plain_row_kind(int32_t dtype) {
  return dtype == ATB_DTYPE_F32 ? kPlainF32 : dtype == ATB_DTYPE_F16 ? kPlainF16 : kPlainBf16;
}

struct RowCodec {
  int32_t kind = kPlainF32;
  int32_t bits = 0;           // bits per packed code, LSB first
  int32_t block_size = 0;     // coordinates per scale
  int32_t codes_offset = 0;   // bytes into the row
  int32_t scales_offset = 0;  // bytes into the row
  int32_t rotated = 0;        // rows hold R x, R tq::Rotation(head_size, rotation_seed, layer_index, global KV head)
  uint64_t rotation_seed = 0;
  int32_t layer_index = 0;
  float table[256] = {};  // centroids (kCodebook); their boundaries (encode) follow
  float boundaries[255] = {};
  int32_t table_size = 0;
};

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
  const uint8_t* permutations = nullptr;  // rotation permutations, [KV heads][2][head_size] (RotationTables)
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
  const uint8_t* permutations = nullptr;  // rotation permutations, [KV heads][2][head_size] (RotationTables)
};

// Writes every new token's K and V row into its slot (one launch).
Status launch_write_kv(const WriteParams& params, const RowCodec& key, const RowCodec& value, void* stream);

// Head sizes the CUDA kernels serve: 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256 (every size
// either plugin lists; the tiled and tensor-core kernels take 64, 128 and 256, the simple kernel all).
bool head_size_supported(int head_size);

// The seeded permutations of a rotation whose head size is not a power of two, for every local KV
// head: bytes [kv_head][round][head_size] (new[i] = old[perm[i]]).  Made on the host at layer
// creation, copied into the workspace by every forward (by a kernel, so graphs capture it) and read
// there by the kernels.  Empty for power-of-two head sizes and unrotated rows.
struct RotationTables {
  std::vector<uint8_t> permutations;
};

constexpr bool is_power_of_two_size(int n) { return n > 0 && (n & (n - 1)) == 0; }

// Copies `bytes` host bytes to device memory `to` by kernels whose parameters carry them (a copy
// that a CUDA graph captures without pinned host memory).
Status launch_store_bytes(void* to, const uint8_t* bytes, size_t count, void* stream);

// Attention for every query token of the batch; reads the pages only.
Status launch_paged_attention(const AttentionParams& params, const RowCodec& key, const RowCodec& value, void* stream);

// The workspace a layer asks for: partial states of up to this many tokens x query heads x splits.
uint64_t attention_workspace_bytes(int num_query_heads, int head_size);

// Whether a CUDA device can be used here (false on a machine without a driver or GPU).
bool device_available();

// Status of the last launch on this thread ("<what>: <CUDA error>" when it failed).
Status last_launch_status(const char* what);

}  // namespace atb::plugin::cuda
