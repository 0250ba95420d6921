// Plugin-side logging: an spdlog logger (header-only spdlog, private to the plugin) whose records go
// to the host's atb_log_fn when the host set one, else to stderr.
#pragma once

#include <atb/abi.h>

#include <spdlog/logger.h>

#include <memory>

namespace atb::kit {

// The plugin-wide logger, named after the backend (a copy: safe while the host reconfigures it).
std::shared_ptr<spdlog::logger> log();

// Applies atb_host_services (already size-checked and defaulted by the caller).
void configure_logging(const char* backend_name, const atb_host_services& services);

}  // namespace atb::kit
