// A plugin built for ABI major 2.  Compiled twice: one refuses a major-1 host as the ABI says; the
// other (OTHER_MAJOR_ACCEPTS) wrongly accepts and hands back a major-2 table, which the host must
// refuse on its own.
#include <atb/abi.h>

#include <cstdio>

namespace {
constexpr uint32_t kPluginMajor = 2;
constexpr uint32_t kPluginMinor = 3;
atb_api table = {sizeof(atb_api), kPluginMajor, kPluginMinor, nullptr, nullptr,
                 nullptr,         nullptr,      nullptr,      nullptr, nullptr};
}  // namespace

extern "C" ATB_EXPORT atb_status atb_get_api(uint32_t host_major, uint32_t host_minor, const atb_api** out_api,
                                             atb_error* error) {
#ifdef OTHER_MAJOR_ACCEPTS
  (void)host_major;
  (void)host_minor;
  (void)error;
  *out_api = &table;
  return ATB_OK;
#else
  *out_api = nullptr;
  if (error != nullptr && error->struct_size >= sizeof(atb_error)) {
    error->status = ATB_ERR_VERSION_MISMATCH;
    std::snprintf(error->message, sizeof(error->message),
                  "plugin 'future' implements ABI %u.%u; the host speaks ABI %u.%u", kPluginMajor, kPluginMinor,
                  host_major, host_minor);
  }
  (void)table;
  return ATB_ERR_VERSION_MISMATCH;
#endif
}
