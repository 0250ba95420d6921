#include <atb/cli/config_schema_text.hpp>

#include <nlohmann/json.hpp>

namespace atb::cli {
namespace {

std::string allowed_values(const nlohmann::json& property) {
  if (property.contains("enum")) {
    std::string choices;
    for (const auto& choice : property["enum"]) choices += (choices.empty() ? "" : ", ") + choice.get<std::string>();
    return "one of " + choices;
  }
  if (property.contains("minimum") && property.contains("maximum"))
    return property["minimum"].dump() + " .. " + property["maximum"].dump();
  return property.value("type", "") == "boolean" ? "true or false" : "";
}

}  // namespace

std::vector<std::string> config_schema_lines(const std::string& schema_json, const std::string& indent) {
  const nlohmann::json schema = nlohmann::json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (!schema.is_object() || !schema.contains("properties") || !schema["properties"].is_object())
    return {indent + "(the plugin's config schema is not an object of properties)"};
  if (schema["properties"].empty()) return {indent + "(no config keys: only {} is accepted)"};
  std::vector<std::string> lines;
  for (const auto& [key, property] : schema["properties"].items()) {
    std::string line = indent + key + " (" + property.value("type", "?") + ", default " +
                       (property.contains("default") ? property["default"].dump() : std::string("none")) +
                       "): " + allowed_values(property);
    if (property.contains("description")) line += " -- " + property["description"].get<std::string>();
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace atb::cli
