#include <atb/cli/synthetic_kv.hpp>

#include <atb/half.hpp>

#include <random>

namespace atb::cli {

std::string_view kv_data_name(KvData data) {
  return data == KvData::normal ? "N(0,1) bf16" : "K outlier channels 10-20x, bf16";
}

std::vector<float> synthetic_kv(KvData data, bool is_key, int layer, int kv_head, int tokens, int head_size,
                                uint64_t seed) {
  // One independent stream per (seed, role, layer, head), so any subset regenerates identically.
  std::seed_seq sequence{uint32_t(seed), uint32_t(seed >> 32), uint32_t(is_key), uint32_t(layer), uint32_t(kv_head)};
  std::mt19937_64 rng(sequence);
  std::vector<float> factor(size_t(head_size), 1.0f);
  if (data == KvData::outliers && is_key) {
    std::uniform_int_distribution<int> channel(0, head_size - 1);
    std::uniform_real_distribution<float> magnitude(10.0f, 20.0f);
    for (int i = 0; i < kOutlierChannels; ++i) factor[size_t(channel(rng))] = magnitude(rng);
  }
  std::normal_distribution<float> normal;
  std::vector<float> values(size_t(tokens) * size_t(head_size));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = atb::bf16_to_f32(atb::f32_to_bf16(factor[i % size_t(head_size)] * normal(rng)));
  return values;
}

}  // namespace atb::cli
