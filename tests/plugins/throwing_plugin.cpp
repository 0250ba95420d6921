// A broken plugin whose create_backend throws a C++ exception across the ABI.  The host must turn
// it into an error status instead of dying.  It is a plugin of ABI minor 0: its table ends at
// destroy_backend.
#include <atb/abi.h>

#include <stdexcept>

namespace {

atb_status info(atb_plugin_info* out, atb_error*) {
  out->backend_name = "throwing";
  out->plugin_version = "0.0.1";
  out->description = "throws from create_backend (test only)";
  out->abi_major = ATB_ABI_VERSION_MAJOR;
  out->abi_minor = 0;
  out->device_mask = ATB_BIT(ATB_DEVICE_CPU);
  out->dtype_mask = ATB_BIT(ATB_DTYPE_F32);
  return ATB_OK;
}
atb_status services(const atb_host_services*, atb_error*) { return ATB_OK; }
atb_status create(const atb_layer_spec*, const char*, atb_backend**, atb_error*) {
  throw std::runtime_error("create_backend exploded");
}
atb_status spec(const atb_backend*, atb_kv_cache_spec*, atb_error*) { return ATB_ERR_INTERNAL; }
atb_status forward(atb_backend*, const atb_forward_args*, atb_error*) { return ATB_ERR_INTERNAL; }
atb_status destroy(atb_backend*, atb_error*) { return ATB_OK; }

const atb_api table = {
    ATB_API_MIN_STRUCT_SIZE, ATB_ABI_VERSION_MAJOR, 0, &info, &services, &create, &spec, &forward, &destroy, nullptr};

}  // namespace

extern "C" ATB_EXPORT atb_status atb_get_api(uint32_t, uint32_t, const atb_api** out_api, atb_error*) {
  *out_api = &table;
  return ATB_OK;
}
