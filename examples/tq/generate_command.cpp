// tq generate: streams text from a llama2.c model as it is produced (greedy, or temperature / top-p
// sampling with a seed), attention through the chosen backend; then tokens per second and KV bytes.
#include <atb/cli/host_options.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "commands.hpp"
#include "model_session.hpp"

namespace atb::tool {
namespace {

int sample(const float* logits, int vocab, double temperature, double top_p, std::mt19937_64& rng) {
  if (temperature <= 0) return int(std::max_element(logits, logits + vocab) - logits);
  std::vector<double> probs(static_cast<size_t>(vocab));
  const double max = *std::max_element(logits, logits + vocab);
  for (int i = 0; i < vocab; ++i) probs[size_t(i)] = std::exp((logits[i] - max) / temperature);
  std::vector<int> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return probs[size_t(a)] > probs[size_t(b)]; });
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  double kept = 0;
  size_t cut = 0;
  while (cut < order.size() && kept < top_p * total) kept += probs[size_t(order[cut++])];
  double pick = std::uniform_real_distribution<double>(0, kept)(rng);
  for (size_t i = 0; i < cut; ++i)
    if ((pick -= probs[size_t(order[i])]) <= 0) return order[i];
  return order[cut - 1];
}

}  // namespace

int generate_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("turboquant");
  for (auto& flag : model_flags()) flags.push_back(flag);
  flags.push_back({"prompt", "TEXT", "the text to continue"});
  flags.push_back({"steps", "N", "characters to generate (default 256; stops at the model's context)"});
  flags.push_back({"temperature", "T", "0 for greedy (default 0.8)"});
  flags.push_back({"top-p", "P", "nucleus sampling mass (default 0.9)"});
  flags.push_back({"seed", "N", "sampling seed (default 0)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq generate: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf("usage: tq generate --model M --tokenizer T --prompt TEXT [flags]\n\n%s",
                cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "turboquant");
  auto files = load_model_files(*arguments);
  auto steps = arguments->integer_or("steps", 256, 1, 1 << 20);
  auto temperature = arguments->number_or("temperature", 0.8, 0, 100);
  auto top_p = arguments->number_or("top-p", 0.9, 1e-6, 1);
  auto seed = arguments->integer_or("seed", 0, 0, std::numeric_limits<long long>::max());
  if (Status error = cli::first_error(options, files, steps, temperature, top_p, seed); !error) {
    std::fprintf(stderr, "tq generate: %s\n", error.message().c_str());
    return 2;
  }
  auto prompt = files->tokenizer.encode(arguments->value_or("prompt", "\n"));
  if (!prompt || prompt->empty()) {
    std::fprintf(stderr, "tq generate: --prompt: %s\n", prompt ? "empty" : prompt.error().message().c_str());
    return 2;
  }
  const auto registry = host::Registry::scan(options->plugin_dirs);
  auto engine = make_engine(*arguments, registry, options->backend, options->config_json, files->checkpoint);
  if (!engine) {
    std::fprintf(stderr, "tq generate: %s\n", engine.error().message().c_str());
    return 1;
  }
  std::mt19937_64 rng(static_cast<uint64_t>(*seed));
  const int vocab = engine->config().vocab_size;
  const int limit = std::min<int>(int(*steps), engine->config().seq_len - int(prompt->size()));
  for (int token : *prompt) std::fputs(files->tokenizer.piece(token).c_str(), stdout);
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  auto logits = engine->forward({{0, *prompt}});
  int generated = 0;
  while (logits && generated < limit) {
    const int next = sample(logits->data() + logits->size() - size_t(vocab), vocab, *temperature, *top_p, rng);
    std::fputs(files->tokenizer.piece(next).c_str(), stdout);
    std::fflush(stdout);
    ++generated;
    if (generated < limit) logits = engine->forward({{0, {next}}});
  }
  if (!logits) {
    std::fprintf(stderr, "\ntq generate: %s\n", logits.error().message().c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The text alone on stdout (it can be piped); the figures on stderr.
  std::fputc('\n', stdout);
  std::fprintf(stderr,
               "[%s %s] %d tokens in %.2f s: %.1f tokens/s (prompt of %zu included in the time); KV cache %llu bytes "
               "per token (%llu per token per KV head), %zu tokens held\n",
               options->backend.c_str(), options->config_json.c_str(), generated, seconds, generated / seconds,
               prompt->size(), (unsigned long long)engine->kv_bytes_per_token(),
               (unsigned long long)engine->kv_bytes_per_token_per_head(), prompt->size() + size_t(generated));
  return 0;
}

}  // namespace atb::tool
