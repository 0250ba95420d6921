#include <atb/host/logging.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdlib>
#include <mutex>
#include <string>

namespace atb::host {
namespace {

struct LevelName {
  std::string_view name;
  spdlog::level::level_enum spdlog_level;
  atb_log_level abi_level;
};

constexpr std::array<LevelName, 6> kLevels = {{
    {"trace", spdlog::level::trace, ATB_LOG_TRACE},
    {"debug", spdlog::level::debug, ATB_LOG_DEBUG},
    {"info", spdlog::level::info, ATB_LOG_INFO},
    {"warn", spdlog::level::warn, ATB_LOG_WARN},
    {"error", spdlog::level::err, ATB_LOG_ERROR},
    {"off", spdlog::level::off, ATB_LOG_OFF},
}};

const LevelName* find_level(std::string_view name) {
  for (const auto& level : kLevels)
    if (level.name == name) return &level;
  return nullptr;
}

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto created = std::make_shared<spdlog::logger>("atb", sink);
  created->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v");
  created->set_level(spdlog::level::warn);
  if (const char* env = std::getenv("ATB_LOG_LEVEL")) {
    if (const LevelName* level = find_level(env)) {
      created->set_level(level->spdlog_level);
    } else {
      created->warn("ATB_LOG_LEVEL='{}' is not a level (trace, debug, info, warn, error, off); using warn", env);
    }
  }
  return created;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = make_logger();
  return instance;
}

Status set_log_level(std::string_view level_name) {
  const LevelName* level = find_level(level_name);
  if (level == nullptr) {
    return Status::invalid("--log-level: '" + std::string(level_name) +
                           "' is not a level; allowed: trace, debug, info, warn, error, off");
  }
  logger()->set_level(level->spdlog_level);
  return Status::ok();
}

atb_log_level current_abi_log_level() {
  const auto level = logger()->level();
  for (const auto& entry : kLevels)
    if (entry.spdlog_level == level) return entry.abi_level;
  return ATB_LOG_WARN;
}

void forward_plugin_log(void* /*user_data*/, int32_t level, const char* logger_name, const char* message) {
  spdlog::level::level_enum spdlog_level = spdlog::level::info;
  for (const auto& entry : kLevels)
    if (entry.abi_level == level) spdlog_level = entry.spdlog_level;
  logger()->log(spdlog_level, "[plugin {}] {}", logger_name != nullptr ? logger_name : "?",
                message != nullptr ? message : "");
}

}  // namespace atb::host
