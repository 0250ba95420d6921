// libFuzzer: the llama2.c checkpoint reader on arbitrary bytes.  It must refuse what is not a
// checkpoint with a message, and what it accepts must have the sizes its header promised.
#include <atb/engine/checkpoint.hpp>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto checkpoint = atb::engine::read_checkpoint(in, size, "fuzz input");
  if (!checkpoint) {
    if (checkpoint.error().message().empty()) std::abort();
    return 0;
  }
  const auto& c = checkpoint->config;
  const auto& w = checkpoint->weights;
  if (w.token_embedding.size() != size_t(c.vocab_size) * size_t(c.dim) || w.rms_final.size() != size_t(c.dim) ||
      w.rope_cos.size() != size_t(c.seq_len) * size_t(c.head_size() / 2))
    std::abort();
  return 0;
}
