// Checks of the rules abi.h states beyond the calls themselves: struct sizes in both directions, the
// config schema a plugin publishes, what a host need not prepare, and the cache's compression flag.
#include <atb/half.hpp>
#include <atb/struct_io.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <limits>
#include <vector>

#include "checks.hpp"

namespace atb::mock_host {
namespace {

std::string str(int64_t value) { return std::to_string(value); }

// Bytes [from, to) of `bytes` still hold `canary`.
bool untouched(const unsigned char* bytes, size_t from, size_t to, unsigned char canary) {
  for (size_t i = from; i < to; ++i)
    if (bytes[i] != canary) return false;
  return true;
}

// An output struct handed over larger than this ABI's (a future host): what the plugin reports it
// filled must lie between `at_least` and the host's size, and nothing past it may change.
template <class T, class Call>
Expected<std::string> check_output_struct(const char* what, size_t at_least, uint32_t plugin_minor, Call&& call) {
  struct Larger {
    T known;
    unsigned char tail[64];
  } larger;
  std::memset(&larger, 0x5a, sizeof larger);
  larger.known.struct_size = sizeof larger;
  atb_error error = make_versioned<atb_error>();
  if (const atb_status status = call(&larger.known, &error); status != ATB_OK)
    return Status(status, std::string(what) + " refused a larger struct: " + error.message);
  const size_t reported = larger.known.struct_size;
  if (plugin_minor >= 1 && (reported < at_least || reported > sizeof larger))
    return Status::invalid(std::string(what) + " reported struct_size " + str(int64_t(reported)) + " for a " +
                           str(int64_t(sizeof larger)) + "-byte struct; allowed: the bytes it filled, " +
                           str(int64_t(at_least)) + " .. the host's size");
  const size_t filled = plugin_minor >= 1 ? reported : sizeof(T);
  if (!untouched(reinterpret_cast<const unsigned char*>(&larger), filled, sizeof larger, 0x5a))
    return Status::invalid(std::string(what) + " wrote past the " + str(int64_t(filled)) +
                           " bytes it reported filling");
  return std::string(what) + " reported " + str(int64_t(reported));
}

}  // namespace

CheckResult check_struct_sizes(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "struct_sizes";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const atb_api& api = plugin->api();
  const uint32_t minor = plugin->info().abi_minor;
  EngineShape shape = shape_for(plugin->info(), options);
  shape.device_type = ATB_DEVICE_CPU;  // the fields of the smallest layer spec end before device_type

  // The smallest layer spec, garbage past it; one byte less is refused.
  struct Smallest {
    atb_layer_spec spec;
  } smallest;
  smallest.spec = shape.layer_spec();
  std::memset(reinterpret_cast<unsigned char*>(&smallest.spec) + ATB_LAYER_SPEC_MIN_STRUCT_SIZE, 0x5a,
              sizeof(atb_layer_spec) - ATB_LAYER_SPEC_MIN_STRUCT_SIZE);
  smallest.spec.struct_size = ATB_LAYER_SPEC_MIN_STRUCT_SIZE;
  atb_backend* handle = nullptr;
  atb_error error = make_versioned<atb_error>();
  if (api.create_backend(&smallest.spec, "{}", &handle, &error) != ATB_OK)
    return {name, false,
            "a layer spec of ATB_LAYER_SPEC_MIN_STRUCT_SIZE (" + str(ATB_LAYER_SPEC_MIN_STRUCT_SIZE) +
                ") bytes was refused: " + error.message};
  auto destroy = [&] {
    atb_error ignored = make_versioned<atb_error>();
    api.destroy_backend(handle, &ignored);
    handle = nullptr;
  };
  smallest.spec.struct_size = ATB_LAYER_SPEC_MIN_STRUCT_SIZE - 1;
  atb_backend* refused = nullptr;
  const atb_status too_small = api.create_backend(&smallest.spec, "{}", &refused, &error);
  if (too_small != ATB_ERR_INVALID_ARGUMENT || refused != nullptr || std::strlen(error.message) == 0) {
    if (refused) api.destroy_backend(refused, &error);
    destroy();
    return {name, false,
            "a layer spec one byte below ATB_LAYER_SPEC_MIN_STRUCT_SIZE got status " + str(too_small) +
                "; allowed: ATB_ERR_INVALID_ARGUMENT with a message"};
  }

  // Output structs handed over larger: the plugin says what it filled and writes nothing more.
  auto info = check_output_struct<atb_plugin_info>(
      "get_plugin_info", ATB_PLUGIN_INFO_STRUCT_SIZE, minor,
      [&](atb_plugin_info* out, atb_error* e) { return api.get_plugin_info(out, e); });
  auto cache = check_output_struct<atb_kv_cache_spec>(
      "get_kv_cache_spec", ATB_KV_CACHE_SPEC_STRUCT_SIZE, minor,
      [&](atb_kv_cache_spec* out, atb_error* e) { return api.get_kv_cache_spec(handle, out, e); });
  destroy();
  if (!info) return {name, false, info.error().message()};
  if (!cache) return {name, false, cache.error().message()};

  // A smaller atb_error: the status, a message cut to its capacity, nothing past struct_size.  The
  // struct sits at the start of a full-sized buffer, so a plugin that overruns it is reported, not
  // crashed into the stack.
  std::vector<unsigned char> buffer(sizeof(atb_error) + 64, 0x77);
  auto* short_error = reinterpret_cast<atb_error*>(buffer.data());
  const size_t short_size = offsetof(atb_error, message) + 8;
  short_error->struct_size = short_size;
  atb_layer_spec bad = shape.layer_spec();
  bad.num_kv_heads = 0;
  const atb_status status = api.create_backend(&bad, "{}", &refused, short_error);
  if (refused) api.destroy_backend(refused, &error);
  if (status == ATB_OK) return {name, false, "create_backend accepted num_kv_heads = 0"};
  if (!untouched(buffer.data(), short_size, buffer.size(), 0x77))
    return {name, false,
            "an atb_error of struct_size " + str(int64_t(short_size)) +
                " was written past its end (the message must be cut to struct_size - offsetof(message))"};
  if (short_error->status != status || strnlen(short_error->message, 8) >= 8)
    return {name, false, "a smaller atb_error did not get the status and a NUL-terminated, truncated message"};
  return {name, true,
          "layer spec of " + str(ATB_LAYER_SPEC_MIN_STRUCT_SIZE) + " bytes served, one less refused; " + *info + ", " +
              *cache + " for larger structs, nothing past; a 20-byte atb_error got '" +
              std::string(short_error->message) + "'"};
}

namespace {

// Values that a property of the schema must refuse: the wrong type, and past its range or enum.
std::vector<nlohmann::json> values_to_refuse(const nlohmann::json& property) {
  const std::string type = property.value("type", "");
  std::vector<nlohmann::json> refuse;
  if (type == "boolean") refuse = {"yes", 1};
  if (type == "string" && property.contains("enum")) refuse = {true, "no_such_choice"};
  if (type == "string" && !property.contains("enum"))
    refuse = {true, std::string(property.value("maxLength", size_t(0)) + 1, 'x')};
  if (type == "integer") {
    refuse = {"1", 1.5};
    const int64_t min = property.value("minimum", std::numeric_limits<int64_t>::min());
    const int64_t max = property.value("maximum", std::numeric_limits<int64_t>::max());
    if (min > std::numeric_limits<int64_t>::min()) refuse.push_back(min - 1);
    if (max < std::numeric_limits<int64_t>::max()) refuse.push_back(max + 1);
  }
  return refuse;
}

// What is wrong with one property of a schema, or "".
std::string property_problem(const std::string& key, const nlohmann::json& property) {
  if (!property.is_object() || !property.contains("type") || !property.contains("default"))
    return "property '" + key + "' lacks a type or a default";
  const std::string type = property["type"].get<std::string>();
  const nlohmann::json& fallback = property["default"];
  if (type == "boolean" && !fallback.is_boolean()) return "property '" + key + "': the default is not a boolean";
  if (type == "integer" &&
      (!fallback.is_number_integer() || !property.contains("minimum") || !property.contains("maximum")))
    return "property '" + key + "': an integer needs an integer default, a minimum and a maximum";
  if (type == "string" && !property.contains("enum")) {  // free text (a path, say): bounded
    if (!fallback.is_string() || !property.contains("maxLength") || !property["maxLength"].is_number_unsigned() ||
        property["maxLength"].get<uint64_t>() > (uint64_t(1) << 20))
      return "property '" + key + "': a string needs an enum, or a string default and a maxLength up to 2^20";
  } else if (type == "string") {
    if (!property["enum"].is_array()) return "property '" + key + "': a string's enum must be an array";
    bool listed = false;
    for (const auto& choice : property["enum"]) listed = listed || choice == fallback;
    if (!listed) return "property '" + key + "': the default " + fallback.dump() + " is not in its enum";
  }
  if (type != "boolean" && type != "integer" && type != "string")
    return "property '" + key + "' has type '" + type + "'; allowed: boolean, integer, string";
  return "";
}

}  // namespace

CheckResult check_config_schema(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "config_schema";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  auto text = plugin->config_schema();
  if (!text && plugin->info().abi_minor == 0 && text.error().code() == ATB_ERR_UNSUPPORTED)
    return {name, true, "a plugin of ABI minor 0 publishes no schema (nothing to check)"};
  if (!text) return {name, false, text.error().message()};
  const nlohmann::json schema = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!schema.is_object() || schema.value("type", "") != "object" || !schema.contains("properties") ||
      !schema["properties"].is_object() || schema.value("additionalProperties", true) != false)
    return {name, false,
            "the schema must be a JSON object with \"type\": \"object\", \"properties\" and "
            "\"additionalProperties\": false; got " +
                text->substr(0, 200)};
  const EngineShape shape = shape_for(plugin->info(), options);
  const atb_layer_spec spec = shape.layer_spec();
  const auto creates = [&](const nlohmann::json& config) { return bool(plugin->create_backend(spec, config.dump())); };
  nlohmann::json all_defaults = nlohmann::json::object();
  int refused = 0;
  for (const auto& [key, property] : schema["properties"].items()) {
    if (std::string problem = property_problem(key, property); !problem.empty()) return {name, false, problem};
    all_defaults[key] = property["default"];
    auto given = plugin->create_backend(spec, nlohmann::json{{key, property["default"]}}.dump());
    if (!given)
      return {name, false,
              "the schema's default of '" + key + "' (" + property["default"].dump() +
                  ") was refused: " + given.error().message()};
    for (const nlohmann::json& value : values_to_refuse(property)) {
      if (creates({{key, value}}))
        return {name, false,
                "'" + key + "': " + value.dump() + " is outside the schema but create_backend accepted it"};
      ++refused;
    }
  }
  if (!creates(all_defaults))
    return {name, false, "every key at its default, together, was refused: " + all_defaults.dump()};
  if (creates({{"no_such_key_in_any_schema", 1}})) return {name, false, "an unknown key was accepted"};
  if (!schema["properties"].empty()) {
    const auto first = schema["properties"].begin();
    const std::string twice = "{\"" + first.key() + "\": " + (*first)["default"].dump() + ", \"" + first.key() +
                              "\": " + (*first)["default"].dump() + "}";
    if (plugin->create_backend(spec, twice)) return {name, false, "a duplicate key was accepted: " + twice};
  }
  return {name, true,
          str(int64_t(schema["properties"].size())) + " keys: each default accepted alone and together " +
              device_words(options) + "; " + str(refused) +
              " values outside the schema, an unknown key and a duplicate key refused"};
}

