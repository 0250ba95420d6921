#include <atb/cli/variant_label.hpp>

#include <nlohmann/json.hpp>

namespace atb::cli {

// Appends rather than operator+: GCC 12 warns (-Wrestrict, a false positive) on chains of it.
std::string variant_label(const std::string& backend, const std::string& config_json) {
  std::string label = backend;
  const nlohmann::json config = nlohmann::json::parse(config_json.empty() ? "{}" : config_json, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return label.append(" ").append(config_json);
  const auto text = [](const nlohmann::json& value) {
    return value.is_string() ? value.get<std::string>() : value.dump();
  };
  const bool pair = config.contains("k_quant") && config.contains("v_quant");
  if (pair) label.append(" ").append(text(config["k_quant"])).append("/").append(text(config["v_quant"]));
  for (const auto& [key, value] : config.items())
    if (!pair || (key != "k_quant" && key != "v_quant")) label.append(" ").append(key).append("=").append(text(value));
  return label;
}

}  // namespace atb::cli
