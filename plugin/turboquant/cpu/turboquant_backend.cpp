#include "turboquant_backend.hpp"

#include <atb/half.hpp>
#include <atb/kit/thread_pool.hpp>
#include <atb/plugin/row_kernels.hpp>

#include <algorithm>

namespace atb::turboquant {

Expected<std::unique_ptr<kit::BackendImpl>> TurboquantBackend::create(const atb_layer_spec& spec,
                                                                      const TurboquantConfig& config) {
  auto key = tq::make_quantizer(config.key, spec.head_size_k, config.rotation_seed);
  if (!key) return key.error();
  auto value = tq::make_quantizer(config.value, spec.head_size_v, config.rotation_seed);
  if (!value) return value.error();
  return std::unique_ptr<kit::BackendImpl>(new TurboquantBackend(spec, config, std::move(*key), std::move(*value)));
}

TurboquantBackend::TurboquantBackend(const atb_layer_spec& spec, const TurboquantConfig& config,
                                     std::unique_ptr<tq::Quantizer> key, std::unique_ptr<tq::Quantizer> value)
    : spec_(spec),
      config_(config),
      key_quantizer_(std::move(key)),
      value_quantizer_(std::move(value)),
      key_kernel_(make_key_kernel(*key_quantizer_, config.kernel)),
      value_kernel_(make_value_kernel(*value_quantizer_, config.kernel)),
      layout_(tq::page_layout(config.key, config.value, spec.head_size_k, spec.head_size_v, spec.num_kv_heads,
                              spec.block_size)),
      math_(plugin::select_vector_math(config.simd())) {
  for (int h = 0; h < spec.num_kv_heads; ++h) {
    const int global_head = spec.first_global_kv_head + h;
    key_rotations_.emplace_back(spec.head_size_k, config.rotation_seed, config.cache_layer, global_head);
    value_rotations_.emplace_back(spec.head_size_v, config.rotation_seed, config.cache_layer, global_head);
  }
  if (config.smooth_keys && config.key_maxima.empty())
    key_smoothing_.emplace(spec.num_kv_heads, spec.head_size_k, config.key_smoothing);
  else if (config.smooth_keys)
    key_smoothing_.emplace(spec.num_kv_heads, spec.head_size_k, config.key_smoothing, config.key_maxima,
                           config.key_means);
  if (config.smooth_values && config.value_maxima.empty())
    value_smoothing_.emplace(spec.num_kv_heads, spec.head_size_v, config.value_smoothing);
  else if (config.smooth_values)
    value_smoothing_.emplace(spec.num_kv_heads, spec.head_size_v, config.value_smoothing, config.value_maxima,
                             config.value_means);
}

atb_kv_cache_spec cache_spec_of(const atb_layer_spec& spec, const tq::PageLayout& layout) {
  atb_kv_cache_spec cache{};
  cache.page_bytes = layout.page_bytes;
  cache.page_alignment = tq::kPageRegionAlignment;
  cache.k_bytes_per_token_per_head = layout.k_row_bytes;
  cache.v_bytes_per_token_per_head = layout.v_row_bytes;
  cache.block_size = spec.block_size;
  cache.writes_kv = spec.kv_shared_with_layer < 0 ? 1 : 0;
  cache.workspace_bytes = 0;
  return cache;
}

atb_kv_cache_spec TurboquantBackend::cache_spec() const { return cache_spec_of(spec_, layout_); }

void TurboquantBackend::encode_row(const std::byte* source, const plugin::RowKernels& to_f32,
                                   const tq::Quantizer& quantizer, const tq::Rotation& rotation,
                                   const std::optional<ChannelSmoothing>& smoothing, int kv_head,
                                   std::byte* destination) const {
  float x[tq::kMaxRotationSize];
  to_f32.to_f32(source, quantizer.head_size(), x);
  if (smoothing) smoothing->shrink(kv_head, x);
  if (tq::is_rotated(quantizer.format())) rotation.rotate(x);
  quantizer.encode(x, reinterpret_cast<uint8_t*>(destination));
}

void TurboquantBackend::observe_queries(const kit::ForwardBatch& batch, const plugin::RowKernels& query_rows,
                                        int32_t token, int kv_head) {
  const int group = spec_.num_query_heads / spec_.num_kv_heads;
  float x[tq::kMaxRotationSize];
  for (int g = 0; g < group; ++g) {
    query_rows.to_f32(batch.query.row(token, int64_t(kv_head) * group + g), spec_.head_size_k, x);
    key_smoothing_->observe_query(kv_head, x);
  }
}

void TurboquantBackend::estimate_smoothing(const kit::ForwardBatch& batch) {
  const bool keys = key_smoothing_ && !key_smoothing_->frozen();
  const bool values = value_smoothing_ && !value_smoothing_->frozen();
  if (!keys && !values) return;
  const auto key_rows = plugin::select_row_kernels(batch.key.dtype, config_.simd());
  const auto value_rows = plugin::select_row_kernels(batch.value.dtype, config_.simd());
  const auto query_rows = plugin::select_row_kernels(batch.query.dtype, config_.simd());
  float x[tq::kMaxRotationSize];
  bool observed = false;
  for (int32_t t = 0; t < batch.num_tokens; ++t) {
    if (batch.slot_mapping[t] < 0) continue;
    observed = true;
    for (int h = 0; h < spec_.num_kv_heads; ++h) {
      if (keys) {
        key_rows.to_f32(batch.key.row(t, h), spec_.head_size_k, x);
        key_smoothing_->observe(h, x);
        if (!batch.write_kv_only) observe_queries(batch, query_rows, t, h);
      }
      if (values) {
        value_rows.to_f32(batch.value.row(t, h), spec_.head_size_v, x);
        value_smoothing_->observe(h, x);
      }
    }
  }
  if (!observed) return;  // nothing is written yet: the scales can still wait for rows
  if (keys) key_smoothing_->freeze();
  if (values) value_smoothing_->freeze();
}

void TurboquantBackend::write_kv(const kit::ForwardBatch& batch) const {
  // Tokens in fixed chunks over the threads; every row is written by exactly one of them.
  constexpr int64_t kTokensPerTask = 8;
  const int64_t tasks = (int64_t(batch.num_tokens) + kTokensPerTask - 1) / kTokensPerTask;
  const auto key_rows = plugin::select_row_kernels(batch.key.dtype, config_.simd());
  const auto value_rows = plugin::select_row_kernels(batch.value.dtype, config_.simd());
  kit::parallel_for(tasks, config_.threads, [&](int64_t task) {
    const int32_t end = int32_t(std::min<int64_t>(batch.num_tokens, (task + 1) * kTokensPerTask));
    for (int32_t t = int32_t(task * kTokensPerTask); t < end; ++t) {
      const int64_t slot = batch.slot_mapping[t];
      if (slot < 0) continue;
      std::byte* page = batch.page(slot / spec_.block_size);
      const int offset = static_cast<int>(slot % spec_.block_size);
      for (int h = 0; h < spec_.num_kv_heads; ++h) {
        encode_row(batch.key.row(t, h), key_rows, *key_quantizer_, key_rotations_[size_t(h)], key_smoothing_, h,
                   page + layout_.k_row_offset(h, offset));
        encode_row(batch.value.row(t, h), value_rows, *value_quantizer_, value_rotations_[size_t(h)], value_smoothing_,
                   h, page + layout_.v_row_offset(h, offset));
      }
    }
  });
}

int TurboquantBackend::query_stride(int head_size_k) const { return head_size_k + key_kernel_->extra_floats(); }

void TurboquantBackend::prepare_queries(int kv_head, float* rows, int count) const {
  const int stride = query_stride(spec_.head_size_k);
  for (int g = 0; g < count; ++g) {
    float* query = rows + size_t(g) * size_t(stride);
    if (key_smoothing_) key_smoothing_->scale_query(kv_head, query);
    if (tq::is_rotated(config_.key)) key_rotations_[size_t(kv_head)].rotate(query);
    key_kernel_->prepare(query);
  }
}

void TurboquantBackend::score(const plugin::KeySpan& span, int kv_head, const float* queries, int count,
                              float* scores) const {
  const uint8_t* rows[plugin::kSpanKeys];
  plugin::gather_rows(
      span,
      [&](const std::byte* page, int slot) {
        return reinterpret_cast<const uint8_t*>(page + layout_.k_row_offset(kv_head, slot));
      },
      rows);
  key_kernel_->score(rows, span.keys, queries, count, query_stride(spec_.head_size_k), scores);
}

void TurboquantBackend::accumulate(const plugin::KeySpan& span, int kv_head, const float* probs, int count,
                                   float* acc) const {
  const uint8_t* rows[plugin::kSpanKeys];
  plugin::gather_rows(
      span,
      [&](const std::byte* page, int slot) {
        return reinterpret_cast<const uint8_t*>(page + layout_.v_row_offset(kv_head, slot));
      },
      rows);
  value_kernel_->accumulate(rows, span.keys, probs, count, acc);
}

void TurboquantBackend::prefetch(const plugin::KeySpan& span, int kv_head, Rows rows) const {
  if (rows == Rows::keys)
    plugin::prefetch_rows(span, layout_.k_row_bytes,
                          [&](const std::byte* page, int slot) { return page + layout_.k_row_offset(kv_head, slot); });
  else
    plugin::prefetch_rows(span, layout_.v_row_bytes,
                          [&](const std::byte* page, int slot) { return page + layout_.v_row_offset(kv_head, slot); });
}

void TurboquantBackend::finish_outputs(int kv_head, float* rows, int count) const {
  if (!tq::is_rotated(config_.value)) return;
  for (int g = 0; g < count; ++g) {
    float* row = rows + size_t(g) * size_t(spec_.head_size_v);
    value_rotations_[size_t(kv_head)].unrotate(row);
    if (value_smoothing_) value_smoothing_->restore(kv_head, row);
  }
}

Status TurboquantBackend::forward(const kit::ForwardBatch& batch) {
  if (spec_.kv_shared_with_layer < 0) {
    estimate_smoothing(batch);
    write_kv(batch);
  }
  if (batch.write_kv_only) return Status::ok();
  plugin::run_paged_attention(batch, plugin::attention_shape(spec_, config_.threads, math_), *this);
  return Status::ok();
}

}  // namespace atb::turboquant
