// A forward call after validation: every pointer checked and, for host (CPU) arrays, every index
// range-checked, so kernels can trust it.  Device arrays are range-checked by the device kernels.  Built only by
// validate_forward() (plugin_definition.cpp).
#pragma once

#include <atb/abi.h>

#include <cstddef>
#include <cstdint>

namespace atb::kit {

// A 3-D [tokens, heads, head_size] view with element strides; the last stride is 1.
struct TensorView {
  std::byte* data = nullptr;
  int32_t dtype = 0;
  int64_t shape[3] = {0, 0, 0};
  int64_t strides[3] = {0, 0, 1};

  // Address of row (token, head): head_size contiguous elements.
  std::byte* row(int64_t token, int64_t head) const {
    return data + (token * strides[0] + head * strides[1]) * element_bytes();
  }
  int64_t element_bytes() const { return dtype == ATB_DTYPE_F32 ? 4 : 2; }
};

struct ForwardBatch {
  TensorView query;
  TensorView key;  // data is null when the layer does not write K/V
  TensorView value;
  TensorView output;
  std::byte* pages = nullptr;
  int64_t num_pages = 0;
  uint64_t page_stride_bytes = 0;
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  const int64_t* slot_mapping = nullptr;
  const int32_t* query_start_loc = nullptr;
  const int32_t* seq_lens = nullptr;
  const int32_t* block_tables = nullptr;
  int32_t block_table_stride = 0;
  void* workspace = nullptr;
  uint64_t workspace_bytes = 0;
  bool write_kv_only = false;            // ATB_FORWARD_WRITE_KV_ONLY: query/output are not to be touched
  int32_t device_type = ATB_DEVICE_CPU;  // where every pointer above lives
  void* stream = nullptr;                // cudaStream_t to enqueue on (CUDA); NULL: the default stream

  std::byte* page(int64_t page_id) const { return pages + page_id * static_cast<int64_t>(page_stride_bytes); }
  const int32_t* block_table(int32_t seq) const { return block_tables + int64_t(seq) * block_table_stride; }
  int32_t query_len(int32_t seq) const { return query_start_loc[seq + 1] - query_start_loc[seq]; }
};

}  // namespace atb::kit
