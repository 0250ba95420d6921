#include "codec_fidelity.hpp"

#include <tq/byte_accounting.hpp>
#include <tq/quantizer.hpp>
#include <tq/rotation.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

namespace atb::tool {
namespace {

using tq::Role;

struct LayerResult {
  double squared_error = 0, cosine_sum = 0, min_cosine = 1;
  uint64_t vectors = 0;
  bool stray_write = false;
};

constexpr uint8_t kUntouched = 0xa5;

LayerResult measure_layer(const tq::Quantizer& quantizer, const tq::Format& format, Role role, cli::KvData data,
                          const CacheShape& shape, int layer, uint64_t data_seed, uint64_t rotation_seed) {
  // The other role stored as f16: only this role's rows are written, the rest must stay untouched.
  const tq::Format other = *tq::find_format(role == Role::key ? Role::value : Role::key, "f16");
  const tq::PageLayout page =
      role == Role::key
          ? tq::page_layout(format, other, shape.head_size, shape.head_size, shape.kv_heads, shape.block_size)
          : tq::page_layout(other, format, shape.head_size, shape.head_size, shape.kv_heads, shape.block_size);
  const int pages = (shape.tokens + shape.block_size - 1) / shape.block_size;
  std::vector<uint8_t> pool(size_t(pages) * page.page_bytes, kUntouched);
  std::vector<uint8_t> written(pool.size(), 0);

  LayerResult result;
  const int d = shape.head_size;
  std::vector<float> scratch(static_cast<size_t>(d)), decoded(static_cast<size_t>(d));
  for (int head = 0; head < shape.kv_heads; ++head) {
    const tq::Rotation rotation(d, rotation_seed, layer, head);
    const auto x = cli::synthetic_kv(data, role == Role::key, layer, head, 0, shape.tokens, d, data_seed);
    const auto row_offset = [&](int token) {
      const size_t page_start = size_t(token / shape.block_size) * page.page_bytes;
      const int slot = token % shape.block_size;
      return page_start + (role == Role::key ? page.k_row_offset(head, slot) : page.v_row_offset(head, slot));
    };
    for (int t = 0; t < shape.tokens; ++t) {
      const size_t offset = row_offset(t);
      tq::encode_vector(quantizer, rotation, x.data() + size_t(t) * size_t(d), pool.data() + offset, scratch.data());
      std::fill_n(written.begin() + ptrdiff_t(offset), quantizer.row_bytes(), uint8_t(1));
    }
    for (int t = 0; t < shape.tokens; ++t) {
      tq::decode_vector(quantizer, rotation, pool.data() + row_offset(t), decoded.data());
      const float* original = x.data() + size_t(t) * size_t(d);
      double dot = 0, norm_x = 0, norm_y = 0;
      for (int i = 0; i < d; ++i) {
        const double a = original[i], b = decoded[size_t(i)];
        result.squared_error += (a - b) * (a - b);
        dot += a * b;
        norm_x += a * a;
        norm_y += b * b;
      }
      const double cosine = norm_x > 0 && norm_y > 0 ? dot / std::sqrt(norm_x * norm_y) : (norm_x == norm_y ? 1 : 0);
      result.cosine_sum += cosine;
      result.min_cosine = std::min(result.min_cosine, cosine);
      ++result.vectors;
    }
  }
  for (size_t i = 0; i < pool.size(); ++i)
    if (!written[i] && pool[i] != kUntouched) result.stray_write = true;
  return result;
}

}  // namespace

Expected<FidelityStats> measure_fidelity(const tq::Format& format, Role role, cli::KvData data, const CacheShape& shape,
                                         uint64_t data_seed, uint64_t rotation_seed) {
  auto quantizer = tq::make_quantizer(format, shape.head_size, rotation_seed);
  if (!quantizer) return quantizer.error();
  std::vector<LayerResult> layers(size_t(shape.layers));
  const int threads = std::max(1, std::min(shape.layers, int(std::thread::hardware_concurrency())));
  {
    std::vector<std::jthread> workers;
    for (int w = 0; w < threads; ++w)
      workers.emplace_back([&, w] {
        for (int layer = w; layer < shape.layers; layer += threads)
          layers[size_t(layer)] =
              measure_layer(**quantizer, format, role, data, shape, layer, data_seed, rotation_seed);
      });
  }
  FidelityStats stats;
  double squared_error = 0, cosine_sum = 0;
  for (int layer = 0; layer < shape.layers; ++layer) {  // fixed order: same figures for any thread count
    const LayerResult& r = layers[size_t(layer)];
    if (r.stray_write)
      return Status::internal("format " + std::string(format.name) + " wrote outside its rows in layer " +
                              std::to_string(layer) + ": byte accounting and encode disagree");
    squared_error += r.squared_error;
    cosine_sum += r.cosine_sum;
    stats.min_cosine = std::min(stats.min_cosine, r.min_cosine);
    stats.vectors += r.vectors;
  }
  stats.mse = squared_error / (double(stats.vectors) * shape.head_size);
  stats.mean_cosine = cosine_sum / double(stats.vectors);
  return stats;
}

}  // namespace atb::tool
