// A short name for a backend and its configuration that a table can print whole.
#pragma once

#include <string>

namespace atb::cli {

// "turboquant q8_0/q3_0", "turboquant tq4/tq3 kernel=avx2", "reference": the K/V formats first as
// k/v, every other key as key=value; a config that is not a JSON object is shown as given.
std::string variant_label(const std::string& backend, const std::string& config_json);

}  // namespace atb::cli
