#include <atb/cli/synthetic_kv.hpp>

#include <atb/half.hpp>
#include <tq/splitmix64.hpp>

#include <cmath>

namespace atb::cli {
namespace {

using ::tq::splitmix64;

// An independent stream per (seed, role, layer, head, index): any token range regenerates alike.
uint64_t stream(uint64_t seed, bool is_key, int layer, int kv_head, int64_t index) {
  uint64_t state = seed;
  for (uint64_t part : {uint64_t(is_key), uint64_t(uint32_t(layer)), uint64_t(uint32_t(kv_head)), uint64_t(index)}) {
    state ^= splitmix64(state) + part;
  }
  return splitmix64(state);
}

double uniform(uint64_t& state) { return (double(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)

}  // namespace

std::string_view kv_data_name(KvData data) {
  return data == KvData::normal ? "N(0,1) bf16" : "K outlier channels 10-20x, bf16";
}

std::vector<float> synthetic_kv(KvData data, bool is_key, int layer, int kv_head, int64_t first_token, int tokens,
                                int head_size, uint64_t seed) {
  std::vector<float> factor(size_t(head_size), 1.0f);
  if (data == KvData::outliers && is_key) {
    uint64_t channels = stream(seed, is_key, layer, kv_head, -1);
    for (int i = 0; i < kOutlierChannels; ++i) {
      const size_t channel = splitmix64(channels) % uint64_t(head_size);
      factor[channel] = float(10.0 + 10.0 * uniform(channels));
    }
  }
  std::vector<float> values(size_t(tokens) * size_t(head_size));
  for (int t = 0; t < tokens; ++t) {
    uint64_t state = stream(seed, is_key, layer, kv_head, first_token + t);
    float* row = values.data() + size_t(t) * size_t(head_size);
    for (int i = 0; i < head_size; i += 2) {  // Box–Muller pairs
      const double radius = std::sqrt(-2.0 * std::log(uniform(state))), angle = 2 * M_PI * uniform(state);
      row[i] = atb::bf16_to_f32(atb::f32_to_bf16(factor[size_t(i)] * float(radius * std::cos(angle))));
      if (i + 1 < head_size)
        row[i + 1] = atb::bf16_to_f32(atb::f32_to_bf16(factor[size_t(i) + 1] * float(radius * std::sin(angle))));
    }
  }
  return values;
}

}  // namespace atb::cli
