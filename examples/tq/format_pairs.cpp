#include "format_pairs.hpp"

#include <sstream>
#include <string>

namespace atb::tool {
namespace {

using tq::Format;
using tq::Role;

Expected<std::vector<Format>> parse_formats(Role role, const std::vector<std::string>& lists) {
  std::vector<Format> formats;
  for (const auto& list : lists) {
    std::stringstream stream(list);
    std::string name;
    while (std::getline(stream, name, ',')) {
      auto format = tq::find_format(role, name);
      if (!format) return format.error();
      formats.push_back(*format);
    }
  }
  if (formats.empty()) {
    const auto all = tq::formats_for(role);
    formats.assign(all.begin(), all.end());
  }
  return formats;
}

}  // namespace

std::vector<cli::FlagSpec> pair_flags() {
  return {{"k-quant", "LIST", "K formats, comma-separated (repeatable); default: the command's list of pairs", true},
          {"v-quant", "LIST", "V formats, comma-separated (repeatable)", true}};
}

nlohmann::json with_pair(nlohmann::json base, std::string_view key, std::string_view value) {
  base["k_quant"] = key;
  base["v_quant"] = value;
  return base;
}

Expected<std::vector<FormatPair>> select_pairs(const cli::Arguments& arguments, const nlohmann::json& config,
                                               std::span<const std::array<const char*, 2>> defaults) {
  std::vector<std::string> key_lists = arguments.values("k-quant"), value_lists = arguments.values("v-quant");
  if (key_lists.empty() && value_lists.empty() && (config.contains("k_quant") || config.contains("v_quant"))) {
    if (!config.value("k_quant", nlohmann::json("q8_0")).is_string() ||
        !config.value("v_quant", nlohmann::json("q3_0")).is_string())
      return Status::invalid("--attention-config: k_quant and v_quant must be strings");
    key_lists = {config.value("k_quant", std::string("q8_0"))};
    value_lists = {config.value("v_quant", std::string("q3_0"))};
  }
  std::vector<FormatPair> pairs;
  if (key_lists.empty() && value_lists.empty()) {
    for (const auto& [k, v] : defaults)
      pairs.push_back({*tq::find_format(Role::key, k), *tq::find_format(Role::value, v)});
    return pairs;
  }
  auto keys = parse_formats(Role::key, key_lists);
  if (!keys) return keys.error();
  auto values = parse_formats(Role::value, value_lists);
  if (!values) return values.error();
  for (const Format& k : *keys)
    for (const Format& v : *values) pairs.push_back({k, v});
  return pairs;
}

}  // namespace atb::tool
