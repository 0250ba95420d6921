// A plugin's config schema (abi.h, get_config_schema) as lines for people: one key per line with
// its type, default, allowed values and description.  Shared by `tq list` and `abi-conformance`.
#pragma once

#include <string>
#include <vector>

namespace atb::cli {

// The lines of `schema_json`, each starting with `indent`; one line saying why when it is not a
// schema of properties.
std::vector<std::string> config_schema_lines(const std::string& schema_json, const std::string& indent);

}  // namespace atb::cli
