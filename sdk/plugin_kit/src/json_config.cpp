#include <atb/kit/json_config.hpp>

#include <cstring>

namespace atb::kit {

std::string join_names(std::span<const std::string_view> names) {
  std::string joined;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) joined += ", ";
    joined += names[i];
  }
  return joined;
}

Expected<nlohmann::json> parse_config(const char* config_json) {
  if (config_json == nullptr || std::strlen(config_json) == 0) return nlohmann::json::object();
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(config_json);
  } catch (const nlohmann::json::parse_error& error) {
    return Status::invalid("config_json: malformed JSON at byte " + std::to_string(error.byte) +
                           ": " + error.what());
  }
  if (!parsed.is_object()) {
    return Status::invalid("config_json: expected a JSON object such as {\"threads\": 2}, got " +
                           std::string(parsed.type_name()) + " " + parsed.dump());
  }
  return parsed;
}

const nlohmann::json* ConfigReader::find(std::string_view key) {
  known_.emplace(key);
  auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &*it;
}

Status ConfigReader::read_int(std::string_view key, int64_t min, int64_t max, int64_t& value) {
  const nlohmann::json* found = find(key);
  if (found == nullptr) return Status::ok();
  if (!found->is_number_integer()) {
    return Status::invalid("config key '" + std::string(key) + "': " + found->dump() +
                           " is not an integer; allowed: an integer in [" + std::to_string(min) +
                           ", " + std::to_string(max) + "]");
  }
  const int64_t read = found->get<int64_t>();
  if (read < min || read > max) {
    return Status::invalid("config key '" + std::string(key) + "': " + std::to_string(read) +
                           " is out of range; allowed: [" + std::to_string(min) + ", " +
                           std::to_string(max) + "]");
  }
  value = read;
  return Status::ok();
}

Status ConfigReader::read_bool(std::string_view key, bool& value) {
  const nlohmann::json* found = find(key);
  if (found == nullptr) return Status::ok();
  if (!found->is_boolean()) {
    return Status::invalid("config key '" + std::string(key) + "': " + found->dump() +
                           " is not a boolean; allowed: true, false");
  }
  value = found->get<bool>();
  return Status::ok();
}

Status ConfigReader::read_choice(std::string_view key, std::span<const std::string_view> allowed,
                                 std::string& value) {
  const nlohmann::json* found = find(key);
  if (found == nullptr) return Status::ok();
  if (found->is_string()) {
    const auto& text = found->get_ref<const std::string&>();
    for (auto choice : allowed) {
      if (choice == text) {
        value = text;
        return Status::ok();
      }
    }
  }
  return Status::invalid("config key '" + std::string(key) + "': " + found->dump() +
                         " is not allowed; allowed: " + join_names(allowed));
}

Status ConfigReader::reject_unknown_keys() const {
  for (const auto& [key, item] : object_.items()) {
    if (known_.find(key) != known_.end()) continue;
    std::string keys;
    for (const auto& name : known_) keys += (keys.empty() ? "" : ", ") + name;
    return Status::invalid("config key '" + key + "' (value " + item.dump() +
                           ") is unknown; allowed keys: " + keys);
  }
  return Status::ok();
}

}  // namespace atb::kit
