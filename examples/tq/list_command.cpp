// tq list: what the registry found, and why anything else was skipped.
#include <atb/cli/config_schema_text.hpp>
#include <atb/cli/host_options.hpp>
#include <atb/host/registry.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "commands.hpp"

namespace atb::tool {
namespace {

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string joined;
  for (size_t i = 0; i < items.size(); ++i) joined += (i ? separator : "") + items[i];
  return joined;
}

std::string head_sizes(const host::PluginInfo& info) {
  std::vector<std::string> sizes;
  for (auto size : info.head_sizes) sizes.push_back(std::to_string(size));
  return join(sizes, ",");
}

// The plugin's config schema, or null from a plugin without one (ABI minor 0).
nlohmann::json config_schema_json(const host::Plugin& plugin) {
  auto schema = plugin.config_schema();
  return schema ? nlohmann::json::parse(*schema, nullptr, false) : nlohmann::json();
}

nlohmann::json to_json(const host::Registry& registry) {
  nlohmann::json out;
  out["backends"] = nlohmann::json::array();
  for (const auto& plugin : registry.plugins()) {
    const auto& info = plugin.info();
    out["backends"].push_back({{"name", info.backend_name},
                               {"version", info.plugin_version},
                               {"abi", std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor)},
                               {"description", info.description},
                               {"devices", host::device_names(info.device_mask)},
                               {"dtypes", host::dtype_names(info.dtype_mask)},
                               {"head_sizes", info.head_sizes},
                               {"capabilities", host::capability_names(info.capability_flags)},
                               {"config_schema", config_schema_json(plugin)},
                               {"path", plugin.path().string()}});
  }
  out["skipped"] = nlohmann::json::array();
  for (const auto& diagnostic : registry.diagnostics())
    if (diagnostic.severity == host::Diagnostic::Severity::kWarning)
      out["skipped"].push_back({{"path", diagnostic.path.string()}, {"reason", diagnostic.message}});
  return out;
}

}  // namespace

int list_command(int argc, const char* const* argv) {
  const auto flags = cli::host_flags("(all)");
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq list: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf("usage: tq list [flags]\n\nLists the attention backends found in the plugin directories.\n\n%s",
                cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "");
  if (!options) {
    std::fprintf(stderr, "tq list: %s\n", options.error().message().c_str());
    return 2;
  }
  const auto registry = host::Registry::scan(options->plugin_dirs);
  if (!options->backend.empty()) {
    auto selected = registry.select(options->backend);
    if (!selected) {
      std::fprintf(stderr, "tq list: %s\n", selected.error().message().c_str());
      return 1;
    }
  }
  if (options->json) {
    std::cout << to_json(registry).dump(2) << "\n";
    return registry.plugins().empty() ? 1 : 0;
  }
  std::printf("%-12s %-8s %-4s %-8s %-14s %s\n", "backend", "version", "abi", "devices", "dtypes", "path");
  for (const auto& plugin : registry.plugins()) {
    const auto& info = plugin.info();
    std::printf("%-12s %-8s %u.%-2u %-8s %-14s %s\n", info.backend_name.c_str(), info.plugin_version.c_str(),
                info.abi_major, info.abi_minor, host::device_names(info.device_mask).c_str(),
                host::dtype_names(info.dtype_mask).c_str(), plugin.path().c_str());
    std::printf("             head sizes: %s\n             capabilities: %s\n             %s\n",
                head_sizes(info).c_str(), join(host::capability_names(info.capability_flags), ", ").c_str(),
                info.description.c_str());
    auto schema = plugin.config_schema();
    std::printf("             config keys (--attention-config):\n");
    for (const std::string& line : schema
                                       ? cli::config_schema_lines(*schema, "               ")
                                       : std::vector<std::string>{"               (" + schema.error().message() + ")"})
      std::printf("%s\n", line.c_str());
  }
  for (const auto& diagnostic : registry.diagnostics())
    if (diagnostic.severity == host::Diagnostic::Severity::kWarning)
      std::printf("skipped: %s\n", diagnostic.message.c_str());
  if (registry.plugins().empty()) {
    std::fprintf(stderr, "tq list: no attention backend found\n");
    return 1;
  }
  return 0;
}

}  // namespace atb::tool
