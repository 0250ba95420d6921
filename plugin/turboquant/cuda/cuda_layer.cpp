// The TurboQuant layer on CUDA, host side: each format reduced to the RowCodec its kernels read,
// the rotation tables, and the layer planned from them.
#include "cuda_layer.hpp"

#include <atb/plugin/cuda/cuda_backend.hpp>
#include <tq/byte_accounting.hpp>
#include <tq/quantizer.hpp>
#include <tq/rotation.hpp>
#include <tq/scaled_codes.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "channel_smoothing.hpp"
#include "row_codec.hpp"
#include "turboquant_backend.hpp"
#include "turboquant_kernels.hpp"

namespace atb::turboquant::cuda {
namespace {

// How the CUDA kernels read and write rows of one format.
Expected<RowCodec> row_codec(const tq::Format& format, int head_size, const TurboquantConfig& config) {
  RowCodec codec;
  codec.kind = row_kind(format);
  if (codec.kind < 0)
    return Status::unsupported(
        "format " + std::string(format.name) +
        " on CUDA; allowed there: the affine, Lloyd-Max (q2_0..q8_0), tq1..tq8 and plain formats");
  const tq::RowLayout layout = tq::row_layout(format, head_size);
  codec.bits = layout.code_bits;
  codec.block_size = layout.block_size;
  codec.codes_offset = int32_t(layout.codes_offset);
  codec.scales_offset = int32_t(layout.scales_offset);
  codec.rotated = tq::is_rotated(format) ? 1 : 0;
  codec.rotation_seed = config.rotation_seed;
  codec.layer_index = config.cache_layer;
  if (codec.kind != kCodebook) return codec;
  auto made = tq::make_quantizer(format, head_size, config.rotation_seed);
  if (!made) return made.error();
  const tq::ScalarCodebook& book = *(*made)->codebook();
  codec.table_size = int32_t(book.centroids.size());
  codec.refinements = tq::scaled_code_refinements(format.scheme);
  std::copy(book.centroids.begin(), book.centroids.end(), codec.table);
  std::copy(book.boundaries.begin(), book.boundaries.end(), codec.boundaries);
  return codec;
}

// The permutations of the layer's rotations where the head size is not a power of two (the CUDA
// kernels derive the signs themselves), [KV heads][2 rounds][head_size] bytes.  K and V rows share
// one rotation per KV head.
std::vector<uint8_t> rotation_tables(const atb_layer_spec& spec, const TurboquantConfig& config) {
  std::vector<uint8_t> tables;
  const int d = spec.head_size_k;
  if (!(tq::is_rotated(config.key) || tq::is_rotated(config.value)) || plugin::cuda::is_power_of_two_size(d))
    return tables;
  for (int head = 0; head < spec.num_kv_heads; ++head) {
    const tq::Rotation rotation(d, config.rotation_seed, config.cache_layer, spec.first_global_kv_head + head);
    for (int round = 0; round < 2; ++round)
      for (int32_t index : rotation.permutation(round)) tables.push_back(uint8_t(index));
  }
  return tables;
}

// Appends [KV heads][head_size] f32 of `rows_of` to the layer tables; returns where they start.
template <typename RowsOf>
int32_t append_rows(int kv_heads, int head_size, RowsOf rows_of, std::vector<uint8_t>& tables) {
  tables.resize((tables.size() + 15) / 16 * 16);
  const auto start = int32_t(tables.size());
  for (int h = 0; h < kv_heads; ++h) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(rows_of(h));
    tables.insert(tables.end(), bytes, bytes + sizeof(float) * size_t(head_size));
  }
  return start;
}

// Appends a role's smoothing scales and, where it centers, its means (the CPU backend's, from the same
// file) to the layer tables and points the codec at them.
void append_smoothing(const std::vector<float>& maxima, const std::vector<float>& means, int kv_heads, int head_size,
                      SmoothingRule rule, RowCodec& codec, std::vector<uint8_t>& tables) {
  const ChannelSmoothing smoothing(kv_heads, head_size, rule, maxima, means);
  codec.smoothing_offset = append_rows(
      kv_heads, head_size, [&](int h) { return smoothing.scales(h); }, tables);
  if (rule.centered)
    codec.centering_offset = append_rows(
        kv_heads, head_size, [&](int h) { return smoothing.means(h); }, tables);
}

}  // namespace

Expected<std::unique_ptr<kit::BackendImpl>> make_cuda_backend(const atb_layer_spec& spec,
                                                              const TurboquantConfig& config) {
  ATB_RETURN_IF_ERROR(plugin::cuda::check_cuda_layer(spec));
  auto key = row_codec(config.key, spec.head_size_k, config);
  if (!key) return key.error();
  auto value = row_codec(config.value, spec.head_size_v, config);
  if (!value) return value.error();
  const tq::PageLayout pages =
      tq::page_layout(config.key, config.value, spec.head_size_k, spec.head_size_v, spec.num_kv_heads, spec.block_size);
  const plugin::cuda::CudaLayout layout{cache_spec_of(spec, pages), pages.v_region_offset};
  // Online smoothing needs rows the host never shows a CUDA layer's host side: read_config refuses it.
  if ((config.smooth_keys && config.key_maxima.empty()) || (config.smooth_values && config.value_maxima.empty()))
    return Status::unsupported("k_smoothing/v_smoothing = online on a CUDA layer; allowed there: none, file");
  std::vector<uint8_t> tables = rotation_tables(spec, config);
  if (config.smooth_keys)
    append_smoothing(config.key_maxima, config.key_means, spec.num_kv_heads, spec.head_size_k, config.key_smoothing,
                     *key, tables);
  if (config.smooth_values)
    append_smoothing(config.value_maxima, config.value_means, spec.num_kv_heads, spec.head_size_v,
                     config.value_smoothing, *value, tables);
  auto kernels = make_turboquant_kernels(spec, layout, {config.key, *key}, {config.value, *value}, std::move(tables));
  if (!kernels) return kernels.error();
  return plugin::cuda::CudaBackend::create(spec, layout, std::move(*kernels));
}
}  // namespace atb::turboquant::cuda
