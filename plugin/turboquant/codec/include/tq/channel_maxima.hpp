// The largest magnitude of each K and V channel per layer and global KV head, measured over a text by
// `tq calibrate` and read by the turboquant plugin (k_smoothing/v_smoothing "file") to fix its
// per-channel smoothing scales at create.  A JSON file:
//   {"format": "atb-channel-maxima", "version": 1, "source": "...", "layers": L, "kv_heads": H,
//    "head_size": D, "key": [L][H][D], "value": [L][H][D], "key_mean": [L][H][D], "value_mean": [L][H][D]}
// with finite maxima >= 0 and finite means (k_centering/v_centering "file"; files without them serve
// smoothing alone).  Global KV heads, so tensor-parallel shards read their own slices of one file.
#pragma once

#include <atb/status.hpp>
#include <tq/format_table.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace tq {

struct ChannelMaxima {
  int layers = 0, kv_heads = 0, head_size = 0;
  std::vector<float> key, value;              // [layer][global KV head][channel]
  std::vector<float> key_mean, value_mean;    // the same shape; empty where the file has none
  std::vector<double> key_sum, value_sum;     // observe()'s running sums of the finite rows
  std::vector<int64_t> key_rows, value_rows;  // [layer][global KV head]: rows summed

  ChannelMaxima() = default;
  ChannelMaxima(int layers, int kv_heads, int head_size);

  float* row(Role role, int layer, int kv_head) {
    return (role == Role::key ? key : value).data() + (size_t(layer) * kv_heads + size_t(kv_head)) * head_size;
  }
  const float* row(Role role, int layer, int kv_head) const {
    return (role == Role::key ? key : value).data() + (size_t(layer) * kv_heads + size_t(kv_head)) * head_size;
  }
  // Widens row (role, layer, head) with the finite magnitudes of x[0 .. head_size), and adds x to
  // its sums where every element is finite.
  void observe(Role role, int layer, int kv_head, const float* x);
  // The means of what observe() summed (0 where nothing was).
  void finish_means();
};

// The file's text; `source` says what it was measured on.
std::string channel_maxima_json(const ChannelMaxima& maxima, std::string_view source);

// Parses a file's text; errors name `path`, the field, its value and what is allowed.
atb::Expected<ChannelMaxima> parse_channel_maxima(std::string_view text, const std::string& path);
atb::Expected<ChannelMaxima> read_channel_maxima(const std::string& path);

// The maxima of local KV heads 0 .. kv_heads - 1 (global first_global_kv_head + h) of one layer
// and role, [kv_heads][head_size], or an error naming what the file lacks.
atb::Expected<std::vector<float>> layer_maxima(const ChannelMaxima& maxima, const std::string& path, Role role,
                                               int layer, int first_global_kv_head, int kv_heads, int head_size);
// The same for the channel means, or an error where the file has none.
atb::Expected<std::vector<float>> layer_means(const ChannelMaxima& maxima, const std::string& path, Role role,
                                              int layer, int first_global_kv_head, int kv_heads, int head_size);

}  // namespace tq
