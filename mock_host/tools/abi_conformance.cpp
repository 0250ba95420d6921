// abi-conformance: runs the ABI conformance checks against the plugins of a directory (or one plugin
// file), printing each check with pass/fail; exits 1 when any check fails.
#include <atb/cli/config_schema_text.hpp>
#include <atb/cli/host_options.hpp>
#include <atb/host/logging.hpp>
#include <atb/host/registry.hpp>
#include <atb/mock_host/conformance.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace {

using atb::mock_host::CheckResult;

struct Target {
  std::string label;
  std::filesystem::path path;
  std::string load_error;  // the registry's reason when it could not load the file
};

}  // namespace

int main(int argc, char** argv) {
  auto flags = atb::cli::host_flags("(every plugin found)");
  flags.push_back(
      {"plugin", "FILE", "check this plugin file directly (repeatable), e.g. one the registry refuses", true});
  flags.push_back({"check", "NAME", "run only this check (repeatable)", true});
  flags.push_back({"churn-cycles", "N", "create/destroy cycles of the churn check (default 1000)"});
  flags.push_back({"device", "cpu|cuda", "where the layer, pages and tensors live (default cpu; cuda: device 0)"});
  flags.push_back({"schema", "", "print each plugin's config schema (its keys, types, defaults and ranges) too"});
  auto arguments = atb::cli::Arguments::parse(argc, argv, 1, flags);
  if (!arguments) {
    std::fprintf(stderr, "abi-conformance: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::string names;
    for (const auto& name : atb::mock_host::check_names()) names += " " + name;
    std::printf(
        "usage: abi-conformance [--plugin-dir DIR] [--attention-backend NAME] [--plugin FILE] [--device cpu|cuda] "
        "[--json]\n\n"
        "Runs the ABI conformance checks (each in a child process of its own) against every plugin the registry\n"
        "finds (or the one named), and against every plugin file it refused.  Checks:%s\n\n%s",
        names.c_str(), atb::cli::flags_help(flags).c_str());
    return 0;
  }
  // Refusals are the point of several checks: their log lines stay quiet unless asked for.
  if (!arguments->has("log-level")) (void)atb::host::set_log_level("off");
  auto options = atb::cli::read_host_options(*arguments, "");
  auto churn = arguments->integer_or("churn-cycles", 1000, 1, 1000000);
  if (!options || !churn) {
    std::fprintf(stderr, "abi-conformance: %s\n", (!options ? options.error() : churn.error()).message().c_str());
    return 2;
  }
  std::vector<Target> targets;
  for (const auto& file : arguments->values("plugin")) targets.push_back({file, file, ""});
  if (targets.empty()) {
    const auto registry = atb::host::Registry::scan(options->plugin_dirs);
    for (const auto& plugin : registry.plugins())
      if (options->backend.empty() || plugin.info().backend_name == options->backend)
        targets.push_back({plugin.info().backend_name, plugin.path(), ""});
    if (options->backend.empty())
      for (const auto& diagnostic : registry.diagnostics())
        if (diagnostic.severity == atb::host::Diagnostic::Severity::kWarning && diagnostic.path.extension() == ".so")
          targets.push_back({diagnostic.path.filename().string(), diagnostic.path, diagnostic.message});
    if (targets.empty()) {
      auto selected = registry.select(options->backend.empty() ? "(any)" : options->backend);
      std::fprintf(stderr, "abi-conformance: no plugin to check%s%s\n", selected ? "" : ": ",
                   selected ? "" : selected.error().message().c_str());
      return 1;
    }
  }
  atb::mock_host::ConformanceOptions conformance;
  conformance.churn_cycles = int(*churn);
  const std::string device = arguments->value_or("device", "cpu");
  if (device != "cpu" && device != "cuda") {
    std::fprintf(stderr, "abi-conformance: --device %s; allowed: cpu, cuda\n", device.c_str());
    return 2;
  }
  if (device == "cuda") {
    conformance.device_type = ATB_DEVICE_CUDA;
    if (!atb::mock_host::cuda_device_usable(conformance)) {
      std::fprintf(stderr,
                   "abi-conformance: --device cuda, but no CUDA device is usable here (or this build has no CUDA)\n");
      return 1;
    }
  }
  const auto selected_checks = arguments->values("check");
  bool all_passed = true;
  nlohmann::json report = nlohmann::json::array();
  for (const Target& target : targets) {
    std::vector<CheckResult> results;
    if (!target.load_error.empty()) {
      results.push_back({"load", false, "the registry refused it: " + target.load_error});
    } else {
      for (const auto& name : atb::mock_host::check_names())
        if (selected_checks.empty() ||
            std::find(selected_checks.begin(), selected_checks.end(), name) != selected_checks.end())
          results.push_back(atb::mock_host::run_check(name, target.path, conformance));
    }
    nlohmann::json checks = nlohmann::json::array();
    if (!options->json) std::printf("%s (%s)\n", target.label.c_str(), target.path.string().c_str());
    nlohmann::json schema;
    if (arguments->has("schema") && target.load_error.empty()) {
      auto plugin = atb::host::Plugin::load(target.path);
      auto text = plugin ? plugin->config_schema() : atb::Expected<std::string>(plugin.error());
      if (text) schema = nlohmann::json::parse(*text, nullptr, false);
      if (!options->json) {
        std::printf("  config keys:\n");
        for (const std::string& line : text ? atb::cli::config_schema_lines(*text, "    ")
                                            : std::vector<std::string>{"    (" + text.error().message() + ")"})
          std::printf("%s\n", line.c_str());
      }
    }
    for (const CheckResult& result : results) {
      all_passed = all_passed && result.passed;
      checks.push_back({{"check", result.check}, {"passed", result.passed}, {"message", result.message}});
      if (!options->json)
        std::printf("  %-20s %s  %s\n", result.check.c_str(), result.passed ? "pass" : "FAIL", result.message.c_str());
    }
    report.push_back({{"plugin", target.label}, {"path", target.path.string()}, {"checks", checks}});
    if (!schema.is_null()) report.back()["config_schema"] = schema;
  }
  if (options->json) std::cout << nlohmann::json{{"plugins", report}, {"passed", all_passed}}.dump(2) << "\n";
  return all_passed ? 0 : 1;
}
