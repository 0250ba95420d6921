// Reading a backend's JSON configuration strictly: every key must be known and given once, every
// value of the right type and range; each error names the key, the value and what is allowed.
// The same reads, run over {}, describe the config as a JSON Schema (ConfigReader::schema), so
// the schema a plugin publishes cannot drift from what it accepts.
#pragma once

#include <atb/status.hpp>

#include <nlohmann/json.hpp>

#include <set>
#include <span>
#include <string>
#include <string_view>

namespace atb::kit {

// Parses a config string (NULL or empty means {}); it must be a JSON object without duplicate keys.
Expected<nlohmann::json> parse_config(const char* config_json);

class ConfigReader {
 public:
  explicit ConfigReader(const nlohmann::json& object) : object_(object) {}

  // Each getter leaves `value` untouched when the key is absent: its value on entry is the default
  // the schema records, with `description`.
  Status read_int(std::string_view key, int64_t min, int64_t max, int64_t& value, std::string_view description = {});
  Status read_bool(std::string_view key, bool& value, std::string_view description = {});
  Status read_choice(std::string_view key, std::span<const std::string_view> allowed, std::string& value,
                     std::string_view description = {});
  // Any string of at most `max_length` bytes.
  Status read_string(std::string_view key, size_t max_length, std::string& value, std::string_view description = {});

  // Error naming any key no getter asked for, listing the keys that were asked for.
  Status reject_unknown_keys() const;

  // The JSON Schema of every key read so far (abi.h, get_config_schema).
  nlohmann::json schema() const;

 private:
  const nlohmann::json* find(std::string_view key, nlohmann::json property);
  const nlohmann::json& object_;
  std::set<std::string, std::less<>> known_;
  nlohmann::json properties_ = nlohmann::json::object();
};

// The JSON Schema that a plugin's reading function records over {}: the defaults are those of a
// default-constructed Keys (abi.h, get_config_schema).
template <class Keys>
nlohmann::json schema_of(Status (*read_keys)(ConfigReader&, Keys&)) {
  const nlohmann::json empty = nlohmann::json::object();
  ConfigReader reader(empty);
  Keys keys;
  (void)read_keys(reader, keys);  // {} has no key to refuse
  return reader.schema();
}

// Joins names as "a, b, c" for messages.
std::string join_names(std::span<const std::string_view> names);

}  // namespace atb::kit
