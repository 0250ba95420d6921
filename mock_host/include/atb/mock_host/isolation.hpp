// Runs a check in a forked child and reads its result back through a pipe: a plugin that aborts,
// exits or crashes fails the check instead of taking the host down.
#pragma once

#include <atb/mock_host/conformance.hpp>

#include <functional>

namespace atb::mock_host {

CheckResult run_isolated(const std::string& check, const std::function<CheckResult()>& body);

}  // namespace atb::mock_host
