#include "turboquant_config.hpp"

#include <atb/kit/json_config.hpp>
#include <atb/kit/thread_pool.hpp>
#include <atb/plugin/row_kernels.hpp>
#include <atb/plugin/vector_math.hpp>
#include <tq/byte_accounting.hpp>
#include <tq/rotation.hpp>

#include <array>
#include <limits>
#include <vector>

namespace atb::turboquant {
namespace {

constexpr std::array<std::string_view, 3> kKernels = {"auto", "scalar", "avx2"};

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

}  // namespace

Expected<TurboquantConfig> read_config(const nlohmann::json& json, const atb_layer_spec& spec) {
  kit::ConfigReader reader(json);
  bool enabled = true;
  std::string k_name = "q8_0", v_name = "q3_0", kernel = "auto";
  int64_t first = 0, last = 0, threads = kit::hardware_threads();
  int64_t seed = int64_t(tq::kDefaultRotationSeed);
  const auto k_names = format_names(tq::Role::key), v_names = format_names(tq::Role::value);
  ATB_RETURN_IF_ERROR(reader.read_bool("turboquant", enabled));
  ATB_RETURN_IF_ERROR(reader.read_choice("k_quant", k_names, k_name));
  ATB_RETURN_IF_ERROR(reader.read_choice("v_quant", v_names, v_name));
  ATB_RETURN_IF_ERROR(reader.read_int("uncompressed_first_layers", 0, 1 << 20, first));
  ATB_RETURN_IF_ERROR(reader.read_int("uncompressed_last_layers", 0, 1 << 20, last));
  ATB_RETURN_IF_ERROR(reader.read_int("rotation_seed", 0, std::numeric_limits<int64_t>::max(), seed));
  ATB_RETURN_IF_ERROR(reader.read_int("threads", 1, 1024, threads));
  ATB_RETURN_IF_ERROR(reader.read_choice("kernel", kKernels, kernel));
  ATB_RETURN_IF_ERROR(reader.reject_unknown_keys());
  if (kernel == "avx2" && !plugin::cpu_has_avx2())
    return Status::unsupported("kernel = \"avx2\" but this CPU lacks AVX2/FMA/F16C; allowed here: auto, scalar");

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
  config.kernel = kernel == "auto" ? (plugin::cpu_has_avx2() ? "avx2" : "scalar") : kernel;
  return config;
}

}  // namespace atb::turboquant
