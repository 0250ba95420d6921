// The plugin registry: scan plugin directories, load every candidate, register by backend name,
// select by name.  Problems never abort the scan; each becomes a Diagnostic.
#pragma once

#include <atb/host/plugin.hpp>
#include <atb/status.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace atb::host {

// Environment variable with extra plugin directories, ':'-separated, searched after --plugin-dir.
inline constexpr const char* kPluginPathEnv = "ATB_PLUGIN_PATH";

struct Diagnostic {
  enum class Severity { kDebug, kWarning };
  Severity severity;
  std::filesystem::path path;
  std::string message;
};

class Registry {
 public:
  // Scans `directories` in order, then those of ATB_PLUGIN_PATH when include_environment is set.
  // Within a directory, candidates (*.so regular files) load in file-name order, so when two
  // plugins share a backend name the first one found wins, deterministically, with a warning.
  static Registry scan(const std::vector<std::filesystem::path>& directories, bool include_environment = true);

  // Splits "a:b:c" into paths, dropping empty entries.
  static std::vector<std::filesystem::path> split_path_list(std::string_view list);

  const std::vector<Plugin>& plugins() const { return plugins_; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  std::vector<std::string> backend_names() const;

  // The plugin registered under `backend_name`; the error lists the available names and what
  // failed to load.
  Expected<const Plugin*> select(std::string_view backend_name) const;

 private:
  void scan_directory(const std::filesystem::path& directory);
  void add_candidate(const std::filesystem::path& file);
  std::vector<Plugin> plugins_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace atb::host
