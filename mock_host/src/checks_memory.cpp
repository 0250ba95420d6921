// Checks of memory honesty: the spec sizes what the plugin writes, and bad arguments are refused
// without touching host memory.
#include <atb/half.hpp>

#include <cmath>
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

struct ArrayCase {
  const char* what;
  std::function<void(host::StepBatch&)> mutate;
  bool poisons_first_sequence;  // the ABI promises NaN outputs for sequence 0 (bad block table or length)
};

bool all_nan(const host::HostTensor& output, int row) {
  for (int64_t h = 0; h < output.size(1); ++h)
    for (int64_t c = 0; c < output.size(2); ++c)
      if (!std::isnan(output.get(kGuardRows + row, h, c))) return false;
  return true;
}

bool all_finite(const host::HostTensor& output, int row) {
  for (int64_t h = 0; h < output.size(1); ++h)
    for (int64_t c = 0; c < output.size(2); ++c)
      if (!std::isfinite(output.get(kGuardRows + row, h, c))) return false;
  return true;
}

// The array cases on a device: each forward runs (it may not refuse), writes nothing outside the
// pool's pages or the output rows, and where the ABI says so gives sequence 0 NaN outputs while the
// other sequences' stay finite.
Expected<std::string> check_array_cases_on_device(MockEngine& engine, const ScriptStep& step,
                                                  const std::vector<ArrayCase>& cases) {
  int poisoned = 0;
  for (const ArrayCase& c : cases) {
    auto prepared = engine.prepare(step);
    if (!prepared) return prepared.error();
    PreparedStep& s = **prepared;
    c.mutate(s.batch);
    const Status status = engine.run(s);
    if (!status && status.message().empty())
      return Status::internal(std::string("forward refused ") + c.what + " without a message");
    if (std::string broken = engine.check_guards(&s); !broken.empty())
      return Status::internal(std::string("with ") + c.what + " on the device: " + broken);
    if (!status || !c.poisons_first_sequence) continue;
    const int first_end = s.batch.query_start_loc[1];
    for (int row = 0; row < s.batch.num_tokens; ++row)
      if (row < first_end ? !all_nan(s.output, row) : !all_finite(s.output, row))
        return Status::internal(std::string("with ") + c.what + ": output row " + std::to_string(row) + " is " +
                                (row < first_end ? "not NaN (sequence 0's block table is bad: the ABI promises NaN)"
                                                 : "not finite (its sequence is sound)"));
    ++poisoned;
  }
  return std::to_string(cases.size()) +
         " bad array contents forwarded on the device without a write outside the "
         "pages or output rows (" +
         std::to_string(poisoned) + " bad block tables or lengths gave that sequence NaN, the others finite)";
}

}  // namespace

CheckResult check_spec_and_guards(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "spec_and_guards";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);
  auto engine = MockEngine::create(*plugin, shape, "{}");
  if (!engine) return {name, false, engine.error().message()};
  const atb_kv_cache_spec& spec = engine->spec();
  if (spec.page_bytes == 0 || int64_t(spec.block_size) != int64_t(shape.block_size) || spec.page_alignment == 0 ||
      (spec.page_alignment & (spec.page_alignment - 1)) != 0)
    return {name, false, "spec: page_bytes must be > 0, block_size the layer's, page_alignment a power of two"};
  const uint64_t per_token =
      uint64_t(shape.num_kv_heads) * (spec.k_bytes_per_token_per_head + spec.v_bytes_per_token_per_head);
  if (per_token * spec.block_size > spec.page_bytes)
    return {name, false,
            "spec: block_size x KV heads x (k + v bytes per token per head) = " +
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
        return {name, false,
                "writing " + std::to_string(tokens) + " tokens changed " + std::to_string(changed) +
                    " page bytes; the spec says they take " + std::to_string(tokens * per_token)};
      if (spec.writes_kv && changed == 0)
        return {name, false, "writing " + std::to_string(tokens) + " tokens changed no page byte"};
    }
    ++step_index;
  }
  return {name, true,
          "4 scripted steps " + device_words(options) +
              " (prefill, decode, chunked prefill, page reuse): writes within the spec's bytes per "
              "token; no byte outside the pages' " +
              std::to_string(spec.page_bytes) + " bytes or the output rows changed; " + std::to_string(per_token) +
              " bytes per token fit the page"};
}

