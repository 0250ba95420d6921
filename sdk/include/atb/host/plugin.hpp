// A loaded plugin and the backends it creates, with RAII lifetimes: the shared library stays open
// until the last Plugin copy and the last Backend created from it are gone.
#pragma once

#include <atb/abi.h>
#include <atb/host/shared_library.hpp>
#include <atb/status.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace atb::host {

// atb_plugin_info, copied out of the plugin into owned C++ values.
struct PluginInfo {
  std::string backend_name;
  std::string plugin_version;
  std::string description;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  uint32_t device_mask = 0;
  uint32_t dtype_mask = 0;
  uint32_t capability_flags = 0;
  std::vector<uint32_t> head_sizes;
};

class Backend;

class Plugin {
 public:
  // Opens the library, resolves ATB_ENTRY_SYMBOL, negotiates the ABI version (the host speaks
  // ATB_ABI_VERSION_MAJOR.MINOR) and reads the plugin info.  Also points the plugin's logging at the
  // SDK logger.
  static Expected<Plugin> load(const std::filesystem::path& path);

  const PluginInfo& info() const { return info_; }
  const std::filesystem::path& path() const { return library_->path(); }
  // The plugin's function table as this host knows it (entries past the plugin's table are NULL).
  const atb_api& api() const { return api_; }

  Expected<Backend> create_backend(const atb_layer_spec& spec, std::string_view config_json) const;
  Status set_host_services(const atb_host_services& services) const;
  // The JSON Schema of the config create_backend accepts (get_config_schema, ABI minor 1);
  // UNSUPPORTED from a plugin of minor 0, which has no such entry point.
  Expected<std::string> config_schema() const;

 private:
  Plugin(std::shared_ptr<SharedLibrary> library, atb_api api, PluginInfo info)
      : library_(std::move(library)), api_(api), info_(std::move(info)) {}
  std::shared_ptr<SharedLibrary> library_;
  atb_api api_;
  PluginInfo info_;
};

// One backend handle; destroyed (through the plugin) with the object.
class Backend {
 public:
  Backend(Backend&& other) noexcept;
  Backend& operator=(Backend&& other) noexcept;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  ~Backend();

  Expected<atb_kv_cache_spec> kv_cache_spec() const;
  Status forward(const atb_forward_args& args);
  atb_backend* handle() const { return handle_; }

 private:
  friend class Plugin;
  Backend(std::shared_ptr<SharedLibrary> library, const atb_api& api, atb_backend* handle)
      : library_(std::move(library)), api_(api), handle_(handle) {}
  void reset();
  std::shared_ptr<SharedLibrary> library_;
  atb_api api_{};
  atb_backend* handle_ = nullptr;
};

// Turns an atb_error the plugin filled into a Status ("<context>: <plugin message>").
Status status_from_plugin(atb_status code, const atb_error& error, std::string_view context);

// Human-readable capability names for listings ("gqa", "sliding_window", ...).
std::vector<std::string> capability_names(uint32_t capability_flags);
std::string dtype_names(uint32_t dtype_mask);
std::string device_names(uint32_t device_mask);

}  // namespace atb::host
