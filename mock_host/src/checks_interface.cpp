// Checks of the plugin's interface: version negotiation, plugin info, exceptions.
#include <atb/host/shared_library.hpp>

#include <cstring>

#include "checks.hpp"

namespace atb::mock_host {

EngineShape shape_for(const host::PluginInfo& info, const ConformanceOptions& options) {
  EngineShape shape;
  shape.device_type = options.device_type;
  shape.head_size = info.head_sizes.empty() ? 128 : int(info.head_sizes.front());
  for (uint32_t size : info.head_sizes)
    if (size == 128) shape.head_size = 128;
  if (!(info.dtype_mask & ATB_BIT(ATB_DTYPE_F32)))
    shape.dtype = (info.dtype_mask & ATB_BIT(ATB_DTYPE_F16)) ? ATB_DTYPE_F16 : ATB_DTYPE_BF16;
  return shape;
}

std::string device_words(const ConformanceOptions& options) {
  return options.device_type == ATB_DEVICE_CUDA ? "on the CUDA device" : "on the CPU";
}

bool exception_escaped(const Status& status) {
  return !status && status.message().find("threw an exception across the ABI") != std::string::npos;
}

CheckResult check_version_negotiation(const std::filesystem::path& path, const ConformanceOptions&) {
  const std::string name = "version_negotiation";
  auto library = host::SharedLibrary::open(path);
  if (!library) return {name, false, library.error().message()};
  auto entry = reinterpret_cast<atb_get_api_fn>((*library)->symbol(ATB_ENTRY_SYMBOL));
  if (!entry) return {name, false, std::string("no exported symbol ") + ATB_ENTRY_SYMBOL};
  // Hosts of this major with an older and a newer minor are served; another major is refused.
  for (uint32_t minor : {0u, uint32_t(ATB_ABI_VERSION_MINOR) + 1, uint32_t(ATB_ABI_VERSION_MINOR) + 9}) {
    const atb_api* api = nullptr;
    atb_error error{};
    error.struct_size = sizeof(error);
    const atb_status status = entry(ATB_ABI_VERSION_MAJOR, minor, &api, &error);
    if (status != ATB_OK || api == nullptr || api->struct_size == 0)
      return {name, false,
              "a host of ABI " + std::to_string(ATB_ABI_VERSION_MAJOR) + "." + std::to_string(minor) +
                  " was refused: " + error.message};
    if (api->abi_major != ATB_ABI_VERSION_MAJOR)
      return {name, false,
              "the plugin is built for ABI major " + std::to_string(api->abi_major) + ", the host speaks " +
                  std::to_string(ATB_ABI_VERSION_MAJOR)};
    // The info struct as an older host (only up to capability_flags) and a newer one (64 bytes more,
    // which the plugin must leave alone) sends it.
    if (api->get_plugin_info) {
      struct Larger {
        atb_plugin_info info;
        unsigned char tail[64];
      } larger;
      std::memset(&larger, 0x5a, sizeof larger);
      larger.info.struct_size = sizeof larger;
      atb_plugin_info older;
      std::memset(&older, 0x5a, sizeof older);
      older.struct_size = offsetof(atb_plugin_info, capability_flags);
      atb_error e1{}, e2{};
      e1.struct_size = e2.struct_size = sizeof(atb_error);
      if (api->get_plugin_info(&larger.info, &e1) != ATB_OK || api->get_plugin_info(&older, &e2) != ATB_OK)
        return {name, false,
                std::string("get_plugin_info refused a smaller or larger struct: ") + e1.message + e2.message};
      for (unsigned char byte : larger.tail)
        if (byte != 0x5a) return {name, false, "get_plugin_info wrote past the struct_size the host gave it"};
      const auto* older_bytes = reinterpret_cast<const unsigned char*>(&older);
      for (size_t i = offsetof(atb_plugin_info, capability_flags); i < sizeof older; ++i)
        if (older_bytes[i] != 0x5a) return {name, false, "get_plugin_info wrote past an older host's struct_size"};
    }
  }
  const atb_api* api = nullptr;
  atb_error error{};
  error.struct_size = sizeof(error);
  const uint32_t other = ATB_ABI_VERSION_MAJOR + 1;
  if (entry(other, 0, &api, &error) == ATB_OK)
    return {name, false,
            "a host of ABI major " + std::to_string(other) + " was accepted; another major must be refused"};
  if (std::strlen(error.message) == 0) return {name, false, "the refusal of another ABI major came without a message"};
  // The registry path itself: the SDK negotiates and loads it.
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  return {name, true,
          "minor 0, " + std::to_string(ATB_ABI_VERSION_MINOR + 1) + ", " + std::to_string(ATB_ABI_VERSION_MINOR + 9) +
              " served; smaller/larger info structs honoured; major " + std::to_string(other) +
              " refused: " + error.message};
}

CheckResult check_plugin_info(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "plugin_info";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const host::PluginInfo& info = plugin->info();
  if (info.backend_name.empty() || info.plugin_version.empty() || info.description.empty())
    return {name, false, "backend_name, plugin_version and description must all be non-empty"};
  if (!(info.device_mask & ATB_BIT(ATB_DEVICE_CPU)) || info.dtype_mask == 0 || info.head_sizes.empty())
    return {name, false, "device_mask must include CPU, dtype_mask and head_sizes must be non-empty"};
  if (!(info.device_mask & ATB_BIT(options.device_type)))
    return {name, false,
            "checked " + device_words(options) + ", but device_mask " + std::to_string(info.device_mask) +
                " does not list device type " + std::to_string(options.device_type)};
  // Everything listed is accepted by create_backend; something not listed is refused with a message.
  EngineShape shape = shape_for(info, options);
  for (int32_t dtype : {ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16}) {
    if (!(info.dtype_mask & ATB_BIT(dtype))) continue;
    for (uint32_t head_size : info.head_sizes) {
      shape.dtype = dtype;
      shape.head_size = int(head_size);
      auto backend = plugin->create_backend(shape.layer_spec(), "{}");
      if (!backend)
        return {name, false,
                "head size " + std::to_string(head_size) + ", dtype " + std::to_string(dtype) +
                    " are listed but create_backend refused them: " + backend.error().message()};
    }
  }
  shape = shape_for(info, options);
  shape.head_size = 7;
  auto refused = plugin->create_backend(shape.layer_spec(), "{}");
  if (refused || refused.error().message().empty())
    return {name, false, "head size 7 is not listed but create_backend did not refuse it with a message"};
  return {name, true,
          "'" + info.backend_name + "' " + info.plugin_version + ": every listed dtype x head size (" +
              std::to_string(info.head_sizes.size()) + ") created " + device_words(options) +
              "; unlisted head size refused"};
}

CheckResult check_no_exceptions(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "no_exceptions";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);
  // Valid and invalid calls alike must come back as statuses: the SDK's barrier turns an exception
  // into an error naming it, which is a failure here.  (Aborts and exits are caught by isolation.)
  for (const char* config : {"{}", "{\"no_such_key\": 1}", "not json"}) {
    auto backend = plugin->create_backend(shape.layer_spec(), config);
    if (!backend && exception_escaped(backend.error()))
      return {name, false, "create_backend: " + backend.error().message()};
    if (!backend) continue;
    auto spec = backend->kv_cache_spec();
    if (!spec && exception_escaped(spec.error())) return {name, false, spec.error().message()};
    atb_forward_args empty{};
    empty.struct_size = sizeof(empty);
    const Status forwarded = backend->forward(empty);
    if (exception_escaped(forwarded)) return {name, false, "forward: " + forwarded.message()};
  }
  return {name, true, "create_backend, get_kv_cache_spec and forward returned statuses for valid and invalid input"};
}

}  // namespace atb::mock_host
