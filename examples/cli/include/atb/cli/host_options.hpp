// The options every tool shares (--plugin-dir, --attention-backend, --attention-config, --json,
// --log-level, --help) and turning them into a registry and a selected plugin.
#pragma once

#include <atb/cli/arguments.hpp>
#include <atb/host/registry.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace atb::cli {

struct HostOptions {
  std::vector<std::filesystem::path> plugin_dirs;
  std::string backend;
  std::string config_json;
  bool json = false;
};

// The shared flags; `default_backend` is shown in --help.
std::vector<FlagSpec> host_flags(const std::string& default_backend);

// Reads the shared flags and applies --log-level.  Plugin directories: every --plugin-dir (each
// may be ':'-separated); when none is given, the `plugins` directory beside the executable's bin/.
Expected<HostOptions> read_host_options(const Arguments& arguments, const std::string& default_backend);

// The `plugins` directory next to the running executable's directory (build/release/plugins for
// build/release/bin/tq).
std::filesystem::path default_plugin_dir();

}  // namespace atb::cli
