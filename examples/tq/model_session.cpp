#include "model_session.hpp"

#include <fstream>
#include <sstream>
#include <thread>

namespace atb::tool {

std::vector<cli::FlagSpec> model_flags() {
  return {{"model", "FILE", "llama2.c checkpoint (e.g. ../shared/models/shakespeare_char_17M.bin)"},
          {"tokenizer", "FILE", "llama2.c tokenizer.bin of the same vocabulary"},
          {"kv-memory", "MIB", "KV-cache memory over all layers, in MiB (default 512)"},
          {"threads", "N", "threads of the engine's matrix products and of the backend (default: all cores)"}};
}

Expected<ModelFiles> load_model_files(const cli::Arguments& arguments) {
  const auto model = arguments.value("model"), tokenizer = arguments.value("tokenizer");
  if (!model || !tokenizer) return Status::invalid("--model and --tokenizer are required");
  auto checkpoint = engine::load_checkpoint(*model);
  if (!checkpoint) return checkpoint.error();
  auto vocabulary = engine::Tokenizer::load(*tokenizer, checkpoint->config.vocab_size);
  if (!vocabulary) return vocabulary.error();
  return ModelFiles{std::move(*checkpoint), std::move(*vocabulary)};
}

Expected<std::vector<int>> read_text_tokens(const cli::Arguments& arguments, const engine::Tokenizer& tokenizer) {
  const auto path = arguments.value("text");
  std::ifstream file(path.value_or(""), std::ios::binary);
  if (!path || !file) return Status::invalid("--text " + path.value_or("(missing)") + ": cannot read it");
  std::stringstream text;
  text << file.rdbuf();
  return tokenizer.encode(text.str());
}

Expected<engine::Engine> make_engine(const cli::Arguments& arguments, const host::Registry& registry,
                                     const std::string& backend, const std::string& config,
                                     engine::Checkpoint checkpoint) {
  auto plugin = registry.select(backend);
  if (!plugin) return plugin.error();
  auto memory = arguments.integer_or("kv-memory", 512, 1, 1 << 20);
  auto threads = arguments.integer_or("threads", int(std::thread::hardware_concurrency()), 1, 1024);
  if (!memory) return memory.error();
  if (!threads) return threads.error();
  return engine::Engine::create(std::move(checkpoint), **plugin, config, uint64_t(*memory) << 20, int(*threads));
}

}  // namespace atb::tool
