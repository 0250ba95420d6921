// Entry point and configuration of the `reference` plugin.
#include <atb/kit/json_config.hpp>
#include <atb/kit/plugin_definition.hpp>
#include <atb/kit/thread_pool.hpp>

#include <array>
#include <string_view>
#include <utility>

#include "reference_backend.hpp"

#if defined(ATB_HAVE_CUDA)
#include <atb/plugin/cuda/cuda_backend.hpp>
#include <atb/plugin/cuda/plain_rows.hpp>
#endif

namespace atb::reference {
namespace {

constexpr std::array<uint32_t, 11> kHeadSizes = {16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256};
constexpr std::array<std::string_view, 4> kCacheDtypes = {"auto", "f32", "f16", "bf16"};
constexpr std::array<std::string_view, 3> kKernels = {"auto", "scalar", "avx2"};

int32_t dtype_from_name(const std::string& name, int32_t layer_dtype) {
  if (name == "f32") return ATB_DTYPE_F32;
  if (name == "f16") return ATB_DTYPE_F16;
  if (name == "bf16") return ATB_DTYPE_BF16;
  return layer_dtype;
}

#if defined(ATB_HAVE_CUDA)
// The same pages on the device: plain rows of the cache dtype, exact attention.
Expected<std::unique_ptr<kit::BackendImpl>> make_cuda_backend(const atb_layer_spec& spec,
                                                              const ReferenceConfig& config) {
  ATB_RETURN_IF_ERROR(plugin::cuda::check_cuda_layer(spec));
  const ReferenceLayout pages = reference_layout(spec, config.cache_dtype);
  const plugin::cuda::CudaLayout layout{pages.cache, pages.v_region_offset};
  auto kernels = plugin::cuda::make_plain_kernels(
      spec, layout, plugin::cuda::PlainCodec{plugin::cuda::plain_row_kind(config.cache_dtype)});
  if (!kernels) return kernels.error();
  return plugin::cuda::CudaBackend::create(spec, layout, std::move(*kernels));
}
#endif

// The config keys as given (defaults where absent).
struct ConfigKeys {
  int64_t threads = kit::hardware_threads();
  std::string cache_dtype = "auto";
  std::string kernel = "auto";
};

Status read_keys(kit::ConfigReader& reader, ConfigKeys& keys) {
  ATB_RETURN_IF_ERROR(reader.read_int("threads", 1, 1024, keys.threads, "worker threads of the CPU path"));
  ATB_RETURN_IF_ERROR(reader.read_choice("cache_dtype", kCacheDtypes, keys.cache_dtype,
                                         "element type of the cached rows; auto: the layer's dtype"));
  ATB_RETURN_IF_ERROR(
      reader.read_choice("kernel", kKernels, keys.kernel, "CPU kernels; auto: AVX2 where the CPU has it"));
  return reader.reject_unknown_keys();
}

nlohmann::json config_schema() { return kit::schema_of(&read_keys); }

Expected<std::unique_ptr<kit::BackendImpl>> create(const atb_layer_spec& spec, const nlohmann::json& json) {
  kit::ConfigReader reader(json);
  ConfigKeys keys;
  ATB_RETURN_IF_ERROR(read_keys(reader, keys));
  const ReferenceConfig config{dtype_from_name(keys.cache_dtype, spec.dtype), static_cast<int>(keys.threads),
                               keys.kernel};
#if defined(ATB_HAVE_CUDA)
  if (spec.device_type == ATB_DEVICE_CUDA) return make_cuda_backend(spec, config);
#endif
  return std::unique_ptr<kit::BackendImpl>(new ReferenceBackend(spec, config));
}

}  // namespace

const kit::PluginDefinition& definition() {
  static const kit::PluginDefinition instance{
      "reference",
      "0.1.0",
      "uncompressed paged KV cache (f32/f16/bf16) with exact attention: the baseline and oracle",
      plugin::kDeviceMask,
      ATB_BIT(ATB_DTYPE_F32) | ATB_BIT(ATB_DTYPE_F16) | ATB_BIT(ATB_DTYPE_BF16),
      // cache_dtype can store f32 layers in 16-bit rows: fewer bytes than the dtype.
      plugin::kDriverCapabilities | ATB_CAP_COMPRESSED_KV,
      kHeadSizes,
      &create,
      &config_schema,
  };
  return instance;
}

}  // namespace atb::reference

ATB_DEFINE_PLUGIN(atb::reference::definition)
