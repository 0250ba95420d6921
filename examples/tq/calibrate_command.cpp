// tq calibrate: the largest magnitude of every K and V channel per layer and KV head over a text, as
// the model's attention sees them (after RoPE), written as the file the turboquant plugin reads for
// its per-channel smoothing (k_smoothing/v_smoothing "file", tq/channel_maxima.hpp).  The text runs
// through the engine in perplexity's windows, attention through the chosen backend (the reference
// by default, so the rows measured are the model's own).
#include <atb/cli/host_options.hpp>
#include <tq/channel_maxima.hpp>

#include <atb/engine/evaluation.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "commands.hpp"
#include "model_session.hpp"

namespace atb::tool {

int calibrate_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("reference");
  for (auto& flag : model_flags()) flags.push_back(flag);
  flags.push_back({"text", "FILE", "calibration text (e.g. ../shared/data/shakespeare_train.txt)"});
  flags.push_back({"out", "FILE", "the channel-maxima file to write (smoothing_file of the turboquant backend)"});
  flags.push_back({"window", "N", "input characters per window (default: the model's context)"});
  flags.push_back({"batch", "N", "windows run together (default 4)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq calibrate: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf(
        "usage: tq calibrate --model M --tokenizer T --text F --out FILE [flags]\n\nPer-channel K/V maxima of a "
        "llama2.c model over a text, for the turboquant backend's\n{\"k_smoothing\": \"file\", \"smoothing_file\": "
        "FILE}.\n\n%s",
        cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "reference");
  auto files = load_model_files(*arguments);
  auto batch = arguments->integer_or("batch", 4, 1, 256);
  const auto out = arguments->value("out");
  if (Status error = cli::first_error(options, files, batch); !error || !out) {
    std::fprintf(stderr, "tq calibrate: %s\n", !error ? error.message().c_str() : "--out FILE is required");
    return 2;
  }
  auto tokens = read_text_tokens(*arguments, files->tokenizer);
  auto window = arguments->integer_or("window", files->checkpoint.config.seq_len, 1, files->checkpoint.config.seq_len);
  if (Status error = cli::first_error(tokens, window); !error) {
    std::fprintf(stderr, "tq calibrate: %s\n", error.message().c_str());
    return 2;
  }
  const engine::ModelConfig model = files->checkpoint.config;
  const auto registry = host::Registry::scan(options->plugin_dirs);
  auto engine = make_engine(*arguments, registry, options->backend, options->config_json, files->checkpoint);
  if (!engine) {
    std::fprintf(stderr, "tq calibrate: %s: %s\n", options->backend.c_str(), engine.error().message().c_str());
    return 1;
  }
  const int head_size = model.head_size();
  tq::ChannelMaxima maxima(model.n_layers, model.n_kv_heads, head_size);
  uint64_t rows = 0;
  engine->observe_kv([&](int layer, int count, const float* key, const float* value) {
    for (int t = 0; t < count; ++t)
      for (int h = 0; h < model.n_kv_heads; ++h) {
        const size_t at = (size_t(t) * model.n_kv_heads + size_t(h)) * size_t(head_size);
        maxima.observe(tq::Role::key, layer, h, key + at);
        maxima.observe(tq::Role::value, layer, h, value + at);
      }
    if (layer == 0) rows += uint64_t(count);
  });
  auto result = engine::evaluate(*engine, *tokens, int(*window), int(*batch));
  if (!result) {
    std::fprintf(stderr, "tq calibrate: %s\n", result.error().message().c_str());
    return 1;
  }
  const std::string source = arguments->value("model").value_or("") + " on " + arguments->value("text").value_or("") +
                             ", " + std::to_string(rows) + " tokens";
  maxima.finish_means();
  std::ofstream file(*out, std::ios::binary);
  file << tq::channel_maxima_json(maxima, source);
  if (!file.flush()) {
    std::fprintf(stderr, "tq calibrate: --out %s: cannot write it\n", out->c_str());
    return 1;
  }
  std::printf("wrote %s: %d layers x %d KV heads x %d channels (K and V) over %llu tokens\n", out->c_str(),
              model.n_layers, model.n_kv_heads, head_size, (unsigned long long)rows);
  return 0;
}

}  // namespace atb::tool
