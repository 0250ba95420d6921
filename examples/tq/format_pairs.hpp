// (K format, V format) pairs from the command line: --k-quant/--v-quant lists (each a filter over
// its role's formats; a missing one means every format of the role), else --attention-config's
// k_quant/v_quant, else a command's default list.
#pragma once

#include <atb/cli/arguments.hpp>
#include <tq/format.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <span>
#include <vector>

namespace atb::tool {

struct FormatPair {
  tq::Format key;
  tq::Format value;
};

Expected<std::vector<FormatPair>> select_pairs(const cli::Arguments& arguments, const nlohmann::json& config,
                                               std::span<const std::array<const char*, 2>> defaults);

// `base` (a backend config) with the pair's k_quant and v_quant.
nlohmann::json with_pair(nlohmann::json base, std::string_view key, std::string_view value);

// The --k-quant and --v-quant flag specs.
std::vector<cli::FlagSpec> pair_flags();

}  // namespace atb::tool
