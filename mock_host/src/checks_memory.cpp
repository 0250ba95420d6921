// Checks of memory honesty: the spec sizes what the plugin writes, and bad arguments are refused
// without touching host memory.
#include <atb/half.hpp>

#include <cstring>
#include <functional>

#include "checks.hpp"

namespace atb::mock_host {
namespace {

uint64_t hash_bytes(const std::byte* data, size_t size) {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < size; ++i) hash = (hash ^ uint64_t(data[i])) * 1099511628211ull;
  return hash;
}

}  // namespace

CheckResult check_spec_and_guards(const std::filesystem::path& path, const ConformanceOptions&) {
  const std::string name = "spec_and_guards";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  auto engine = MockEngine::create(*plugin, shape_for(plugin->info()), "{}");
  if (!engine) return {name, false, engine.error().message()};
  const atb_kv_cache_spec& spec = engine->spec();
  const EngineShape shape = shape_for(plugin->info());
  if (spec.page_bytes == 0 || int64_t(spec.block_size) != int64_t(shape.block_size) || spec.page_alignment == 0 ||
      (spec.page_alignment & (spec.page_alignment - 1)) != 0)
    return {name, false, "spec: page_bytes must be > 0, block_size the layer's, page_alignment a power of two"};
  const uint64_t per_token = uint64_t(shape.num_kv_heads) * (spec.k_bytes_per_token_per_head + spec.v_bytes_per_token_per_head);
  if (per_token * spec.block_size > spec.page_bytes)
    return {name, false, "spec: block_size x KV heads x (k + v bytes per token per head) = " +
                             std::to_string(per_token * spec.block_size) + " exceeds page_bytes " + std::to_string(spec.page_bytes)};
  int step_index = 0;
  for (const ScriptStep& step : standard_script()) {
    auto out = engine->step(step);  // checks the pool's and the output's guards after each forward
    if (!out) return {name, false, "script step " + std::to_string(step_index) + ": " + out.error().message()};
    if (step_index == 0) {
      // On a fresh pool, the bytes that changed are at most what the spec says the tokens take.
      uint64_t tokens = 0, changed = 0;
      for (const auto& sequence : step.tokens) tokens += uint64_t(sequence.new_tokens);
      const std::byte* pages = engine->pool().data();
      for (int64_t page = 0; page < engine->pool().num_pages(); ++page)
        for (uint64_t i = 0; i < spec.page_bytes; ++i)
          changed += pages[uint64_t(page) * engine->pool().stride_bytes() + i] != std::byte(kCanary);
      if (changed > tokens * per_token)
        return {name, false, "writing " + std::to_string(tokens) + " tokens changed " + std::to_string(changed) +
                                 " page bytes; the spec says they take " + std::to_string(tokens * per_token)};
      if (spec.writes_kv && changed == 0) return {name, false, "writing " + std::to_string(tokens) + " tokens changed no page byte"};
    }
    ++step_index;
  }
  return {name, true, "4 scripted steps (prefill, decode, chunked prefill, page reuse): writes within the spec's bytes per "
                          "token; no byte outside the pages' " +
                          std::to_string(spec.page_bytes) + " bytes or the output rows changed; " +
                          std::to_string(per_token) + " bytes per token fit the page"};
}

