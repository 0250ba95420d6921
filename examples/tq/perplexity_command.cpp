// tq perplexity: the evaluation protocol of shared/models/PROVENANCE.md.  The text is cut into windows
// of --window input characters at offsets 0, W, 2W, ...; position p of a window predicts the character
// at window start + p + 1, so every character but the first is predicted once.  Windows are batched as
// sequences of the engine, whose attention runs through the chosen backend.
#include <atb/cli/host_options.hpp>
#include <atb/cli/variant_label.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include <atb/engine/evaluation.hpp>

#include "commands.hpp"
#include "model_session.hpp"

namespace atb::tool {
namespace {

struct Evaluation {
  std::string backend;
  double nats = 0;
  uint64_t predictions = 0;
  uint64_t bytes_per_token_per_head = 0;
};

}  // namespace

int perplexity_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("reference");
  for (auto& flag : model_flags()) flags.push_back(flag);
  flags.push_back({"text", "FILE", "text to evaluate (e.g. ../shared/data/shakespeare_dev.txt)"});
  flags.push_back({"window", "N", "input characters per window (default: the model's context)"});
  flags.push_back({"batch", "N", "windows evaluated together (default 4)"});
  flags.push_back({"compare", "NAME", "also evaluate this backend (e.g. reference) and print the change"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq perplexity: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf(
        "usage: tq perplexity --model M --tokenizer T --text F [flags]\n\nNats per character and perplexity of a "
        "llama2.c model on a text, with attention through the chosen backend.\n\n%s",
        cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "reference");
  auto files = load_model_files(*arguments);
  auto batch = arguments->integer_or("batch", 4, 1, 256);
  if (Status error = cli::first_error(options, files, batch); !error) {
    std::fprintf(stderr, "tq perplexity: %s\n", error.message().c_str());
    return 2;
  }
  auto tokens = read_text_tokens(*arguments, files->tokenizer);
  auto window = arguments->integer_or("window", files->checkpoint.config.seq_len, 1, files->checkpoint.config.seq_len);
  if (Status error = cli::first_error(tokens, window); !error) {
    std::fprintf(stderr, "tq perplexity: %s\n", error.message().c_str());
    return 2;
  }
  const auto registry = host::Registry::scan(options->plugin_dirs);
  std::vector<std::pair<std::string, std::string>> runs = {{options->backend, options->config_json}};
  if (auto other = arguments->value("compare")) runs.push_back({*other, "{}"});
  std::vector<Evaluation> results;
  for (const auto& [backend, config] : runs) {
    auto engine = make_engine(*arguments, registry, backend, config, files->checkpoint);
    if (!engine) {
      std::fprintf(stderr, "tq perplexity: %s: %s\n", backend.c_str(), engine.error().message().c_str());
      return 1;
    }
    auto result = engine::evaluate(*engine, *tokens, int(*window), int(*batch));
    if (!result) {
      std::fprintf(stderr, "tq perplexity: %s: %s\n", backend.c_str(), result.error().message().c_str());
      return 1;
    }
    results.push_back({cli::variant_label(backend, config), result->nats, result->predictions,
                       engine->kv_bytes_per_token_per_head()});
  }
  nlohmann::json rows = nlohmann::json::array();
  const double baseline = results.back().nats / double(results.back().predictions);
  int width = 44;  // row names are printed whole
  for (const Evaluation& r : results) width = std::max(width, int(r.backend.size()));
  if (!options->json)
    std::printf("%-*s %12s %12s %11s %11s%s\n", width, "backend", "nats/char", "perplexity", "predictions",
                "KV B/tok/head", runs.size() > 1 ? "  vs compare" : "");
  for (const Evaluation& r : results) {
    const double per_char = r.nats / double(r.predictions);
    const double change = std::exp(per_char) / std::exp(baseline) - 1;
    rows.push_back({{"backend", r.backend},
                    {"nats_per_char", per_char},
                    {"perplexity", std::exp(per_char)},
                    {"predictions", r.predictions},
                    {"kv_bytes_per_token_per_head", r.bytes_per_token_per_head},
                    {"perplexity_change_vs_compare", runs.size() > 1 ? change : 0.0}});
    if (!options->json) {
      std::printf("%-*s %12.5f %12.4f %11llu %11llu", width, r.backend.c_str(), per_char, std::exp(per_char),
                  (unsigned long long)r.predictions, (unsigned long long)r.bytes_per_token_per_head);
      // The change column only where there is a --compare run to change against.
      if (runs.size() > 1) std::printf(" %+10.3f%%", 100 * change);
      std::printf("\n");
    }
  }
  if (options->json) std::cout << nlohmann::json{{"rows", rows}}.dump(2) << "\n";
  return 0;
}

}  // namespace atb::tool