CheckResult check_bad_arguments(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "bad_arguments";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);
  const bool on_device = options.device_type == ATB_DEVICE_CUDA;
  const int32_t other_device = on_device ? ATB_DEVICE_CPU : ATB_DEVICE_CUDA;
  // create_backend: malformed and unknown JSON, and bad layer specs.
  struct SpecCase {
    const char* what;
    std::function<void(atb_layer_spec&)> mutate;
    const char* config;
  };
  std::vector<SpecCase> spec_cases = {
      {"malformed JSON", [](atb_layer_spec&) {}, "{\"threads\": "},
      {"unknown JSON key", [](atb_layer_spec&) {}, "{\"no_such_key\": 1}"},
      {"zero KV heads", [](atb_layer_spec& s) { s.num_kv_heads = 0; }, "{}"},
      {"negative query heads", [](atb_layer_spec& s) { s.num_query_heads = -4; }, "{}"},
      {"unknown dtype", [](atb_layer_spec& s) { s.dtype = 77; }, "{}"},
      {"unknown device type", [](atb_layer_spec& s) { s.device_type = 9; }, "{}"},
      {"zero block size", [](atb_layer_spec& s) { s.block_size = 0; }, "{}"},
  };
  if (!(plugin->info().device_mask & ATB_BIT(ATB_DEVICE_CUDA)))
    spec_cases.push_back({"CUDA device on a plugin that does not list it",
                          [](atb_layer_spec& s) { s.device_type = ATB_DEVICE_CUDA; }, "{}"});
  for (const SpecCase& c : spec_cases) {
    atb_layer_spec spec = shape.layer_spec();
    c.mutate(spec);
    auto backend = plugin->create_backend(spec, c.config);
    if (backend) return {name, false, std::string("create_backend accepted ") + c.what};
    if (backend.error().message().empty())
      return {name, false, std::string("create_backend refused ") + c.what + " without a message"};
  }
  // forward: one field made bad at a time on a prepared step; pages and output must be untouched.
  auto engine = MockEngine::create(*plugin, shape, "{}");
  if (!engine) return {name, false, engine.error().message()};
  if (auto warm = engine->step(standard_script()[0]); !warm) return {name, false, warm.error().message()};
  struct ForwardCase {
    const char* what;
    std::function<void(PreparedStep&, atb_tensor& scratch)> mutate;
  };
  std::vector<ForwardCase> cases = {
      {"null query", [](PreparedStep& s, atb_tensor&) { s.args.query = nullptr; }},
      {"null output", [](PreparedStep& s, atb_tensor&) { s.args.output = nullptr; }},
      {"null key", [](PreparedStep& s, atb_tensor&) { s.args.key = nullptr; }},
      {"null pages", [](PreparedStep& s, atb_tensor&) { s.args.kv_pages = nullptr; }},
      {"null slot mapping", [](PreparedStep& s, atb_tensor&) { s.args.slot_mapping = nullptr; }},
      {"zero pages", [](PreparedStep& s, atb_tensor&) { s.args.num_pages = 0; }},
      {"negative token count", [](PreparedStep& s, atb_tensor&) { s.args.num_tokens = -1; }},
      {"page stride below page_bytes", [](PreparedStep& s, atb_tensor&) { s.args.page_stride_bytes = 1; }},
      {"wrong query dtype",
       [](PreparedStep& s, atb_tensor& t) {
         t = *s.args.query;
         t.dtype = 99;
         s.args.query = &t;
       }},
      {"query on another device than the layer's",
       [other_device](PreparedStep& s, atb_tensor& t) {
         t = *s.args.query;
         t.device_type = other_device;
         s.args.query = &t;
       }},
      {"head-size mismatch",
       [](PreparedStep& s, atb_tensor& t) {
         t = *s.args.key;
         t.shape[2] -= 8;
         s.args.key = &t;
       }},
      {"misaligned query pointer",
       [](PreparedStep& s, atb_tensor& t) {
         t = *s.args.query;
         t.data = static_cast<char*>(t.data) + 1;
         s.args.query = &t;
       }},
      {"an unknown flag bit", [](PreparedStep& s, atb_tensor&) { s.args.flags |= 1u << 31; }},
      {"a forward_args struct_size below ATB_FORWARD_ARGS_MIN_STRUCT_SIZE",
       [](PreparedStep& s, atb_tensor&) { s.args.struct_size = ATB_FORWARD_ARGS_MIN_STRUCT_SIZE - 4; }},
      {"an output whose heads alias (head stride 0)",
       [](PreparedStep& s, atb_tensor& t) {
         t = *s.args.output;
         t.strides[1] = 0;
         s.args.output = &t;
       }},
      {"a query tensor struct_size below ATB_TENSOR_MIN_STRUCT_SIZE",
       [](PreparedStep& s, atb_tensor& t) {
         t = *s.args.query;
         t.struct_size = ATB_TENSOR_MIN_STRUCT_SIZE - 8;
         s.args.query = &t;
       }},
  };
  // Bad contents of the integer arrays.  On the CPU forward reads and refuses them; on a device it
  // cannot read them (that would synchronise), and the kernels must keep inside the buffers instead.
  const std::vector<ArrayCase> array_cases = {
      {"slot outside the pool", [](host::StepBatch& b) { b.slot_mapping[0] = 1 << 30; }, false},
      {"negative slot below -1", [](host::StepBatch& b) { b.slot_mapping[1] = -5; }, false},
      {"block id outside the pool", [](host::StepBatch& b) { b.block_tables[0] = 1 << 20; }, true},
      {"negative block id", [](host::StepBatch& b) { b.block_tables[0] = -3; }, true},
      {"sequence longer than its block table", [](host::StepBatch& b) { b.seq_lens[0] += 100000; }, true},
      {"sequence shorter than its new tokens", [](host::StepBatch& b) { b.seq_lens[1] = 1; }, false},
      {"non-monotone query offsets", [](host::StepBatch& b) { std::swap(b.query_start_loc[1], b.query_start_loc[2]); },
       false},
      {"query offset before the batch", [](host::StepBatch& b) { b.query_start_loc[1] = -7; }, false},
      {"query offset past the batch", [](host::StepBatch& b) { b.query_start_loc[2] = 1 << 20; }, false},
  };
  if (!on_device)
    for (const ArrayCase& a : array_cases)
      cases.push_back({a.what, [mutate = a.mutate](PreparedStep& s, atb_tensor&) { mutate(s.batch); }});
  const ScriptStep bad_step{{}, {{0, 1}, {1, 3}, {9, 5}}};  // a decode, a short chunk, a prefill
  for (const ForwardCase& c : cases) {
    auto prepared = engine->prepare(bad_step);
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
  std::string device_report;
  if (on_device) {
    auto checked = check_array_cases_on_device(*engine, bad_step, array_cases);
    if (!checked) return {name, false, checked.error().message()};
    device_report = "; " + *checked;
  }
  return {name, true,
          std::to_string(spec_cases.size()) + " bad layer specs/configs and " + std::to_string(cases.size()) +
              " bad forward fields refused with messages " + device_words(options) + "; pages and output untouched" +
              device_report};
}

}  // namespace atb::mock_host
