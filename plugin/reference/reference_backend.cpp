#include "reference_backend.hpp"

#include <atb/half.hpp>

#include <cstring>

namespace atb::reference {

ReferenceLayout reference_layout(const atb_layer_spec& spec, int32_t cache_dtype) {
  const uint64_t element = dtype_size(cache_dtype);
  ReferenceLayout layout{};
  atb_kv_cache_spec& cache = layout.cache;
  cache.k_bytes_per_token_per_head = uint64_t(spec.head_size_k) * element;
  cache.v_bytes_per_token_per_head = uint64_t(spec.head_size_v) * element;
  cache.page_bytes = uint64_t(spec.block_size) * uint64_t(spec.num_kv_heads) *
                     (cache.k_bytes_per_token_per_head + cache.v_bytes_per_token_per_head);
  cache.page_alignment = 64;
  cache.block_size = spec.block_size;
  cache.writes_kv = spec.kv_shared_with_layer < 0 ? 1 : 0;
  cache.workspace_bytes = 0;
  layout.v_region_offset = uint64_t(spec.block_size) * uint64_t(spec.num_kv_heads) * cache.k_bytes_per_token_per_head;
  return layout;
}

ReferenceBackend::ReferenceBackend(const atb_layer_spec& spec, const ReferenceConfig& config)
    : spec_(spec),
      config_(config),
      kernels_(plugin::select_row_kernels(config.cache_dtype, config.kernel)),
      math_(plugin::select_vector_math(config.kernel)),
      element_bytes_(dtype_size(config.cache_dtype)),
      layout_(reference_layout(spec, config.cache_dtype)) {}

atb_kv_cache_spec ReferenceBackend::cache_spec() const { return layout_.cache; }

size_t ReferenceBackend::key_offset(int kv_head, int slot) const {
  return (size_t(kv_head) * spec_.block_size + slot) * spec_.head_size_k * element_bytes_;
}

size_t ReferenceBackend::value_offset(int kv_head, int slot) const {
  return layout_.v_region_offset + (size_t(kv_head) * spec_.block_size + slot) * spec_.head_size_v * element_bytes_;
}

namespace {

void copy_row(const std::byte* source, int32_t source_dtype, std::byte* destination, int32_t destination_dtype,
              int elements) {
  if (source_dtype == destination_dtype) {
    std::memcpy(destination, source, size_t(elements) * dtype_size(source_dtype));
    return;
  }
  for (int i = 0; i < elements; ++i)
    store_from_f32(destination, destination_dtype, i, load_as_f32(source, source_dtype, i));
}

}  // namespace

void ReferenceBackend::write_kv(const kit::ForwardBatch& batch) const {
  for (int32_t t = 0; t < batch.num_tokens; ++t) {
    const int64_t slot = batch.slot_mapping[t];
    if (slot < 0) continue;
    std::byte* page = batch.page(slot / spec_.block_size);
    const int offset = static_cast<int>(slot % spec_.block_size);
    for (int h = 0; h < spec_.num_kv_heads; ++h) {
      copy_row(batch.key.row(t, h), batch.key.dtype, page + key_offset(h, offset), config_.cache_dtype,
               spec_.head_size_k);
      copy_row(batch.value.row(t, h), batch.value.dtype, page + value_offset(h, offset), config_.cache_dtype,
               spec_.head_size_v);
    }
  }
}

void ReferenceBackend::score(const plugin::KeySpan& span, int kv_head, const float* queries, int count,
                             float* scores) const {
  const void* rows[plugin::kSpanKeys];
  plugin::gather_rows(
      span, [&](const std::byte* page, int slot) { return page + key_offset(kv_head, slot); }, rows);
  kernels_.dot(queries, count, rows, span.keys, spec_.head_size_k, scores);
}

void ReferenceBackend::accumulate(const plugin::KeySpan& span, int kv_head, const float* probs, int count,
                                  float* acc) const {
  const void* rows[plugin::kSpanKeys];
  plugin::gather_rows(
      span, [&](const std::byte* page, int slot) { return page + value_offset(kv_head, slot); }, rows);
  kernels_.accumulate(probs, count, rows, span.keys, spec_.head_size_v, acc);
}

void ReferenceBackend::prefetch(const plugin::KeySpan& span, int kv_head, Rows rows) const {
  if (rows == Rows::keys)
    plugin::prefetch_rows(span, size_t(spec_.head_size_k) * element_bytes_,
                          [&](const std::byte* page, int slot) { return page + key_offset(kv_head, slot); });
  else
    plugin::prefetch_rows(span, size_t(spec_.head_size_v) * element_bytes_,
                          [&](const std::byte* page, int slot) { return page + value_offset(kv_head, slot); });
}

Status ReferenceBackend::forward(const kit::ForwardBatch& batch) {
  if (spec_.kv_shared_with_layer < 0) write_kv(batch);
  if (batch.write_kv_only) return Status::ok();
  plugin::run_paged_attention(batch, plugin::attention_shape(spec_, config_.threads, math_), *this);
  return Status::ok();
}

}  // namespace atb::reference
