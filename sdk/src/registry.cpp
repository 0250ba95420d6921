#include <atb/host/logging.hpp>
#include <atb/host/registry.hpp>

#include <algorithm>
#include <cstdlib>
#include <system_error>

namespace atb::host {
namespace fs = std::filesystem;

std::vector<fs::path> Registry::split_path_list(std::string_view list) {
  std::vector<fs::path> paths;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(':', start);
    if (end == std::string_view::npos) end = list.size();
    if (end > start) paths.emplace_back(std::string(list.substr(start, end - start)));
    start = end + 1;
  }
  return paths;
}

Registry Registry::scan(const std::vector<fs::path>& directories, bool include_environment) {
  std::vector<fs::path> all = directories;
  if (include_environment) {
    if (const char* env = std::getenv(kPluginPathEnv)) {
      for (auto& path : split_path_list(env)) all.push_back(std::move(path));
    }
  }
  Registry registry;
  if (all.empty()) {
    registry.diagnostics_.push_back(
        {Diagnostic::Severity::kWarning,
         {},
         "no plugin directory given (use --plugin-dir DIR or " + std::string(kPluginPathEnv) + ")"});
    logger()->warn("{}", registry.diagnostics_.back().message);
  }
  for (const auto& directory : all) registry.scan_directory(directory);
  return registry;
}

void Registry::scan_directory(const fs::path& directory) {
  auto warn = [&](const std::string& message) {
    diagnostics_.push_back({Diagnostic::Severity::kWarning, directory, message});
    logger()->warn("{}", message);
  };
  std::error_code error;
  const auto status = fs::status(directory, error);
  if (error || !fs::exists(status)) {
    warn("plugin directory '" + directory.string() + "' does not exist");
    return;
  }
  if (!fs::is_directory(status)) {
    warn("plugin directory '" + directory.string() + "' is not a directory");
    return;
  }
  std::vector<fs::path> files;
  fs::directory_iterator it(directory, error);
  if (error) {
    warn("plugin directory '" + directory.string() + "' cannot be read: " + error.message());
    return;
  }
  for (const auto& entry : it) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) add_candidate(file);
}

void Registry::add_candidate(const fs::path& file) {
  std::error_code error;
  if (file.extension() != ".so" || !fs::is_regular_file(file, error)) {
    diagnostics_.push_back({Diagnostic::Severity::kDebug, file, "ignored: not a *.so file"});
    logger()->debug("{}: ignored, not a *.so file", file.string());
    return;
  }
  auto plugin = Plugin::load(file);
  if (!plugin) {
    diagnostics_.push_back({Diagnostic::Severity::kWarning, file, plugin.error().message()});
    logger()->warn("skipping plugin candidate: {}", plugin.error().message());
    return;
  }
  const std::string& name = plugin->info().backend_name;
  auto same_name =
      std::find_if(plugins_.begin(), plugins_.end(), [&](const Plugin& p) { return p.info().backend_name == name; });
  if (same_name != plugins_.end()) {
    const std::string message = "backend '" + name + "' from " + file.string() +
                                " ignored: the same name was registered first from " + same_name->path().string();
    diagnostics_.push_back({Diagnostic::Severity::kWarning, file, message});
    logger()->warn("{}", message);
    return;
  }
  logger()->debug("registered backend '{}' {} from {}", name, plugin->info().plugin_version, file.string());
  plugins_.push_back(std::move(*plugin));
}

std::vector<std::string> Registry::backend_names() const {
  std::vector<std::string> names;
  for (const auto& plugin : plugins_) names.push_back(plugin.info().backend_name);
  return names;
}

Expected<const Plugin*> Registry::select(std::string_view backend_name) const {
  for (const auto& plugin : plugins_)
    if (plugin.info().backend_name == backend_name) return &plugin;
  std::string message = "--attention-backend: no backend named '" + std::string(backend_name) + "'; available: ";
  const auto names = backend_names();
  if (names.empty()) message += "(none)";
  for (size_t i = 0; i < names.size(); ++i) message += (i ? ", " : "") + names[i];
  for (const auto& diagnostic : diagnostics_) {
    if (diagnostic.severity == Diagnostic::Severity::kWarning) message += "\n  note: " + diagnostic.message;
  }
  return Status::invalid(message);
}

}  // namespace atb::host
