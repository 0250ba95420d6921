// Synthetic K/V for the tools: reproducible from a seed, one generator per kind of data.
//
//   normal:    every coordinate N(0, 1), rounded to bf16 (the seed's verification setting).
//   outliers:  K like real attention keys: N(0, 1) except a few fixed channels per (layer, KV head)
//              whose values are 10-20x larger (kOutlierChannels channels, each with its own factor
//              drawn uniformly from [10, 20]), rounded to bf16.  V stays N(0, 1).
//   llm:       keys and values as an LLM's cache holds them (KIVI, KVQuant): every channel has a
//              mean of its own (N(0, 1) per channel, K; N(0, 0.5), V), and the energy concentrates
//              in a few channels: K in kLlmKeyPairs RoPE pairs (both channels of a pair alike, from
//              the slow-rotating half) at 16-48x, V in kLlmValueChannels channels at 8-16x; bf16.
//              As in ../shared/tools/make_outlier_model.py, the queries that go with it are divided
//              by the K factors (DecodeWorkload::fill does), so scores are those of unscaled keys and the
//              only harm the large channels do is to the quantization.
#pragma once

#include <atb/status.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atb::cli {

enum class KvData { normal, outliers, llm };

inline constexpr int kOutlierChannels = 4;
inline constexpr int kLlmKeyPairs = 4;
inline constexpr int kLlmValueChannels = 2;

std::string_view kv_data_name(KvData data);

// The data sets a --data flag names: normal, outliers, llm, both (normal and outliers) or all.
Expected<std::vector<KvData>> parse_kv_data(std::string_view name);

// What a set does to each channel of one (layer, KV head) of K or V: x = factor * (mean + N(0, 1)).
struct ChannelProfile {
  std::vector<float> factor, mean;
};
ChannelProfile channel_profile(KvData data, bool is_key, int layer, int kv_head, int head_size, uint64_t seed);

// Row-major [token][head_size] vectors of tokens first_token .. first_token + tokens - 1 of one
// (layer, KV head) of K (is_key) or V.  Each token has its own random stream, so any range of
// tokens regenerates identically.
std::vector<float> synthetic_kv(KvData data, bool is_key, int layer, int kv_head, int64_t first_token, int tokens,
                                int head_size, uint64_t seed);

// Where sequence `sequence`'s tokens of layer `layer` come from in the generator.  The llm set keeps
// the layer's channels for every sequence (a model's sequences share them; online smoothing relies on
// it) and gives each sequence a token range of its own; the other sets give each sequence a generator
// layer of its own (layer * 1024 + sequence), as their published figures were taken.
struct GeneratorSlot {
  int layer;
  int64_t first_token;
};
GeneratorSlot generator_slot(KvData data, int layer, int sequence, int64_t first_token);

}  // namespace atb::cli
