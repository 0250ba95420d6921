#include <atb/cli/synthetic_kv.hpp>

#include <atb/half.hpp>
#include <tq/splitmix64.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

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

// A standard normal pair (Box–Muller).
std::pair<double, double> normal_pair(uint64_t& state) {
  const double radius = std::sqrt(-2.0 * std::log(uniform(state))), angle = 2 * M_PI * uniform(state);
  return {radius * std::cos(angle), radius * std::sin(angle)};
}

}  // namespace

std::string_view kv_data_name(KvData data) {
  switch (data) {
    case KvData::normal:
      return "N(0,1) bf16";
    case KvData::outliers:
      return "K outlier channels 10-20x, bf16";
    case KvData::llm:
      return "LLM-like: channel means, K 4 RoPE pairs 16-48x, V 2 channels 8-16x, bf16";
  }
  return "";
}

Expected<std::vector<KvData>> parse_kv_data(std::string_view name) {
  if (name == "normal") return std::vector<KvData>{KvData::normal};
  if (name == "outliers") return std::vector<KvData>{KvData::outliers};
  if (name == "llm") return std::vector<KvData>{KvData::llm};
  if (name == "both") return std::vector<KvData>{KvData::normal, KvData::outliers};
  if (name == "all") return std::vector<KvData>{KvData::normal, KvData::outliers, KvData::llm};
  return Status::invalid("--data " + std::string(name) +
                         ": allowed: normal, outliers, llm, both (normal and outliers), all");
}

GeneratorSlot generator_slot(KvData data, int layer, int sequence, int64_t first_token) {
  if (data == KvData::llm) return {layer, first_token + (int64_t(sequence) << 40)};
  return {layer * 1024 + sequence, first_token};
}

ChannelProfile channel_profile(KvData data, bool is_key, int layer, int kv_head, int head_size, uint64_t seed) {
  ChannelProfile profile{std::vector<float>(size_t(head_size), 1.0f), std::vector<float>(size_t(head_size), 0.0f)};
  auto& [factor, mean] = profile;
  uint64_t channels = stream(seed, is_key, layer, kv_head, -1);
  if (data == KvData::outliers && is_key) {
    for (int i = 0; i < kOutlierChannels; ++i) {
      const size_t channel = splitmix64(channels) % uint64_t(head_size);
      factor[channel] = float(10.0 + 10.0 * uniform(channels));
    }
  }
  if (data == KvData::llm) {
    const double spread = is_key ? 1.0 : 0.5;
    for (int i = 0; i + 1 < head_size; i += 2) {
      const auto [first, second] = normal_pair(channels);
      mean[size_t(i)] = float(spread * first), mean[size_t(i) + 1] = float(spread * second);
    }
    if (is_key) {
      const int half = std::max(head_size / 2, 2), pairs = std::min(kLlmKeyPairs, half / 4);
      for (int i = 0; i < pairs; ++i) {  // pairs in [head_size / 4, head_size / 2): may repeat
        const size_t channel = 2 * (size_t(half / 2) + splitmix64(channels) % uint64_t(std::max(half / 2, 1)));
        const float f = float(16.0 + 32.0 * uniform(channels));
        if (channel + 1 < size_t(head_size)) factor[channel] = factor[channel + 1] = f;
      }
    } else {
      for (int i = 0; i < kLlmValueChannels; ++i)
        factor[splitmix64(channels) % uint64_t(head_size)] = float(8.0 + 8.0 * uniform(channels));
    }
  }
  return profile;
}

std::vector<float> synthetic_kv(KvData data, bool is_key, int layer, int kv_head, int64_t first_token, int tokens,
                                int head_size, uint64_t seed) {
  const auto [factor, mean] = channel_profile(data, is_key, layer, kv_head, head_size, seed);
  std::vector<float> values(size_t(tokens) * size_t(head_size));
  for (int t = 0; t < tokens; ++t) {
    uint64_t state = stream(seed, is_key, layer, kv_head, first_token + t);
    float* row = values.data() + size_t(t) * size_t(head_size);
    for (int i = 0; i < head_size; i += 2) {
      const auto [first, second] = normal_pair(state);
      row[i] = atb::bf16_to_f32(atb::f32_to_bf16(factor[size_t(i)] * (mean[size_t(i)] + float(first))));
      if (i + 1 < head_size)
        row[i + 1] = atb::bf16_to_f32(atb::f32_to_bf16(factor[size_t(i) + 1] * (mean[size_t(i) + 1] + float(second))));
    }
  }
  return values;
}

}  // namespace atb::cli
