// The `turboquant` backend: a paged cache of encoded rows and attention computed on the codes.
//
// Page layout (tq::page_layout): K rows of every (KV head, slot), head-major, then, from the next
// 64-byte boundary, the V rows; each row is one token's vector of one KV head in its format.
// Rotations are per (rotation seed, cache layer, global KV head), so tensor-parallel shards and
// KV-sharing layers rotate exactly as the whole model's own layer does.
#pragma once

#include <atb/kit/plugin_definition.hpp>
#include <atb/plugin/paged_attention.hpp>
#include <atb/plugin/row_kernels.hpp>
#include <tq/byte_accounting.hpp>
#include <tq/quantizer.hpp>
#include <tq/rotation.hpp>

#include <memory>
#include <optional>
#include <vector>

#include "channel_smoothing.hpp"
#include "code_kernels.hpp"
#include "turboquant_config.hpp"

namespace atb::turboquant {

// The KV-cache spec of a layer whose pages are laid out as `layout` (CPU and CUDA alike).
atb_kv_cache_spec cache_spec_of(const atb_layer_spec& spec, const tq::PageLayout& layout);

class TurboquantBackend final : public kit::BackendImpl, private plugin::TileOps {
 public:
  static Expected<std::unique_ptr<kit::BackendImpl>> create(const atb_layer_spec& spec, const TurboquantConfig& config);

  atb_kv_cache_spec cache_spec() const override;
  Status forward(const kit::ForwardBatch& batch) override;

 private:
  TurboquantBackend(const atb_layer_spec& spec, const TurboquantConfig& config, std::unique_ptr<tq::Quantizer> key,
                    std::unique_ptr<tq::Quantizer> value);

  void estimate_smoothing(const kit::ForwardBatch& batch);
  // The query rows of `token` that KV head `kv_head` serves, into its K smoothing statistics.
  void observe_queries(const kit::ForwardBatch& batch, const plugin::RowKernels& query_rows, int32_t token,
                       int kv_head);
  void write_kv(const kit::ForwardBatch& batch) const;
  // `to_f32` reads the host's row (the batch's dtype), chosen once per write.
  void encode_row(const std::byte* source, const plugin::RowKernels& to_f32, const tq::Quantizer& quantizer,
                  const tq::Rotation& rotation, const std::optional<ChannelSmoothing>& smoothing, int kv_head,
                  std::byte* destination) const;

  int query_stride(int head_size_k) const override;
  void prepare_queries(int kv_head, float* rows, int count) const override;
  void score(const plugin::KeySpan& span, int kv_head, const float* queries, int count, float* scores) const override;
  void accumulate(const plugin::KeySpan& span, int kv_head, const float* probs, int count, float* acc) const override;
  void prefetch(const plugin::KeySpan& span, int kv_head, Rows rows) const override;
  void finish_outputs(int kv_head, float* rows, int count) const override;

  atb_layer_spec spec_;
  TurboquantConfig config_;
  std::unique_ptr<tq::Quantizer> key_quantizer_, value_quantizer_;
  std::unique_ptr<KeyKernel> key_kernel_;
  std::unique_ptr<ValueKernel> value_kernel_;
  std::vector<tq::Rotation> key_rotations_, value_rotations_;        // per local KV head
  std::optional<ChannelSmoothing> key_smoothing_, value_smoothing_;  // set by the first write
  tq::PageLayout layout_;
  plugin::VectorMath math_;
};

}  // namespace atb::turboquant
