#include <atb/cli/host_options.hpp>
#include <atb/host/logging.hpp>

#include <cstdlib>
#include <system_error>

namespace atb::cli {

std::vector<FlagSpec> host_flags(const std::string& default_backend) {
  return {
      {"plugin-dir", "DIR",
       "plugin directory (repeatable, ':'-separated; also $ATB_PLUGIN_PATH); default: ../plugins beside this tool",
       true},
      {"attention-backend", "NAME", "backend to use (default: " + default_backend + ")"},
      {"attention-config", "JSON", "backend configuration, a JSON object (default: {})"},
      {"json", "", "machine-readable output"},
      {"log-level", "LEVEL", "trace, debug, info, warn (default), error, off; also $ATB_LOG_LEVEL"},
      {"help", "", "show this help"},
  };
}

std::filesystem::path default_plugin_dir() {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "plugins";
  return self.parent_path().parent_path() / "plugins";
}

Expected<HostOptions> read_host_options(const Arguments& arguments, const std::string& default_backend) {
  HostOptions options;
  if (auto level = arguments.value("log-level")) ATB_RETURN_IF_ERROR(host::set_log_level(*level));
  for (const auto& list : arguments.values("plugin-dir"))
    for (auto& dir : host::Registry::split_path_list(list)) options.plugin_dirs.push_back(std::move(dir));
  if (options.plugin_dirs.empty() && std::getenv(host::kPluginPathEnv) == nullptr)
    options.plugin_dirs.push_back(default_plugin_dir());
  options.backend = arguments.value_or("attention-backend", default_backend);
  options.config_json = arguments.value_or("attention-config", "{}");
  options.json = arguments.has("json");
  return options;
}

}  // namespace atb::cli
