#include <atb/kit/json_config.hpp>
#include <atb/kit/logging.hpp>
#include <atb/kit/plugin_definition.hpp>
#include <atb/struct_io.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "forward_validation.hpp"

// The opaque handle of the ABI, as every kit-built plugin defines it.
struct atb_backend {
  std::unique_ptr<atb::kit::BackendImpl> impl;
  atb_layer_spec spec;
  atb_kv_cache_spec cache;
};

namespace atb::kit {
namespace {

const PluginDefinition* g_definition = nullptr;

std::string str(int64_t value) { return std::to_string(value); }

atb_status report(atb_error* error, const Status& status) {
  if (status.is_ok()) return ATB_OK;
  log()->error("{}", status.message());
  constexpr size_t kMessageOffset = offsetof(atb_error, message);
  if (error != nullptr && error->struct_size > kMessageOffset) {
    error->status = status.code();
    const size_t capacity = std::min<size_t>(error->struct_size - kMessageOffset, ATB_ERROR_MESSAGE_CAPACITY);
    const size_t length = std::min(status.message().size(), capacity - 1);
    std::memcpy(error->message, status.message().data(), length);
    error->message[length] = '\0';
  } else if (error != nullptr && error->struct_size >= offsetof(atb_error, status) + sizeof(int32_t)) {
    error->status = status.code();
  }
  return status.code();
}

// The exception barrier: nothing thrown inside a plugin crosses the ABI.
template <class Body>
atb_status guarded(atb_error* error, Body&& body) noexcept {
  try {
    return report(error, body());
  } catch (const std::bad_alloc&) {
    return report(error, Status(ATB_ERR_OUT_OF_MEMORY, "out of memory inside the plugin"));
  } catch (const std::exception& thrown) {
    return report(error, Status::internal(std::string("internal error: ") + thrown.what()));
  } catch (...) {
    return report(error, Status::internal("internal error: unknown exception"));
  }
}

const char* attention_kind_name(int32_t kind) {
  switch (kind) {
    case ATB_ATTENTION_STANDARD:
      return "STANDARD";
    case ATB_ATTENTION_MLA:
      return "MLA";
    case ATB_ATTENTION_LINEAR:
      return "LINEAR";
    default:
      return "unknown";
  }
}

atb_layer_spec default_layer_spec() {
  atb_layer_spec spec = make_versioned<atb_layer_spec>();
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.kv_shared_with_layer = -1;
  spec.device_type = ATB_DEVICE_CPU;
  return spec;
}

std::string head_size_list(std::span<const uint32_t> sizes) {
  std::string list;
  for (uint32_t size : sizes) list += (list.empty() ? "" : ", ") + str(size);
  return list;
}

Status check_head_size(const char* field, int32_t value, std::span<const uint32_t> allowed) {
  if (std::find(allowed.begin(), allowed.end(), static_cast<uint32_t>(value)) != allowed.end()) return Status::ok();
  return Status::unsupported(std::string("layer_spec.") + field + " = " + str(value) +
                             " is not supported; allowed: " + head_size_list(allowed));
}

atb_status api_get_plugin_info(atb_plugin_info* info, atb_error* error) {
  return guarded(error, [&]() -> Status {
    if (info == nullptr) return Status::invalid("get_plugin_info: info is NULL");
    atb_plugin_info filled = make_versioned<atb_plugin_info>();
    filled.backend_name = g_definition->backend_name;
    filled.plugin_version = g_definition->plugin_version;
    filled.description = g_definition->description;
    filled.abi_major = ATB_ABI_VERSION_MAJOR;
    filled.abi_minor = ATB_ABI_VERSION_MINOR;
    filled.device_mask = g_definition->device_mask;
    filled.dtype_mask = g_definition->dtype_mask;
    filled.capability_flags = g_definition->capability_flags;
    filled.num_head_sizes = static_cast<uint32_t>(g_definition->head_sizes.size());
    filled.head_sizes = g_definition->head_sizes.data();
    if (!write_versioned(info, filled))
      return Status::invalid("get_plugin_info: info->struct_size = " + str(int64_t(info->struct_size)) +
                             " is too small; allowed: >= " + str(sizeof(size_t)));
    return Status::ok();
  });
}

atb_status api_set_host_services(const atb_host_services* services, atb_error* error) {
  return guarded(error, [&]() -> Status {
    atb_host_services read = make_versioned<atb_host_services>();
    read.log_level = ATB_LOG_WARN;
    if (services != nullptr && !read_versioned(services, read))
      return Status::invalid("set_host_services: services->struct_size = " + str(int64_t(services->struct_size)) +
                             " is too small");
    if (read.log_level < ATB_LOG_TRACE || read.log_level > ATB_LOG_OFF)
      return Status::invalid("set_host_services: log_level = " + str(read.log_level) +
                             "; allowed: 0 (trace) .. 6 (off)");
    configure_logging(g_definition->backend_name, read);
    return Status::ok();
  });
}

atb_status api_create_backend(const atb_layer_spec* spec, const char* config_json, atb_backend** out_backend,
                              atb_error* error) {
  if (out_backend != nullptr) *out_backend = nullptr;
  return guarded(error, [&]() -> Status {
    if (out_backend == nullptr) return Status::invalid("create_backend: out_backend is NULL");
    auto layer = validate_layer_spec(*g_definition, spec);
    if (!layer) return layer.error();
    auto config = parse_config(config_json);
    if (!config) return config.error();
    auto impl = g_definition->create(*layer, *config);
    if (!impl) return impl.error();
    auto handle = std::make_unique<atb_backend>();
    handle->spec = *layer;
    handle->cache = (*impl)->cache_spec();
    handle->cache.struct_size = sizeof(atb_kv_cache_spec);
    handle->cache.cache_flags = cache_flags_for(*layer, handle->cache);
    if (handle->cache.workspace_alignment == 0) handle->cache.workspace_alignment = kDefaultWorkspaceAlignment;
    handle->impl = std::move(*impl);
    log()->debug("created layer {} backend: {} q / {} kv heads, head size {}/{}, page {} bytes", layer->layer_index,
                 layer->num_query_heads, layer->num_kv_heads, layer->head_size_k, layer->head_size_v,
                 handle->cache.page_bytes);
    *out_backend = handle.release();
    return Status::ok();
  });
}

atb_status api_get_kv_cache_spec(const atb_backend* backend, atb_kv_cache_spec* spec, atb_error* error) {
  return guarded(error, [&]() -> Status {
    if (backend == nullptr) return Status::invalid("get_kv_cache_spec: backend is NULL");
    if (spec == nullptr) return Status::invalid("get_kv_cache_spec: spec is NULL");
    if (!write_versioned(spec, backend->cache))
      return Status::invalid("get_kv_cache_spec: spec->struct_size = " + str(int64_t(spec->struct_size)) +
                             " is too small");
    return Status::ok();
  });
}

atb_status api_forward(atb_backend* backend, const atb_forward_args* args, atb_error* error) {
  return guarded(error, [&]() -> Status {
    if (backend == nullptr) return Status::invalid("forward: backend is NULL");
    auto batch = validate_forward(backend->spec, backend->cache, args);
    if (!batch) return batch.error();
    return backend->impl->forward(*batch);
  });
}

atb_status api_destroy_backend(atb_backend* backend, atb_error* error) {
  return guarded(error, [&]() -> Status {
    delete backend;
    return Status::ok();
  });
}

atb_status api_get_config_schema(const char** out_schema, atb_error* error) {
  if (out_schema != nullptr) *out_schema = nullptr;
  return guarded(error, [&]() -> Status {
    if (out_schema == nullptr) return Status::invalid("get_config_schema: out_schema is NULL");
    if (g_definition->config_schema == nullptr)
      return Status::internal(std::string("get_config_schema: plugin '") + g_definition->backend_name +
                              "' defines no config_schema in its PluginDefinition");
    // Made once, on first use: the string must stay valid until the library is unloaded.
    static const std::string schema = g_definition->config_schema().dump();
    *out_schema = schema.c_str();
    return Status::ok();
  });
}

const atb_api kApi = {
    ATB_API_STRUCT_SIZE, ATB_ABI_VERSION_MAJOR,  ATB_ABI_VERSION_MINOR, &api_get_plugin_info, &api_set_host_services,
    &api_create_backend, &api_get_kv_cache_spec, &api_forward,          &api_destroy_backend, &api_get_config_schema,
};

}  // namespace

Expected<atb_layer_spec> validate_layer_spec(const PluginDefinition& definition, const atb_layer_spec* incoming) {
  if (incoming == nullptr) return Status::invalid("create_backend: layer spec is NULL");
  atb_layer_spec spec = default_layer_spec();
  if (!read_versioned(incoming, spec, ATB_LAYER_SPEC_MIN_STRUCT_SIZE))
    return Status::invalid("layer_spec.struct_size = " + str(int64_t(incoming->struct_size)) +
                           " is too small; allowed: >= " + str(ATB_LAYER_SPEC_MIN_STRUCT_SIZE) +
                           " (ATB_LAYER_SPEC_MIN_STRUCT_SIZE: the fields up to num_layers)");
  auto field = [](const char* name, int64_t value) { return std::string("layer_spec.") + name + " = " + str(value); };
  if (spec.attention_kind == ATB_ATTENTION_MLA || spec.attention_kind == ATB_ATTENTION_LINEAR) {
    return Status::unsupported(field("attention_kind", spec.attention_kind) + " (" +
                               attention_kind_name(spec.attention_kind) + ") is not served by '" +
                               definition.backend_name +
                               "'; allowed: 1 (STANDARD: MHA, GQA, MQA). Hybrid models: create a "
                               "backend for their standard attention layers only");
  }
  if (spec.attention_kind != ATB_ATTENTION_STANDARD)
    return Status::invalid(field("attention_kind", spec.attention_kind) +
                           " is unknown; allowed: 1 (STANDARD), 2 (MLA), 3 (LINEAR)");
  if (spec.num_kv_heads < 1 || spec.num_kv_heads > 4096)
    return Status::invalid(field("num_kv_heads", spec.num_kv_heads) + "; allowed: 1 .. 4096");
  if (spec.num_query_heads < 1 || spec.num_query_heads > 65536 || spec.num_query_heads % spec.num_kv_heads != 0)
    return Status::invalid(field("num_query_heads", spec.num_query_heads) +
                           "; allowed: a positive multiple of num_kv_heads (" + str(spec.num_kv_heads) + ")");
  if (spec.num_query_heads != spec.num_kv_heads && !(definition.capability_flags & ATB_CAP_GQA))
    return Status::unsupported(field("num_query_heads", spec.num_query_heads) + ": GQA is not supported");
  ATB_RETURN_IF_ERROR(check_head_size("head_size_k", spec.head_size_k, definition.head_sizes));
  ATB_RETURN_IF_ERROR(check_head_size("head_size_v", spec.head_size_v, definition.head_sizes));
  if (spec.dtype != ATB_DTYPE_F32 && spec.dtype != ATB_DTYPE_F16 && spec.dtype != ATB_DTYPE_BF16)
    return Status::invalid(field("dtype", spec.dtype) + " is unknown; allowed: 1 (f32), 2 (f16), 3 (bf16)");
  if (!(definition.dtype_mask & ATB_BIT(spec.dtype)))
    return Status::unsupported(field("dtype", spec.dtype) + " is not supported by '" + definition.backend_name + "'");
  if (spec.block_size < 1 || spec.block_size > 4096)
    return Status::invalid(field("block_size", spec.block_size) + "; allowed: 1 .. 4096 tokens");
  if (spec.sliding_window < 0)
    return Status::invalid(field("sliding_window", spec.sliding_window) + "; allowed: 0 (none) or a positive window");
  if (!std::isfinite(spec.logits_soft_cap) || spec.logits_soft_cap < 0)
    return Status::invalid("layer_spec.logits_soft_cap = " + std::to_string(spec.logits_soft_cap) +
                           "; allowed: 0 (none) or a positive finite cap");
  if (!std::isfinite(spec.scale) || spec.scale < 0)
    return Status::invalid("layer_spec.scale = " + std::to_string(spec.scale) +
                           "; allowed: 0 (1/sqrt(head_size_k)) or a positive finite scale");
  if (spec.num_layers < 1) return Status::invalid(field("num_layers", spec.num_layers) + "; allowed: >= 1");
  if (spec.layer_index < 0 || spec.layer_index >= spec.num_layers)
    return Status::invalid(field("layer_index", spec.layer_index) + "; allowed: 0 .. num_layers-1 (" +
                           str(spec.num_layers - 1) + ")");
  if (spec.kv_shared_with_layer != -1 &&
      (spec.kv_shared_with_layer < 0 || spec.kv_shared_with_layer >= spec.layer_index))
    return Status::invalid(field("kv_shared_with_layer", spec.kv_shared_with_layer) +
                           "; allowed: -1 (own cache) or an earlier layer 0 .. " + str(spec.layer_index - 1));
  if (spec.kv_shared_with_layer >= 0 && !(definition.capability_flags & ATB_CAP_KV_SHARING))
    return Status::unsupported(field("kv_shared_with_layer", spec.kv_shared_with_layer) +
                               ": KV sharing is not supported");
  if (spec.first_global_kv_head < 0)
    return Status::invalid(field("first_global_kv_head", spec.first_global_kv_head) + "; allowed: >= 0");
  if (spec.num_global_kv_heads == 0) spec.num_global_kv_heads = spec.first_global_kv_head + spec.num_kv_heads;
  if (spec.num_global_kv_heads < spec.first_global_kv_head + spec.num_kv_heads)
    return Status::invalid(field("num_global_kv_heads", spec.num_global_kv_heads) +
                           "; allowed: 0 or >= first_global_kv_head + num_kv_heads (" +
                           str(spec.first_global_kv_head + spec.num_kv_heads) + ")");
  if (spec.device_type != ATB_DEVICE_CPU && spec.device_type != ATB_DEVICE_CUDA)
    return Status::invalid(field("device_type", spec.device_type) + " is unknown; allowed: 1 (CPU), 2 (CUDA)");
  if (!(definition.device_mask & ATB_BIT(spec.device_type)))
    return Status::unsupported(field("device_type", spec.device_type) + " is not supported by '" +
                               definition.backend_name + "' in this build");
  if (spec.device_id < 0) return Status::invalid(field("device_id", spec.device_id) + "; allowed: >= 0");
  if (spec.scale == 0) spec.scale = 1.0f / std::sqrt(static_cast<float>(spec.head_size_k));
  return spec;
}

nlohmann::json no_config_keys_schema() {
  const nlohmann::json empty = nlohmann::json::object();
  return ConfigReader(empty).schema();
}

uint32_t cache_flags_for(const atb_layer_spec& layer, const atb_kv_cache_spec& cache) {
  const uint64_t dtype_bytes = layer.dtype == ATB_DTYPE_F32 ? 4 : 2;
  const uint64_t plain = uint64_t(layer.head_size_k + layer.head_size_v) * dtype_bytes;
  return cache.k_bytes_per_token_per_head + cache.v_bytes_per_token_per_head < plain ? ATB_KV_CACHE_COMPRESSED : 0u;
}

atb_status get_api(const PluginDefinition& definition, uint32_t host_abi_major, uint32_t host_abi_minor,
                   const atb_api** out_api, atb_error* error) noexcept {
  if (out_api != nullptr) *out_api = nullptr;
  g_definition = &definition;
  return guarded(error, [&]() -> Status {
    if (out_api == nullptr) return Status::invalid("atb_get_api: out_api is NULL");
    if (host_abi_major != ATB_ABI_VERSION_MAJOR) {
      return Status(ATB_ERR_VERSION_MISMATCH, "the host speaks ABI " + str(host_abi_major) + "." + str(host_abi_minor) +
                                                  " but plugin '" + definition.backend_name + "' implements ABI " +
                                                  str(ATB_ABI_VERSION_MAJOR) + "." + str(ATB_ABI_VERSION_MINOR) +
                                                  "; majors must match");
    }
    *out_api = &kApi;
    return Status::ok();
  });
}

}  // namespace atb::kit