CheckResult check_host_obligations(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "host_obligations";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);

  // A new pool need not be zeroed: the same script over pages of other bytes gives the same outputs.
  std::vector<std::byte> expected;
  for (uint8_t fill : {kCanary, uint8_t(0x00), uint8_t(0xff)}) {
    auto engine = MockEngine::create(*plugin, shape, "{}", 64, 1, fill);
    if (!engine) return {name, false, engine.error().message()};
    auto outputs = engine->run_script(standard_script());
    if (!outputs) return {name, false, outputs.error().message()};
    if (expected.empty())
      expected = *outputs;
    else if (*outputs != expected)
      return {name, false,
              "outputs depend on bytes the host never had written: pages that started as bytes of " + str(fill) +
                  " gave other outputs than pages of 0xa5 (a host need not zero a new pool)"};
  }

  // Block-table entries a sequence does not use are never read: -1 there changes nothing.
  auto plain = MockEngine::create(*plugin, shape, "{}");
  if (!plain) return {name, false, plain.error().message()};
  auto holey = MockEngine::create(*plugin, shape, "{}");
  if (!holey) return {name, false, holey.error().message()};
  int holes = 0;
  for (const ScriptStep& step : standard_script()) {
    auto a = plain->prepare(step);
    if (!a) return {name, false, a.error().message()};
    auto b = holey->prepare(step);
    if (!b) return {name, false, b.error().message()};
    host::StepBatch& batch = (*b)->batch;
    for (int32_t s = 0; s < batch.num_seqs; ++s) {
      const int64_t used = (int64_t(batch.seq_lens[size_t(s)]) + shape.block_size - 1) / shape.block_size;
      for (int64_t e = used; e < batch.block_table_stride; ++e, ++holes)
        batch.block_tables[size_t(s) * size_t(batch.block_table_stride) + size_t(e)] = -1;
    }
    const Status ran_a = plain->run(**a), ran_b = holey->run(**b);
    if (!ran_a) return {name, false, ran_a.message()};
    if (!ran_b)
      return {name, false, "-1 in block-table entries past a sequence's length was refused: " + ran_b.message()};
    const size_t bytes = (*a)->output.byte_size();
    if (std::memcmp((*a)->output.bytes(), (*b)->output.bytes(), bytes) != 0)
      return {name, false, "-1 in block-table entries past a sequence's length changed its outputs"};
  }

  // WRITE_KV_ONLY without sequences writes the same pages as with them.
  auto with_seqs = MockEngine::create(*plugin, shape, "{}");
  if (!with_seqs) return {name, false, with_seqs.error().message()};
  auto without = MockEngine::create(*plugin, shape, "{}");
  if (!without) return {name, false, without.error().message()};
  const ScriptStep prefill = standard_script()[0];
  auto a = with_seqs->prepare(prefill);
  if (!a) return {name, false, a.error().message()};
  auto b = without->prepare(prefill);
  if (!b) return {name, false, b.error().message()};
  for (PreparedStep* step : {a->get(), b->get()}) {
    step->args.flags = ATB_FORWARD_WRITE_KV_ONLY;
    step->args.query = step->args.output = nullptr;
  }
  (*b)->args.num_seqs = 0;
  (*b)->args.query_start_loc = (*b)->args.seq_lens = nullptr;
  (*b)->args.block_tables = nullptr;
  if (Status ran = with_seqs->run(**a); !ran) return {name, false, "WRITE_KV_ONLY: " + ran.message()};
  if (Status ran = without->run(**b); !ran)
    return {name, false, "WRITE_KV_ONLY with num_seqs 0 and no sequence arrays: " + ran.message()};
  if (std::memcmp(with_seqs->pool().allocation(), without->pool().allocation(), with_seqs->pool().allocation_bytes()) !=
      0)
    return {name, false, "WRITE_KV_ONLY without sequences wrote other page bytes than with them"};
  return {name, true,
          "outputs identical " + device_words(options) + " over pages starting as 0xa5, 0x00 and 0xff; " + str(holes) +
              " unused block-table entries set to -1 changed nothing; WRITE_KV_ONLY without sequences wrote the "
              "same pages"};
}

