// Entry point of the `turboquant` plugin.
#include <atb/kit/plugin_definition.hpp>

#include <array>

#include "turboquant_backend.hpp"
#include "turboquant_config.hpp"

#if defined(ATB_HAVE_CUDA)
#include "cuda_layer.hpp"
#endif

namespace atb::turboquant {
namespace {

// Rotated formats need multiples of 8; these are the head sizes of real models.
constexpr std::array<uint32_t, 10> kHeadSizes = {32, 48, 64, 80, 96, 112, 128, 160, 192, 256};

Expected<std::unique_ptr<kit::BackendImpl>> create(const atb_layer_spec& spec, const nlohmann::json& json) {
  auto config = read_config(json, spec);
  if (!config) return config.error();
#if defined(ATB_HAVE_CUDA)
  if (spec.device_type == ATB_DEVICE_CUDA) return cuda::make_cuda_backend(spec, *config);
#endif
  return TurboquantBackend::create(spec, *config);
}

}  // namespace

const kit::PluginDefinition& definition() {
  static const kit::PluginDefinition instance{
      "turboquant",
      "0.1.0",
      "TurboQuant-compressed paged KV cache (rotated, quantised, bit-packed) with attention on the codes",
      plugin::kDeviceMask,
      ATB_BIT(ATB_DTYPE_F32) | ATB_BIT(ATB_DTYPE_F16) | ATB_BIT(ATB_DTYPE_BF16),
      plugin::kDriverCapabilities | ATB_CAP_COMPRESSED_KV,
      kHeadSizes,
      &create,
      &config_schema,
  };
  return instance;
}

}  // namespace atb::turboquant

ATB_DEFINE_PLUGIN(atb::turboquant::definition)
