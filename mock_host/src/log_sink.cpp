#include <atb/mock_host/log_sink.hpp>

namespace atb::mock_host {
namespace {

void forward_log(void* user_data, int32_t level, const char* logger_name, const char* message) {
  static_cast<LogSink*>(user_data)->log(level, logger_name ? logger_name : "", message ? message : "");
}

}  // namespace

atb_host_services host_services_for(LogSink& sink, int32_t level) {
  atb_host_services services{};
  services.struct_size = sizeof(services);
  services.log = &forward_log;
  services.log_user_data = &sink;
  services.log_level = level;
  return services;
}

}  // namespace atb::mock_host
