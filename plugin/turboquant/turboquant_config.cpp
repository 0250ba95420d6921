#include "turboquant_config.hpp"

#include <atb/kit/json_config.hpp>
#include <atb/kit/thread_pool.hpp>
#include <atb/plugin/row_kernels.hpp>
#include <atb/plugin/vector_math.hpp>
#include <tq/byte_accounting.hpp>
#include <tq/channel_maxima.hpp>
#include <tq/rotation.hpp>

#include <array>
#include <limits>
#include <vector>

namespace atb::turboquant {
namespace {

constexpr std::array<std::string_view, 4> kKernels = {"auto", "scalar", "avx2", "avx2_int8"};
constexpr std::array<std::string_view, 3> kSmoothings = {"none", "online", "file"};
constexpr std::array<std::string_view, 2> kKeyRules = {"outliers", "balanced"};

std::vector<std::string_view> format_names(tq::Role role) {
  std::vector<std::string_view> names;
  for (const tq::Format& format : tq::formats_for(role)) names.push_back(format.name);
  return names;
}

std::string_view plain_name(int32_t dtype) {
  return dtype == ATB_DTYPE_F32 ? "f32" : dtype == ATB_DTYPE_BF16 ? "bf16" : "f16";
}

Status check_format_head_size(std::string_view field, const tq::Format& format, int head_size) {
  if (std::string problem = tq::check_head_size(format, head_size); !problem.empty())
    return Status::unsupported(std::string(field) + ": " + problem);
  return Status::ok();
}

// The config keys as given (defaults where absent).
struct ConfigKeys {
  bool enabled = true;
  std::string k_name = "q8_0", v_name = "q3_0", kernel = "auto";
  int64_t first = 0, last = 0, threads = kit::hardware_threads();
  int64_t seed = int64_t(tq::kDefaultRotationSeed);
  std::string k_smoothing = "none", v_smoothing = "none", smoothing_file;
  int64_t smoothing_strength = 75, smoothing_min_ratio = 4;
  std::string k_smoothing_rule = "outliers";
  bool k_centering = false, v_centering = false;
};

Status read_keys(kit::ConfigReader& reader, ConfigKeys& keys) {
  const auto k_names = format_names(tq::Role::key), v_names = format_names(tq::Role::value);
  ATB_RETURN_IF_ERROR(reader.read_bool("turboquant", keys.enabled, "false stores every layer uncompressed"));
  ATB_RETURN_IF_ERROR(reader.read_choice("k_quant", k_names, keys.k_name, "K format"));
  ATB_RETURN_IF_ERROR(reader.read_choice("v_quant", v_names, keys.v_name, "V format"));
  ATB_RETURN_IF_ERROR(
      reader.read_int("uncompressed_first_layers", 0, 1 << 20, keys.first, "layers 0 .. N-1 stored uncompressed"));
  ATB_RETURN_IF_ERROR(
      reader.read_int("uncompressed_last_layers", 0, 1 << 20, keys.last, "the last N layers stored uncompressed"));
  ATB_RETURN_IF_ERROR(reader.read_int("rotation_seed", 0, std::numeric_limits<int64_t>::max(), keys.seed,
                                      "seed of the rotations and the QJL sketch"));
  ATB_RETURN_IF_ERROR(reader.read_int("threads", 1, 1024, keys.threads, "worker threads of the CPU path"));
  ATB_RETURN_IF_ERROR(reader.read_choice(
      "kernel", kKernels, keys.kernel,
      "CPU kernels; avx2: f32, avx2_int8: integer products; auto: avx2_int8 where the CPU has AVX2"));
  ATB_RETURN_IF_ERROR(
      reader.read_choice("k_smoothing", kSmoothings, keys.k_smoothing,
                         "per-channel K scales before the rotation, from the first write or smoothing_file"));
  ATB_RETURN_IF_ERROR(
      reader.read_choice("v_smoothing", kSmoothings, keys.v_smoothing,
                         "per-channel V scales before the rotation, from the first write or smoothing_file"));
  ATB_RETURN_IF_ERROR(reader.read_string("smoothing_file", 4096, keys.smoothing_file,
                                         "channel maxima written by tq calibrate (k_smoothing/v_smoothing file)"));
  ATB_RETURN_IF_ERROR(reader.read_int("smoothing_strength", 0, 100, keys.smoothing_strength,
                                      "percent of the way outlier channels are brought to the median"));
  ATB_RETURN_IF_ERROR(reader.read_int("smoothing_min_ratio", 1, 1000, keys.smoothing_min_ratio,
                                      "a channel is smoothed where its maximum is this many times the head's median"));
  ATB_RETURN_IF_ERROR(reader.read_choice(
      "k_smoothing_rule", kKeyRules, keys.k_smoothing_rule,
      "K scales: outliers (from the maxima) or balanced (every channel, from K and Q mean squares; online)"));
  ATB_RETURN_IF_ERROR(reader.read_bool("k_centering", keys.k_centering,
                                       "subtract K's channel means before the rotation (online or file; no soft cap)"));
  ATB_RETURN_IF_ERROR(
      reader.read_bool("v_centering", keys.v_centering,
                       "subtract V's channel means before the rotation, add them to the output (online or file)"));
  return reader.reject_unknown_keys();
}

// The balanced rule learns from queries, which a calibration file does not hold: it needs the keys'
// smoothing online.  Centering takes its means from where the role's scales come from (online or the
// file).  K centering shifts every score of a query by the same q . mu, which a logit soft cap would
// not ignore.
Status check_rule_and_centering(const ConfigKeys& keys, const atb_layer_spec& spec) {
  if (keys.k_smoothing_rule == "balanced" && keys.k_smoothing != "online")
    return Status::invalid("k_smoothing_rule = balanced needs k_smoothing = online (it is \"" + keys.k_smoothing +
                           "\"; the rule learns from queries, which a smoothing_file does not hold)");
  const auto needs_smoothing = [](std::string_view key, std::string_view role_key, const std::string& smoothing) {
    if (smoothing != "none") return Status::ok();
    return Status::invalid(std::string(key) + " needs " + std::string(role_key) +
                           " = online or file (it is \"none\"; the means come from where the scales do)");
  };
  if (keys.k_centering) ATB_RETURN_IF_ERROR(needs_smoothing("k_centering = true", "k_smoothing", keys.k_smoothing));
  if (keys.v_centering) ATB_RETURN_IF_ERROR(needs_smoothing("v_centering = true", "v_smoothing", keys.v_smoothing));
  if (keys.k_centering && spec.logits_soft_cap > 0)
    return Status::unsupported("k_centering = true with logits_soft_cap = " + std::to_string(spec.logits_soft_cap) +
                               ": the cap would not ignore the shift of the scores; allowed: false");
  return Status::ok();
}

// One role's entries of a smoothing_file for this layer's KV heads: its maxima, and its means where it
// is centered.
Status read_role_from_file(const tq::ChannelMaxima& file, const std::string& path, tq::Role role, bool centered,
                           const atb_layer_spec& spec, int head_size, const TurboquantConfig& config,
                           std::vector<float>& maxima, std::vector<float>& means) {
  auto rows =
      tq::layer_maxima(file, path, role, config.cache_layer, spec.first_global_kv_head, spec.num_kv_heads, head_size);
  if (!rows) return rows.error();
  maxima = std::move(*rows);
  if (!centered) return Status::ok();
  auto role_means =
      tq::layer_means(file, path, role, config.cache_layer, spec.first_global_kv_head, spec.num_kv_heads, head_size);
  if (!role_means) return role_means.error();
  means = std::move(*role_means);
  return Status::ok();
}

// The smoothing keys: online estimation needs a CPU layer that writes its own cache; a file serves
// every layer (a layer reading another's cache takes that layer's entries, as its owner does).
Status read_smoothing(const ConfigKeys& keys, const atb_layer_spec& spec, TurboquantConfig& config) {
  ATB_RETURN_IF_ERROR(check_rule_and_centering(keys, spec));
  const bool online = keys.k_smoothing == "online" || keys.v_smoothing == "online";
  const bool file = keys.k_smoothing == "file" || keys.v_smoothing == "file";
  if (online && spec.kv_shared_with_layer >= 0)
    return Status::unsupported("k_smoothing/v_smoothing = online on a layer that reads layer " +
                               std::to_string(spec.kv_shared_with_layer) +
                               "'s cache: the owner's scales are not visible to it; allowed here: none, file");
  if (online && spec.device_type == ATB_DEVICE_CUDA)
    return Status::unsupported(
        "k_smoothing/v_smoothing = online on a CUDA layer: not on the GPU yet; allowed there: none, file");
  if (file != !keys.smoothing_file.empty())
    return Status::invalid(file ? "k_smoothing/v_smoothing = file needs smoothing_file (a path written by tq calibrate)"
                                : "smoothing_file = \"" + keys.smoothing_file +
                                      "\" is read only with k_smoothing or v_smoothing = file");
  config.smooth_keys = keys.k_smoothing != "none" && tq::is_rotated(config.key);
  config.smooth_values = keys.v_smoothing != "none" && tq::is_rotated(config.value);
  const double strength = double(keys.smoothing_strength) / 100.0, min_ratio = double(keys.smoothing_min_ratio);
  config.key_smoothing = {strength, min_ratio, keys.k_smoothing_rule == "balanced", keys.k_centering};
  config.value_smoothing = {strength, min_ratio, false, keys.v_centering};
  const bool keys_from_file = config.smooth_keys && keys.k_smoothing == "file";
  const bool values_from_file = config.smooth_values && keys.v_smoothing == "file";
  if (!keys_from_file && !values_from_file) return Status::ok();
  auto maxima = tq::read_channel_maxima(keys.smoothing_file);
  if (!maxima) return maxima.error();
  if (keys_from_file)
    ATB_RETURN_IF_ERROR(read_role_from_file(*maxima, keys.smoothing_file, tq::Role::key, keys.k_centering, spec,
                                            spec.head_size_k, config, config.key_maxima, config.key_means));
  if (values_from_file)
    ATB_RETURN_IF_ERROR(read_role_from_file(*maxima, keys.smoothing_file, tq::Role::value, keys.v_centering, spec,
                                            spec.head_size_v, config, config.value_maxima, config.value_means));
  return Status::ok();
}

}  // namespace

nlohmann::json config_schema() { return kit::schema_of(&read_keys); }

Expected<TurboquantConfig> read_config(const nlohmann::json& json, const atb_layer_spec& spec) {
  kit::ConfigReader reader(json);
  ConfigKeys keys;
  ATB_RETURN_IF_ERROR(read_keys(reader, keys));
  const bool enabled = keys.enabled;
  const std::string &k_name = keys.k_name, &v_name = keys.v_name, &kernel = keys.kernel;
  const int64_t first = keys.first, last = keys.last, threads = keys.threads, seed = keys.seed;
  if ((kernel == "avx2" || kernel == "avx2_int8") && !plugin::cpu_has_avx2())
    return Status::unsupported("kernel = \"" + kernel +
                               "\" but this CPU lacks AVX2/FMA/F16C; allowed here: auto, scalar");

  // A layer reading an earlier layer's cache decodes it with that layer's formats and rotations.
  const int cache_layer = spec.kv_shared_with_layer >= 0 ? spec.kv_shared_with_layer : spec.layer_index;
  const bool uncompressed = !enabled || cache_layer < first || cache_layer >= int64_t(spec.num_layers) - last;
  TurboquantConfig config;
  config.cache_layer = cache_layer;
  config.key = *tq::find_format(tq::Role::key, uncompressed ? plain_name(spec.dtype) : std::string_view(k_name));
  config.value = *tq::find_format(tq::Role::value, uncompressed ? plain_name(spec.dtype) : std::string_view(v_name));
  ATB_RETURN_IF_ERROR(check_format_head_size("head_size_k", config.key, spec.head_size_k));
  ATB_RETURN_IF_ERROR(check_format_head_size("head_size_v", config.value, spec.head_size_v));
  config.rotation_seed = uint64_t(seed);
  config.threads = int(threads);
  config.kernel = kernel == "auto" ? (plugin::cpu_has_avx2() ? "avx2_int8" : "scalar") : kernel;
  ATB_RETURN_IF_ERROR(read_smoothing(keys, spec, config));
  return config;
}

}  // namespace atb::turboquant
