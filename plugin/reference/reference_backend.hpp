// The `reference` backend: an uncompressed paged KV cache and exact attention.
//
// Page layout (one layer, block_size tokens): all K rows, then all V rows, head-major so that one
// head's keys within a page are contiguous:
//   K[kv_head][slot_in_page][head_size_k]  then  V[kv_head][slot_in_page][head_size_v]
// in the cache dtype (the layer's dtype unless the config says otherwise).
#pragma once

#include <atb/kit/plugin_definition.hpp>
#include <atb/plugin/paged_attention.hpp>
#include <atb/plugin/row_kernels.hpp>

namespace atb::reference {

struct ReferenceConfig {
  int32_t cache_dtype;  // atb_dtype
  int threads;
  std::string kernel;  // "auto", "scalar", "avx2"
};

// A layer's pages in the cache dtype: the KV-cache spec and where the V rows start in a page.
struct ReferenceLayout {
  atb_kv_cache_spec cache;
  uint64_t v_region_offset;
};
ReferenceLayout reference_layout(const atb_layer_spec& spec, int32_t cache_dtype);

class ReferenceBackend final : public kit::BackendImpl, private plugin::TileOps {
 public:
  ReferenceBackend(const atb_layer_spec& spec, const ReferenceConfig& config);

  atb_kv_cache_spec cache_spec() const override;
  Status forward(const kit::ForwardBatch& batch) override;

 private:
  void write_kv(const kit::ForwardBatch& batch) const;
  void score(const plugin::KeySpan& span, int kv_head, const float* queries, int count, float* scores) const override;
  void accumulate(const plugin::KeySpan& span, int kv_head, const float* probs, int count, float* acc) const override;
  void prefetch(const plugin::KeySpan& span, int kv_head, Rows rows) const override;

  // Byte offsets of a K or V row inside a page.
  size_t key_offset(int kv_head, int slot) const;
  size_t value_offset(int kv_head, int slot) const;

  atb_layer_spec spec_;
  ReferenceConfig config_;
  plugin::RowKernels kernels_;
  plugin::VectorMath math_;
  size_t element_bytes_;
  ReferenceLayout layout_;
};

}  // namespace atb::reference
