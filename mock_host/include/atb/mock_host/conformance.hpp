// The ABI conformance suite: what any attention-backend plugin must honour before an engine loads it.
// Each check loads the plugin through the SDK (as a real engine does) and runs in a child process of
// its own, so a plugin that aborts, exits or crashes fails that check instead of the host.
#pragma once

#include <atb/abi.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace atb::mock_host {

struct CheckResult {
  std::string check;
  bool passed = false;
  std::string message;  // why it failed, or what was verified
};

struct ConformanceOptions {
  int churn_cycles = 1000;  // create/destroy cycles of the churn check
  // Where the checks put the layer, its pages, tensors and arrays: ATB_DEVICE_CPU, or ATB_DEVICE_CUDA
  // (device 0; the plugin must list CUDA).
  int32_t device_type = ATB_DEVICE_CPU;
  // Run each check in a forked child.  ATB_CONFORMANCE_ISOLATE=0 turns it off (ThreadSanitizer does
  // not follow threads started after a fork in a process that had threads).
  bool isolate = isolation_default();
  static bool isolation_default();
};

// Whether a CUDA device is usable, asked in a child process when checks are isolated: the CUDA
// driver does not survive fork(), so the host process itself must not initialise it.
bool cuda_device_usable(const ConformanceOptions& options);

// The checks, in the order they run.
const std::vector<std::string>& check_names();

CheckResult run_check(const std::string& check, const std::filesystem::path& plugin_path,
                      const ConformanceOptions& options);
std::vector<CheckResult> run_conformance(const std::filesystem::path& plugin_path, const ConformanceOptions& options);

}  // namespace atb::mock_host
