// The reference backend under another name (TWIN_BACKEND_NAME), built twice, so two libraries
// register the same backend name.
#include <atb/kit/json_config.hpp>
#include <atb/kit/plugin_definition.hpp>

#include <array>

#include "reference_backend.hpp"

namespace {

constexpr std::array<uint32_t, 1> kHeadSizes = {64};

atb::Expected<std::unique_ptr<atb::kit::BackendImpl>> create(const atb_layer_spec& spec, const nlohmann::json& json) {
  ATB_RETURN_IF_ERROR(atb::kit::ConfigReader(json).reject_unknown_keys());
  return std::unique_ptr<atb::kit::BackendImpl>(new atb::reference::ReferenceBackend(spec, {spec.dtype, 1, "scalar"}));
}

const atb::kit::PluginDefinition& definition() {
  static const atb::kit::PluginDefinition instance{TWIN_BACKEND_NAME,
                                                   TWIN_VERSION,
                                                   "a twin of the reference backend (test only)",
                                                   ATB_BIT(ATB_DEVICE_CPU),
                                                   ATB_BIT(ATB_DTYPE_F32),
                                                   ATB_CAP_PAGED_KV_CACHE | ATB_CAP_GQA,
                                                   kHeadSizes,
                                                   &create,
                                                   &atb::kit::no_config_keys_schema};
  return instance;
}

}  // namespace

ATB_DEFINE_PLUGIN(definition)
