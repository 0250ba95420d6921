// The individual conformance checks (one file per group); each loads the plugin itself.
#pragma once

#include <atb/host/plugin.hpp>
#include <atb/mock_host/conformance.hpp>
#include <atb/mock_host/mock_engine.hpp>

namespace atb::mock_host {

using CheckFn = CheckResult (*)(const std::filesystem::path&, const ConformanceOptions&);

CheckResult check_version_negotiation(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_plugin_info(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_spec_and_guards(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_bad_arguments(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_determinism(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_concurrency(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_churn(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_struct_sizes(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_config_schema(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_host_obligations(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_cache_flags(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_causality(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_pages(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_gqa_mapping(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_sliding_window(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_soft_cap(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_scale(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_kv_sharing(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_numbers(const std::filesystem::path& path, const ConformanceOptions& options);
CheckResult check_no_exceptions(const std::filesystem::path& path, const ConformanceOptions& options);

// The engine shape a plugin's info says it serves, on the options' device: head size 128 when
// listed (else its first), f32 when listed (else its first dtype).
EngineShape shape_for(const host::PluginInfo& info, const ConformanceOptions& options);

// "on the CUDA device" or "on the CPU", for messages.
std::string device_words(const ConformanceOptions& options);

// "the plugin threw an exception across the ABI" in any status means an exception escaped.
bool exception_escaped(const Status& status);

}  // namespace atb::mock_host
