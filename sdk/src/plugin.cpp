#include <atb/host/logging.hpp>
#include <atb/host/plugin.hpp>
#include <atb/struct_io.hpp>

#include <cstring>
#include <exception>
#include <string>

namespace atb::host {
namespace {

std::string version_string(uint32_t major, uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

const std::string kHostAbi = version_string(ATB_ABI_VERSION_MAJOR, ATB_ABI_VERSION_MINOR);

// Calls into a plugin.  A well-behaved plugin never throws across the ABI; a broken one that does
// is turned into an internal-error Status instead of tearing down the host.
template <class Call>
Status call_plugin(std::string_view context, Call&& call) {
  atb_error error = make_versioned<atb_error>();
  atb_status code = ATB_ERR_INTERNAL;
  try {
    code = call(&error);
  } catch (const std::exception& thrown) {
    return Status::internal(std::string(context) + ": the plugin threw an exception across the ABI (" + thrown.what() +
                            "); plugins must return a status instead");
  } catch (...) {
    return Status::internal(std::string(context) +
                            ": the plugin threw an exception across the ABI; plugins must return a "
                            "status instead");
  }
  return status_from_plugin(code, error, context);
}

bool valid_backend_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

constexpr size_t kMinimumApiSize = ATB_API_MIN_STRUCT_SIZE;

}  // namespace

Status status_from_plugin(atb_status code, const atb_error& error, std::string_view context) {
  if (code == ATB_OK) return Status::ok();
  std::string message(error.message, strnlen(error.message, sizeof(error.message)));
  if (message.empty()) message = "(the plugin gave no message)";
  return Status(code, std::string(context) + ": " + message);
}

Expected<Plugin> Plugin::load(const std::filesystem::path& path) {
  auto library = SharedLibrary::open(path);
  if (!library) return library.error();

  const std::string where = path.string();
  auto* entry = reinterpret_cast<atb_get_api_fn>((*library)->symbol(ATB_ENTRY_SYMBOL));
  if (entry == nullptr) {
    return Status::invalid(where + ": not an attention-backend plugin: it has no '" + std::string(ATB_ENTRY_SYMBOL) +
                           "' symbol");
  }

  const atb_api* table = nullptr;
  Status negotiated =
      call_plugin(where + ": " + ATB_ENTRY_SYMBOL + "(host ABI " + kHostAbi + ")",
                  [&](atb_error* error) { return entry(ATB_ABI_VERSION_MAJOR, ATB_ABI_VERSION_MINOR, &table, error); });
  if (!negotiated) return negotiated;
  if (table == nullptr || table->struct_size < kMinimumApiSize) {
    return Status::invalid(where + ": the plugin returned " +
                           (table == nullptr
                                ? std::string("no function table")
                                : "a function table of " + std::to_string(table->struct_size) + " bytes; ABI " +
                                      kHostAbi + " needs at least " + std::to_string(kMinimumApiSize)));
  }
  if (table->abi_major != ATB_ABI_VERSION_MAJOR) {
    return Status(ATB_ERR_VERSION_MISMATCH, where + ": the plugin implements ABI " +
                                                version_string(table->abi_major, table->abi_minor) +
                                                " but this host speaks " + kHostAbi + "; majors must match");
  }
  atb_api api = make_versioned<atb_api>();
  read_versioned(table, api);
  if (api.get_plugin_info == nullptr || api.set_host_services == nullptr || api.create_backend == nullptr ||
      api.get_kv_cache_spec == nullptr || api.forward == nullptr || api.destroy_backend == nullptr) {
    return Status::invalid(where + ": the plugin's function table has a NULL entry point");
  }

  atb_plugin_info raw = make_versioned<atb_plugin_info>();
  Status got_info =
      call_plugin(where + ": get_plugin_info", [&](atb_error* error) { return api.get_plugin_info(&raw, error); });
  if (!got_info) return got_info;

  PluginInfo info;
  info.backend_name = raw.backend_name != nullptr ? raw.backend_name : "";
  info.plugin_version = raw.plugin_version != nullptr ? raw.plugin_version : "";
  info.description = raw.description != nullptr ? raw.description : "";
  info.abi_major = raw.abi_major;
  info.abi_minor = raw.abi_minor;
  info.device_mask = raw.device_mask;
  info.dtype_mask = raw.dtype_mask;
  info.capability_flags = raw.capability_flags;
  if (raw.head_sizes != nullptr) info.head_sizes.assign(raw.head_sizes, raw.head_sizes + raw.num_head_sizes);
  if (!valid_backend_name(info.backend_name)) {
    return Status::invalid(where + ": plugin info backend_name '" + info.backend_name +
                           "' is not a name; allowed: one or more of [a-z0-9_]");
  }

  Plugin plugin(std::move(*library), api, std::move(info));
  atb_host_services services = make_versioned<atb_host_services>();
  services.log = &forward_plugin_log;
  services.log_level = current_abi_log_level();
  Status logging = plugin.set_host_services(services);
  if (!logging) return logging;
  return plugin;
}

Status Plugin::set_host_services(const atb_host_services& services) const {
  return call_plugin(path().string() + ": set_host_services",
                     [&](atb_error* error) { return api_.set_host_services(&services, error); });
}

Expected<std::string> Plugin::config_schema() const {
  if (api_.get_config_schema == nullptr)
    return Status::unsupported("backend '" + info_.backend_name + "': the plugin (ABI " +
                               version_string(info_.abi_major, info_.abi_minor) +
                               ") has no get_config_schema entry point (ABI minor 1 and later)");
  const char* schema = nullptr;
  Status got = call_plugin("backend '" + info_.backend_name + "': get_config_schema",
                           [&](atb_error* error) { return api_.get_config_schema(&schema, error); });
  if (!got) return got;
  if (schema == nullptr)
    return Status::internal("backend '" + info_.backend_name + "': get_config_schema returned OK but no schema");
  return std::string(schema);
}

Expected<Backend> Plugin::create_backend(const atb_layer_spec& spec, std::string_view config_json) const {
  const std::string config(config_json);
  atb_backend* handle = nullptr;
  Status created = call_plugin("backend '" + info_.backend_name + "': create_backend", [&](atb_error* error) {
    return api_.create_backend(&spec, config.c_str(), &handle, error);
  });
  if (!created) return created;
  if (handle == nullptr) {
    return Status::internal("backend '" + info_.backend_name + "': create_backend returned OK but no handle");
  }
  return Backend(library_, api_, handle);
}

Backend::Backend(Backend&& other) noexcept
    : library_(std::move(other.library_)), api_(other.api_), handle_(other.handle_) {
  other.handle_ = nullptr;
}

Backend& Backend::operator=(Backend&& other) noexcept {
  if (this != &other) {
    reset();
    library_ = std::move(other.library_);
    api_ = other.api_;
    handle_ = other.handle_;
    other.handle_ = nullptr;
  }
  return *this;
}

Backend::~Backend() { reset(); }

void Backend::reset() {
  if (handle_ != nullptr) {
    Status destroyed =
        call_plugin("destroy_backend", [&](atb_error* error) { return api_.destroy_backend(handle_, error); });
    if (!destroyed) logger()->error("{}", destroyed.message());
    handle_ = nullptr;
  }
  library_.reset();  // the library may close only after its backend is gone
}

Expected<atb_kv_cache_spec> Backend::kv_cache_spec() const {
  atb_kv_cache_spec spec = make_versioned<atb_kv_cache_spec>();
  Status got =
      call_plugin("get_kv_cache_spec", [&](atb_error* error) { return api_.get_kv_cache_spec(handle_, &spec, error); });
  if (!got) return got;
  return spec;
}

Status Backend::forward(const atb_forward_args& args) {
  return call_plugin("forward", [&](atb_error* error) { return api_.forward(handle_, &args, error); });
}

std::vector<std::string> capability_names(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {ATB_CAP_PAGED_KV_CACHE, "paged_kv_cache"},   {ATB_CAP_GQA, "gqa"},
      {ATB_CAP_CHUNKED_PREFILL, "chunked_prefill"}, {ATB_CAP_MIXED_BATCH, "mixed_batch"},
      {ATB_CAP_SLIDING_WINDOW, "sliding_window"},   {ATB_CAP_LOGITS_SOFT_CAP, "logits_soft_cap"},
      {ATB_CAP_KV_SHARING, "kv_sharing"},           {ATB_CAP_COMPRESSED_KV, "compressed_kv"},
      {ATB_CAP_TENSOR_PARALLEL, "tensor_parallel"}};
  std::vector<std::string> names;
  for (const auto& [bit, name] : kNames)
    if (flags & bit) names.emplace_back(name);
  return names;
}

std::string dtype_names(uint32_t mask) {
  std::string names;
  auto add = [&](uint32_t bit, const char* name) {
    if (!(mask & bit)) return;
    if (!names.empty()) names += ",";
    names += name;
  };
  add(ATB_BIT(ATB_DTYPE_F32), "f32");
  add(ATB_BIT(ATB_DTYPE_F16), "f16");
  add(ATB_BIT(ATB_DTYPE_BF16), "bf16");
  return names;
}

std::string device_names(uint32_t mask) {
  std::string names;
  if (mask & ATB_BIT(ATB_DEVICE_CPU)) names += "cpu";
  if (mask & ATB_BIT(ATB_DEVICE_CUDA)) names += names.empty() ? "cuda" : ",cuda";
  return names;
}

}  // namespace atb::host