CheckResult check_bad_arguments(const std::filesystem::path& path, const ConformanceOptions&) {
  const std::string name = "bad_arguments";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info());
  // create_backend: malformed and unknown JSON, and bad layer specs.
  struct SpecCase {
    const char* what;
    std::function<void(atb_layer_spec&)> mutate;
    const char* config;
  };
  const std::vector<SpecCase> spec_cases = {
      {"malformed JSON", [](atb_layer_spec&) {}, "{\"threads\": "},
      {"unknown JSON key", [](atb_layer_spec&) {}, "{\"no_such_key\": 1}"},
      {"zero KV heads", [](atb_layer_spec& s) { s.num_kv_heads = 0; }, "{}"},
      {"negative query heads", [](atb_layer_spec& s) { s.num_query_heads = -4; }, "{}"},
      {"unknown dtype", [](atb_layer_spec& s) { s.dtype = 77; }, "{}"},
      {"CUDA device on a CPU plugin", [](atb_layer_spec& s) { s.device_type = ATB_DEVICE_CUDA; }, "{}"},
      {"zero block size", [](atb_layer_spec& s) { s.block_size = 0; }, "{}"},
  };
  for (const SpecCase& c : spec_cases) {
    atb_layer_spec spec = shape.layer_spec();
    c.mutate(spec);
    auto backend = plugin->create_backend(spec, c.config);
    if (backend) return {name, false, std::string("create_backend accepted ") + c.what};
    if (backend.error().message().empty()) return {name, false, std::string("create_backend refused ") + c.what + " without a message"};
  }
  // forward: one field made bad at a time on a prepared step; pages and output must be untouched.
  auto engine = MockEngine::create(*plugin, shape, "{}");
  if (!engine) return {name, false, engine.error().message()};
  if (auto warm = engine->step(standard_script()[0]); !warm) return {name, false, warm.error().message()};
  struct ForwardCase {
    const char* what;
    std::function<void(PreparedStep&, atb_tensor& scratch)> mutate;
  };
  const std::vector<ForwardCase> cases = {
      {"null query", [](PreparedStep& s, atb_tensor&) { s.args.query = nullptr; }},
      {"null output", [](PreparedStep& s, atb_tensor&) { s.args.output = nullptr; }},
      {"null key", [](PreparedStep& s, atb_tensor&) { s.args.key = nullptr; }},
      {"null pages", [](PreparedStep& s, atb_tensor&) { s.args.kv_pages = nullptr; }},
      {"null slot mapping", [](PreparedStep& s, atb_tensor&) { s.args.slot_mapping = nullptr; }},
      {"zero pages", [](PreparedStep& s, atb_tensor&) { s.args.num_pages = 0; }},
      {"negative token count", [](PreparedStep& s, atb_tensor&) { s.args.num_tokens = -1; }},
      {"page stride below page_bytes", [](PreparedStep& s, atb_tensor&) { s.args.page_stride_bytes = 1; }},
      {"wrong query dtype", [](PreparedStep& s, atb_tensor& t) { t = *s.args.query; t.dtype = 99; s.args.query = &t; }},
      {"query on a CUDA device", [](PreparedStep& s, atb_tensor& t) { t = *s.args.query; t.device_type = ATB_DEVICE_CUDA; s.args.query = &t; }},
      {"head-size mismatch", [](PreparedStep& s, atb_tensor& t) { t = *s.args.key; t.shape[2] -= 8; s.args.key = &t; }},
      {"misaligned query pointer", [](PreparedStep& s, atb_tensor& t) { t = *s.args.query; t.data = static_cast<char*>(t.data) + 1; s.args.query = &t; }},
      {"slot outside the pool", [](PreparedStep& s, atb_tensor&) { s.batch.slot_mapping[0] = 1 << 30; }},
      {"block id outside the pool", [](PreparedStep& s, atb_tensor&) { s.batch.block_tables[0] = 1 << 20; }},
      {"sequence longer than its block table", [](PreparedStep& s, atb_tensor&) { s.batch.seq_lens[0] += 100000; }},
      {"non-monotone query offsets", [](PreparedStep& s, atb_tensor&) {
         if (s.batch.query_start_loc.size() > 2) std::swap(s.batch.query_start_loc[1], s.batch.query_start_loc[2]);
         else s.batch.query_start_loc[1] = -1;
       }},
  };
  for (const ForwardCase& c : cases) {
    auto prepared = engine->prepare({{}, {{0, 1}, {1, 3}, {9, 5}}});
    if (!prepared) return {name, false, prepared.error().message()};
    PreparedStep* step = prepared->get();
    atb_tensor scratch{};
    c.mutate(*step, scratch);
    const auto* pool = engine->pool().allocation();
    const uint64_t pages_before = hash_bytes(pool, engine->pool().allocation_bytes());
    const uint64_t output_before = hash_bytes(step->output.bytes(), step->output.byte_size());
    const Status status = engine->run(*step);
    if (status) return {name, false, std::string("forward accepted ") + c.what};
    if (status.message().empty()) return {name, false, std::string("forward refused ") + c.what + " without a message"};
    if (hash_bytes(pool, engine->pool().allocation_bytes()) != pages_before ||
        hash_bytes(step->output.bytes(), step->output.byte_size()) != output_before)
      return {name, false, std::string("forward refused ") + c.what + " but changed host memory"};
  }
  return {name, true, std::to_string(spec_cases.size()) + " bad layer specs/configs and " + std::to_string(cases.size()) +
                          " bad forward fields refused with messages; pages and output untouched"};
}

}  // namespace atb::mock_host
