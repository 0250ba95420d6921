// The SDK's logger.  Level from set_log_level() (a --log-level flag) or, before any call, from the
// ATB_LOG_LEVEL environment variable; default "warn".
#pragma once

#include <atb/abi.h>
#include <atb/status.hpp>

#include <spdlog/logger.h>

#include <memory>
#include <string_view>

namespace atb::host {

std::shared_ptr<spdlog::logger> logger();

// Accepts trace, debug, info, warn, error, off.
Status set_log_level(std::string_view level_name);

// The current level as the ABI spells it, for handing to plugins.
atb_log_level current_abi_log_level();

// An atb_log_fn that forwards plugin records into logger(); user_data is unused.
void forward_plugin_log(void* user_data, int32_t level, const char* logger_name, const char* message);

}  // namespace atb::host
