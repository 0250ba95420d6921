// Checks of behaviour over time: determinism, concurrency, churn.
#include <thread>

#include "checks.hpp"

namespace atb::mock_host {

CheckResult check_determinism(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "determinism";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);
  // Thread counts through the conventional "threads" key when the plugin takes it; else its default.
  std::vector<std::string> configs = {"{}"};
  if (plugin->create_backend(shape.layer_spec(), "{\"threads\": 1}"))
    configs = {"{\"threads\": 1}", "{\"threads\": 2}", "{\"threads\": 3}", "{}"};
  std::vector<std::byte> first;
  for (const std::string& config : configs)
    for (int repeat = 0; repeat < 2; ++repeat) {
      auto engine = MockEngine::create(*plugin, shape, config);
      if (!engine) return {name, false, engine.error().message()};
      auto outputs = engine->run_script(standard_script());
      if (!outputs) return {name, false, outputs.error().message()};
      if (first.empty())
        first = std::move(*outputs);
      else if (*outputs != first)
        return {name, false,
                "the same inputs gave different outputs (config " + config + ", run " + std::to_string(repeat) + ")"};
    }
  return {name, true,
          "identical inputs gave bit-identical outputs " + device_words(options) + " over " +
              std::to_string(2 * configs.size()) + " runs (configs: " + std::to_string(configs.size()) + ")"};
}

CheckResult check_concurrency(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "concurrency";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  constexpr int kLayers = 4;
  std::vector<std::vector<std::byte>> sequential(kLayers), concurrent(kLayers);
  std::vector<Status> errors(kLayers);
  const auto run_layer = [&](int layer, std::vector<std::byte>& out, Status& error) {
    EngineShape shape = shape_for(plugin->info(), options);
    shape.layer_index = layer;
    shape.num_layers = kLayers;
    auto engine = MockEngine::create(*plugin, shape, "{}", 64, uint64_t(layer) + 11);
    if (!engine) {
      error = engine.error();
      return;
    }
    auto outputs = engine->run_script(standard_script());
    if (!outputs)
      error = outputs.error();
    else
      out = std::move(*outputs);
  };
  for (int layer = 0; layer < kLayers; ++layer) run_layer(layer, sequential[size_t(layer)], errors[size_t(layer)]);
  {
    std::vector<std::jthread> threads;
    for (int layer = 0; layer < kLayers; ++layer)
      threads.emplace_back([&, layer] { run_layer(layer, concurrent[size_t(layer)], errors[size_t(layer)]); });
  }
  for (int layer = 0; layer < kLayers; ++layer) {
    if (!errors[size_t(layer)])
      return {name, false, "layer " + std::to_string(layer) + ": " + errors[size_t(layer)].message()};
    if (concurrent[size_t(layer)] != sequential[size_t(layer)])
      return {name, false,
              "layer " + std::to_string(layer) + " gave other outputs when layers ran on concurrent threads"};
  }
  return {name, true,
          std::to_string(kLayers) + " layers forwarded from " + std::to_string(kLayers) + " threads at once " +
              device_words(options) + " match their sequential outputs"};
}

CheckResult check_churn(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "churn";
  const int reloads = std::max(1, options.churn_cycles / 20);
  for (int reload = 0; reload < reloads; ++reload) {
    auto plugin = host::Plugin::load(path);  // dlopen again; closed when the last handle goes
    if (!plugin) return {name, false, plugin.error().message()};
    const EngineShape shape = shape_for(plugin->info(), options);
    for (int cycle = 0; cycle < options.churn_cycles / reloads; ++cycle) {
      auto backend = plugin->create_backend(shape.layer_spec(), "{}");
      if (!backend) return {name, false, "cycle " + std::to_string(cycle) + ": " + backend.error().message()};
      if (auto spec = backend->kv_cache_spec(); !spec) return {name, false, spec.error().message()};
    }
  }
  return {name, true,
          std::to_string(options.churn_cycles) + " create/destroy cycles over " + std::to_string(reloads) +
              " plugin loads (leaks are reported by LeakSanitizer under the asan preset)"};
}

}  // namespace atb::mock_host
