#include <atb/mock_host/conformance.hpp>

#include <cstdlib>
#include <utility>

#include <atb/host/cuda_memory.hpp>

#include "checks.hpp"
#include <atb/mock_host/isolation.hpp>

namespace atb::mock_host {
namespace {

const std::vector<std::pair<std::string, CheckFn>>& checks() {
  static const std::vector<std::pair<std::string, CheckFn>> all = {
      {"version_negotiation", &check_version_negotiation},
      {"plugin_info", &check_plugin_info},
      {"spec_and_guards", &check_spec_and_guards},
      {"bad_arguments", &check_bad_arguments},
      {"determinism", &check_determinism},
      {"concurrency", &check_concurrency},
      {"churn", &check_churn},
      {"no_exceptions", &check_no_exceptions},
      {"struct_sizes", &check_struct_sizes},
      {"config_schema", &check_config_schema},
      {"host_obligations", &check_host_obligations},
      {"cache_flags", &check_cache_flags},
      {"causality", &check_causality},
      {"pages", &check_pages},
      {"gqa_mapping", &check_gqa_mapping},
      {"sliding_window", &check_sliding_window},
      {"soft_cap", &check_soft_cap},
      {"scale", &check_scale},
      {"kv_sharing", &check_kv_sharing},
      {"numbers", &check_numbers},
  };
  return all;
}

}  // namespace

bool ConformanceOptions::isolation_default() {
  const char* setting = std::getenv("ATB_CONFORMANCE_ISOLATE");
  return setting == nullptr || std::string(setting) != "0";
}

bool cuda_device_usable(const ConformanceOptions& options) {
  const auto probe = [] { return CheckResult{"cuda_device", host::cuda::device_present(), "probed"}; };
  return (options.isolate ? run_isolated("cuda_device", probe) : probe()).passed;
}

const std::vector<std::string>& check_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const auto& [name, fn] : checks()) list.push_back(name);
    return list;
  }();
  return names;
}

CheckResult run_check(const std::string& check, const std::filesystem::path& plugin_path,
                      const ConformanceOptions& options) {
  for (const auto& [name, fn] : checks()) {
    if (name != check) continue;
    const auto body = [&, fn = fn] { return fn(plugin_path, options); };
    return options.isolate ? run_isolated(name, body) : body();
  }
  return {check, false, "no check named '" + check + "'"};
}

std::vector<CheckResult> run_conformance(const std::filesystem::path& plugin_path, const ConformanceOptions& options) {
  std::vector<CheckResult> results;
  for (const std::string& name : check_names()) results.push_back(run_check(name, plugin_path, options));
  return results;
}

}  // namespace atb::mock_host
