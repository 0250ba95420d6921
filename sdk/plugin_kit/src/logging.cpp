#include <atb/kit/logging.hpp>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <string>

namespace atb::kit {
namespace {

int32_t to_abi_level(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return ATB_LOG_TRACE;
    case spdlog::level::debug:
      return ATB_LOG_DEBUG;
    case spdlog::level::info:
      return ATB_LOG_INFO;
    case spdlog::level::warn:
      return ATB_LOG_WARN;
    case spdlog::level::err:
    case spdlog::level::critical:
      return ATB_LOG_ERROR;
    default:
      return ATB_LOG_OFF;
  }
}

spdlog::level::level_enum to_spdlog_level(int32_t level) {
  switch (level) {
    case ATB_LOG_TRACE:
      return spdlog::level::trace;
    case ATB_LOG_DEBUG:
      return spdlog::level::debug;
    case ATB_LOG_INFO:
      return spdlog::level::info;
    case ATB_LOG_WARN:
      return spdlog::level::warn;
    case ATB_LOG_ERROR:
      return spdlog::level::err;
    default:
      return spdlog::level::off;
  }
}

// Forwards formatted records to the host callback.
class HostSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  HostSink(atb_log_fn fn, void* user_data) : fn_(fn), user_data_(user_data) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text(msg.payload.data(), msg.payload.size());
    const std::string name(msg.logger_name.data(), msg.logger_name.size());
    fn_(user_data_, to_abi_level(msg.level), name.c_str(), text.c_str());
  }
  void flush_() override {}

 private:
  atb_log_fn fn_;
  void* user_data_;
};

std::mutex g_logger_mutex;

std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> slot = [] {
    auto created = std::make_shared<spdlog::logger>("plugin", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    created->set_level(spdlog::level::warn);
    return created;
  }();
  return slot;
}

}  // namespace

std::shared_ptr<spdlog::logger> log() {
  std::lock_guard lock(g_logger_mutex);
  return logger_slot();
}

void configure_logging(const char* backend_name, const atb_host_services& services) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (services.log != nullptr) {
    sink = std::make_shared<HostSink>(services.log, services.log_user_data);
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto created = std::make_shared<spdlog::logger>(backend_name, std::move(sink));
  created->set_level(to_spdlog_level(services.log_level));
  created->set_pattern("%v");
  std::lock_guard lock(g_logger_mutex);
  logger_slot() = std::move(created);
}

}  // namespace atb::kit
