#include <atb/kit/json_config.hpp>

#include <cstring>
#include <memory>
#include <set>
#include <vector>

namespace atb::kit {

std::string join_names(std::span<const std::string_view> names) {
  std::string joined;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) joined += ", ";
    joined += names[i];
  }
  return joined;
}

namespace {

// nlohmann keeps the last of duplicate keys silently; this parser callback remembers the first
// duplicate of each object instead, so it can be refused.
class DuplicateKeyFinder {
 public:
  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) keys_.resize(size_t(depth) + 1), keys_[size_t(depth)].clear();
    if (event == Event::key && duplicate_.empty()) {
      auto& seen = keys_[size_t(depth) - 1];
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second) duplicate_ = key;
    }
    return true;
  }
  const std::string& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::string duplicate_;
};

}  // namespace

Expected<nlohmann::json> parse_config(const char* config_json) {
  if (config_json == nullptr || std::strlen(config_json) == 0) return nlohmann::json::object();
  nlohmann::json parsed;
  auto finder = std::make_shared<DuplicateKeyFinder>();
  try {
    parsed =
        nlohmann::json::parse(config_json, [finder](int depth, nlohmann::json::parse_event_t event,
                                                    nlohmann::json& value) { return (*finder)(depth, event, value); });
  } catch (const nlohmann::json::parse_error& error) {
    return Status::invalid("config_json: malformed JSON at byte " + std::to_string(error.byte) + ": " + error.what());
  }
  if (!finder->duplicate().empty())
    return Status::invalid("config_json: key '" + finder->duplicate() +
                           "' is given more than once; allowed: each key once");
  if (!parsed.is_object()) {
    return Status::invalid("config_json: expected a JSON object such as {\"threads\": 2}, got " +
                           std::string(parsed.type_name()) + " " + parsed.dump());
  }
  return parsed;
}

const nlohmann::json* ConfigReader::find(std::string_view key, nlohmann::json property) {
  known_.emplace(key);
  properties_[std::string(key)] = std::move(property);
  auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &*it;
}

static nlohmann::json described(nlohmann::json property, std::string_view description) {
  if (!description.empty()) property["description"] = std::string(description);
  return property;
}

Status ConfigReader::read_int(std::string_view key, int64_t min, int64_t max, int64_t& value,
                              std::string_view description) {
  const nlohmann::json* found =
      find(key, described({{"type", "integer"}, {"default", value}, {"minimum", min}, {"maximum", max}}, description));
  if (found == nullptr) return Status::ok();
  if (!found->is_number_integer()) {
    return Status::invalid("config key '" + std::string(key) + "': " + found->dump() +
                           " is not an integer; allowed: an integer in [" + std::to_string(min) + ", " +
                           std::to_string(max) + "]");
  }
  const int64_t read = found->get<int64_t>();
  if (read < min || read > max) {
    return Status::invalid("config key '" + std::string(key) + "': " + std::to_string(read) +
                           " is out of range; allowed: [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  value = read;
  return Status::ok();
}

Status ConfigReader::read_bool(std::string_view key, bool& value, std::string_view description) {
  const nlohmann::json* found = find(key, described({{"type", "boolean"}, {"default", value}}, description));
  if (found == nullptr) return Status::ok();
  if (!found->is_boolean()) {
    return Status::invalid("config key '" + std::string(key) + "': " + found->dump() +
                           " is not a boolean; allowed: true, false");
  }
  value = found->get<bool>();
  return Status::ok();
}

Status ConfigReader::read_choice(std::string_view key, std::span<const std::string_view> allowed, std::string& value,
                                 std::string_view description) {
  nlohmann::json choices = nlohmann::json::array();
  for (auto choice : allowed) choices.push_back(std::string(choice));
  const nlohmann::json* found =
      find(key, described({{"type", "string"}, {"default", value}, {"enum", std::move(choices)}}, description));
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

Status ConfigReader::read_string(std::string_view key, size_t max_length, std::string& value,
                                 std::string_view description) {
  const nlohmann::json* found =
      find(key, described({{"type", "string"}, {"default", value}, {"maxLength", max_length}}, description));
  if (found == nullptr) return Status::ok();
  if (found->is_string() && found->get_ref<const std::string&>().size() <= max_length) {
    value = found->get_ref<const std::string&>();
    return Status::ok();
  }
  return Status::invalid("config key '" + std::string(key) + "': " + found->dump().substr(0, 200) +
                         " is not allowed; allowed: a string of at most " + std::to_string(max_length) + " bytes");
}

Status ConfigReader::reject_unknown_keys() const {
  for (const auto& [key, item] : object_.items()) {
    if (known_.find(key) != known_.end()) continue;
    std::string keys;
    for (const auto& name : known_) keys += (keys.empty() ? "" : ", ") + name;
    return Status::invalid("config key '" + key + "' (value " + item.dump() + ") is unknown; allowed keys: " + keys);
  }
  return Status::ok();
}

nlohmann::json ConfigReader::schema() const {
  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
          {"type", "object"},
          {"additionalProperties", false},
          {"properties", properties_}};
}

}  // namespace atb::kit
