// Synthetic K/V for the tools: reproducible from a seed, one generator per kind of data.
//
//   normal:    every coordinate N(0, 1), rounded to bf16 (the seed's verification setting).
//   outliers:  K like real attention keys: N(0, 1) except a few fixed channels per (layer, KV head)
//              whose values are 10-20x larger (kOutlierChannels channels, each with its own factor
//              drawn uniformly from [10, 20]), rounded to bf16.  V stays N(0, 1): real values do
//              not have outlier channels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atb::cli {

enum class KvData { normal, outliers };

inline constexpr int kOutlierChannels = 4;

std::string_view kv_data_name(KvData data);

// Row-major [token][head_size] vectors of tokens first_token .. first_token + tokens - 1 of one
// (layer, KV head) of K (is_key) or V.  Each token has its own random stream, so any range of
// tokens regenerates identically.
std::vector<float> synthetic_kv(KvData data, bool is_key, int layer, int kv_head, int64_t first_token, int tokens,
                                int head_size, uint64_t seed);

}  // namespace atb::cli
