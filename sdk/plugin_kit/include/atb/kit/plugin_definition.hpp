// What a plugin built with the kit provides, and the one macro that exports it.
//
// A plugin supplies a PluginDefinition (name, version, capabilities, a factory) and a BackendImpl
// per layer.  The kit implements the whole ABI around them: version negotiation, struct-size
// handling, validation of the layer spec and of every forward argument, the exception barrier, the
// error channel and logging.  Plugins only compute.
#pragma once

#include <atb/abi.h>
#include <atb/kit/forward_batch.hpp>
#include <atb/status.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <span>

namespace atb::kit {

class BackendImpl {
 public:
  virtual ~BackendImpl() = default;
  // The KV-cache spec.  The kit fills struct_size and cache_flags (from the byte counts), and
  // workspace_alignment where it is left 0 (kDefaultWorkspaceAlignment).
  virtual atb_kv_cache_spec cache_spec() const = 0;
  // Called with a fully validated batch.  Any error must be returned before anything is written.
  virtual Status forward(const ForwardBatch& batch) = 0;
};

struct PluginDefinition {
  const char* backend_name;
  const char* plugin_version;
  const char* description;
  uint32_t device_mask;
  uint32_t dtype_mask;
  uint32_t capability_flags;
  std::span<const uint32_t> head_sizes;  // ascending
  // Creates a backend for a layer spec the kit has already validated against the fields above
  // (defaults applied, scale resolved).  The factory validates `config` with a ConfigReader.
  Expected<std::unique_ptr<BackendImpl>> (*create)(const atb_layer_spec& spec, const nlohmann::json& config);
  // The JSON Schema of the config `create` accepts: a ConfigReader's schema() after the same reads
  // over {} (abi.h, get_config_schema).
  nlohmann::json (*config_schema)();
};

// The schema of a backend that takes no config keys (only {} is accepted).
nlohmann::json no_config_keys_schema();

inline constexpr uint32_t kDefaultWorkspaceAlignment = 256;

// ATB_KV_CACHE_COMPRESSED when the spec's K and V bytes per token per head are fewer than the
// layer's dtype would take (abi.h), else 0.
uint32_t cache_flags_for(const atb_layer_spec& layer, const atb_kv_cache_spec& cache);

// The implementation behind ATB_DEFINE_PLUGIN.
atb_status get_api(const PluginDefinition& definition, uint32_t host_abi_major, uint32_t host_abi_minor,
                   const atb_api** out_api, atb_error* error) noexcept;

// Checks spec fields the kit knows about; exposed for tests.  Returns the spec with defaults applied.
Expected<atb_layer_spec> validate_layer_spec(const PluginDefinition& definition, const atb_layer_spec* spec);

}  // namespace atb::kit

// Defines the exported entry symbol of a plugin.  `definition_fn` returns a const PluginDefinition&.
#define ATB_DEFINE_PLUGIN(definition_fn)                                                         \
  extern "C" ATB_EXPORT atb_status atb_get_api(uint32_t host_abi_major, uint32_t host_abi_minor, \
                                               const atb_api** out_api, atb_error* error) {      \
    return ::atb::kit::get_api(definition_fn(), host_abi_major, host_abi_minor, out_api, error); \
  }