CheckResult check_cache_flags(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "cache_flags";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  if (plugin->info().abi_minor == 0)
    return {name, true, "a plugin of ABI minor 0 sends no cache flags (nothing to check)"};
  const EngineShape shape = shape_for(plugin->info(), options);
  const atb_layer_spec spec = shape.layer_spec();
  // Every config the schema's choices give, one key at a time, besides {}.
  std::vector<std::string> configs = {"{}"};
  if (auto text = plugin->config_schema()) {
    const nlohmann::json schema = nlohmann::json::parse(*text, nullptr, false);
    if (schema.is_object() && schema.contains("properties")) {
      for (const auto& [key, property] : schema["properties"].items()) {
        if (property.contains("enum")) {
          for (const auto& choice : property["enum"]) configs.push_back(nlohmann::json{{key, choice}}.dump());
        } else if (property.value("type", "") == "boolean") {
          for (bool choice : {true, false}) configs.push_back(nlohmann::json{{key, choice}}.dump());
        }
      }
    }
  }
  const uint64_t dtype_bytes = dtype_size(spec.dtype);
  int compressed = 0, served = 0;
  for (const std::string& config : configs) {
    auto backend = plugin->create_backend(spec, config);
    if (!backend) continue;  // a choice this layer cannot take (refused with a message elsewhere)
    auto cache = backend->kv_cache_spec();
    if (!cache) return {name, false, cache.error().message()};
    ++served;
    const bool fewer = cache->k_bytes_per_token_per_head + cache->v_bytes_per_token_per_head <
                       uint64_t(spec.head_size_k + spec.head_size_v) * dtype_bytes;
    const bool flagged = (cache->cache_flags & ATB_KV_CACHE_COMPRESSED) != 0;
    if (fewer != flagged)
      return {name, false,
              "config " + config + ": K + V take " +
                  str(int64_t(cache->k_bytes_per_token_per_head + cache->v_bytes_per_token_per_head)) +
                  " bytes per token per head against " +
                  str(int64_t(uint64_t(spec.head_size_k + spec.head_size_v) * dtype_bytes)) +
                  " in the layer's dtype, but ATB_KV_CACHE_COMPRESSED is " + (flagged ? "set" : "not set")};
    if (flagged && !(plugin->info().capability_flags & ATB_CAP_COMPRESSED_KV))
      return {name, false,
              "config " + config + " compresses the cache but the plugin does not advertise ATB_CAP_COMPRESSED_KV"};
    const uint32_t alignment = cache->workspace_alignment;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
      return {name, false, "config " + config + ": workspace_alignment " + str(alignment) + " is not a power of two"};
    compressed += flagged;
  }
  return {name, true,
          str(served) + " configs served " + device_words(options) + " (" + str(compressed) +
              " compressed): ATB_KV_CACHE_COMPRESSED set exactly where K + V take fewer bytes than the dtype"};
}

}  // namespace atb::mock_host
