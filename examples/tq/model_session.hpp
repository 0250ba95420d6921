// What tq perplexity, tq calibrate and tq generate share: the --model/--tokenizer flags, loading and validating
// the checkpoint and tokenizer, and an engine over a backend chosen through the SDK registry.
#pragma once

#include <atb/cli/arguments.hpp>
#include <atb/engine/engine.hpp>
#include <atb/engine/tokenizer.hpp>
#include <atb/host/registry.hpp>

#include <memory>

namespace atb::tool {

std::vector<cli::FlagSpec> model_flags();

struct ModelFiles {
  engine::Checkpoint checkpoint;
  engine::Tokenizer tokenizer;
};

Expected<ModelFiles> load_model_files(const cli::Arguments& arguments);

// The tokens of the --text file (its path in errors), with the model's tokenizer.
Expected<std::vector<int>> read_text_tokens(const cli::Arguments& arguments, const engine::Tokenizer& tokenizer);

// An engine with `backend`/`config` from `registry`; --kv-memory and --threads from the arguments.
Expected<engine::Engine> make_engine(const cli::Arguments& arguments, const host::Registry& registry,
                                     const std::string& backend, const std::string& config,
                                     engine::Checkpoint checkpoint);

}  // namespace atb::tool
