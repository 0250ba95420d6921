// The `turboquant` backend's JSON configuration, validated at create_backend.
//
//   turboquant                 bool     vllm-metal's switch; false stores every layer uncompressed
//   k_quant                    string   K format (default "q8_0"); see tq::formats_for(Role::key)
//   v_quant                    string   V format (default "q3_0")
//   uncompressed_first_layers  int >= 0 layers 0 .. N-1 stored uncompressed (layer-adaptive precision)
//   uncompressed_last_layers   int >= 0 the last N layers of num_layers stored uncompressed
//   rotation_seed              int >= 0 seed of the rotations and the QJL sketch
//   threads                    int      worker threads (default: hardware concurrency)
//   kernel                     string   "auto" (avx2_int8 when the CPU has AVX2), "scalar", "avx2"
//                                       (f32, exact to f32 rounding), "avx2_int8" (integer products
//                                       with documented bounds: cpu/avx2_int8_*_kernel.hpp)
//   k_smoothing, v_smoothing   string   "none" (default), "online" or "file": per-channel scales
//                                       before the rotation (cpu/channel_smoothing.hpp), estimated
//                                       from the layer's first write (online: CPU layers that own
//                                       their cache) or fixed at create from smoothing_file (any
//                                       layer, CPU or CUDA)
//   smoothing_file             string   channel maxima written by `tq calibrate` (tq/channel_maxima.hpp)
//   smoothing_strength         int      0 .. 100, percent of the way outliers are brought down to the
//                                       median channel (default 75)
//   smoothing_min_ratio        int      1 .. 1000: a channel is an outlier (smoothed) where its
//                                       maximum is at least this many times the head's median (default 4)
//   k_smoothing_rule           string   "outliers" (default: the rule above) or "balanced": every K
//                                       channel scaled by (sqrt(rms k / rms q) / median)^strength, from
//                                       the first write's keys and queries (k_smoothing online)
//   k_centering, v_centering   bool     subtract the role's channel means before the rotation, from
//                                       where its scales come (first write, or smoothing_file's
//                                       key_mean/value_mean); V's come back in the output (K: not with a
//                                       logit soft cap)
//
// Uncompressed layers store the layer's own dtype, exactly as the reference backend does.
#pragma once

#include <atb/abi.h>
#include <atb/status.hpp>
#include <tq/format.hpp>

#include "cpu/channel_smoothing.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace atb::turboquant {

struct TurboquantConfig {
  tq::Format key;  // the formats this layer uses (after layer-adaptive precision)
  tq::Format value;
  int cache_layer;  // the layer whose cache this one reads: its own, or the one it shares
  uint64_t rotation_seed;
  int threads;
  std::string kernel;                               // "scalar", "avx2" or "avx2_int8", resolved from "auto"
  bool smooth_keys = false, smooth_values = false;  // only where the format is rotated
  SmoothingRule key_smoothing, value_smoothing;
  // "file" smoothing: the channel maxima of the layer's KV heads, [kv_heads][head_size]; empty for
  // "online" (estimated from the first write).
  std::vector<float> key_maxima, value_maxima;
  // "file" centering: the channel means of the same heads (empty without centering or online).
  std::vector<float> key_means, value_means;

  std::string_view simd() const;
};

// The instruction set of the shared f32 kernels (vector math, uncompressed rows) for a `kernel`.
inline std::string_view simd_of(std::string_view kernel) { return kernel == "scalar" ? "scalar" : "avx2"; }
inline std::string_view TurboquantConfig::simd() const { return simd_of(kernel); }

Expected<TurboquantConfig> read_config(const nlohmann::json& json, const atb_layer_spec& spec);

// The JSON Schema of the keys above (abi.h, get_config_schema).
nlohmann::json config_schema();

}  // namespace atb::turboquant
